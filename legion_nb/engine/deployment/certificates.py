"""The cluster's X.509 material: one CA per cluster, node certificates, Legion's operator certificate.

Why a private CA per cluster: Tribes peer sync (TCP 4413) and the node admin API are mutual TLS.
A node accepts a peer or an operator only if its certificate was issued by *this cluster's* CA, and
Legion accepts a node only if the node's certificate was. No public CA is involved and none could
help: the names are internal and the trust decision is "member of this cluster", nothing wider.

* :class:`ClusterAuthority` holds the CA key and certificate (ECDSA P-256: small, fast, and what every
  TLS stack speaks). Optional name constraints limit what the CA may ever sign for.
* :meth:`ClusterAuthority.issue_node` makes a node certificate: SANs are the node's DNS names and
  IP addresses; extended key usage is serverAuth *and* clientAuth, since a node is a server to its
  peers and a client of them during sync.
* :meth:`ClusterAuthority.issue_operator` makes Legion's client certificate (clientAuth only).
* Serials are random 128-bit values and every certificate has a not-after, so rotation is "issue a
  new one, hand it over, drop the old one"; :meth:`IssuedCertificate.expires_within` tells when.
* :func:`server_ssl_context` / :func:`client_ssl_context` turn the material into ``ssl`` contexts
  that require the peer's certificate to chain to the cluster CA.

Raises :class:`CertificateRejectedError` when a certificate does not verify against the CA, and
:class:`~legion_nb.engine.deployment.identity.SecurityMaterialError` for unreadable records.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from legion_nb.engine.deployment.identity import SecurityMaterialError
from legion_nb.errors import NodeError
from legion_nb.memfile import load_cert_chain

__all__ = [
    "OPERATOR_COMMON_NAME",
    "CertificateRejectedError",
    "ClusterAuthority",
    "IssuedCertificate",
    "client_ssl_context",
    "server_ssl_context",
]

OPERATOR_COMMON_NAME = "legion-operator"

_CA_DAYS = 3650
_LEAF_DAYS = 397
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between Legion and fresh nodes

_USAGE_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


class CertificateRejectedError(NodeError):
    """A certificate does not belong to the cluster: wrong issuer, bad signature, wrong use or expired."""

    code = "certificate_rejected"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _load_cert(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SecurityMaterialError(f"the {what} certificate cannot be read; re-issue it") from exc


def _load_key(pem: str, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise SecurityMaterialError(f"the {what} private key cannot be read; re-issue it") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SecurityMaterialError(f"the {what} private key is not an EC key; re-issue it")
    return key


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else "?"


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A leaf certificate and its private key (PEM); the key never appears in a repr."""

    certificate_pem: str
    private_key_pem: str = field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        return _load_cert(self.certificate_pem, "issued")

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def common_name(self) -> str:
        return _common_name(self.certificate)

    def expires_within(self, window: dt.timedelta, *, now: dt.datetime | None = None) -> bool:
        """Whether the certificate should be rotated: it ends within ``window`` of ``now``."""
        return self.not_after - (now or _now()) <= window

    def to_dict(self) -> dict[str, str]:
        return {"certificate": self.certificate_pem, "private_key": self.private_key_pem}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, what: str = "issued") -> IssuedCertificate:
        cert_pem, key_pem = data.get("certificate"), data.get("private_key")
        if not isinstance(cert_pem, str) or not isinstance(key_pem, str):
            raise SecurityMaterialError(f"the {what} certificate record is incomplete; re-issue it")
        cert, key = _load_cert(cert_pem, what), _load_key(key_pem, what)
        if cert.public_key() != key.public_key():
            raise SecurityMaterialError(f"the {what} certificate and key do not match; re-issue them")
        return cls(certificate_pem=cert_pem, private_key_pem=key_pem)


@dataclass(frozen=True, slots=True)
class ClusterAuthority:
    """A cluster's certificate authority: the key that says who belongs to the cluster."""

    cluster: str
    certificate_pem: str
    private_key_pem: str = field(repr=False)

    @classmethod
    def create(
        cls,
        cluster: str,
        *,
        valid_days: int = _CA_DAYS,
        permitted_dns: Sequence[str] = (),
        now: dt.datetime | None = None,
    ) -> ClusterAuthority:
        """A new self-signed CA; ``permitted_dns`` (e.g. ``["example.net"]``) adds name constraints."""
        key = _new_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Legion"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster} cluster CA"),
            ]
        )
        start = (now or _now()) - _BACKDATE
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if permitted_dns:
            builder = builder.add_extension(
                x509.NameConstraints(
                    permitted_subtrees=[x509.DNSName(d) for d in permitted_dns], excluded_subtrees=None
                ),
                critical=True,
            )
        cert = builder.sign(key, hashes.SHA256())
        return cls(cluster=cluster, certificate_pem=_cert_pem(cert), private_key_pem=_key_pem(key))

    @property
    def certificate(self) -> x509.Certificate:
        return _load_cert(self.certificate_pem, f"{self.cluster} CA")

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def issue_node(
        self,
        node: str,
        *,
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        valid_days: int = _LEAF_DAYS,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A node certificate for sync mTLS and the admin API: serverAuth + clientAuth.

        SANs are ``node`` itself, every ``dns_names`` entry and every ``ip_addresses`` entry; an
        ``ip_addresses`` entry that is not an IP address raises :class:`SecurityMaterialError` naming it.
        """
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([node, *dns_names])]
        for text in dict.fromkeys(ip_addresses):
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(text)))
            except ValueError as exc:
                raise SecurityMaterialError(
                    f"{text!r} is not an IP address for {node}'s certificate"
                ) from exc
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        return self._issue(node, sans, usages, valid_days, now)

    def issue_operator(
        self,
        *,
        name: str = OPERATOR_COMMON_NAME,
        valid_days: int = _LEAF_DAYS,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """Legion's client certificate for node admin APIs (clientAuth only: it can serve nothing)."""
        return self._issue(name, [], [ExtendedKeyUsageOID.CLIENT_AUTH], valid_days, now)

    def _issue(
        self,
        common_name: str,
        sans: list[x509.GeneralName],
        usages: list[x509.ObjectIdentifier],
        valid_days: int,
        now: dt.datetime | None,
    ) -> IssuedCertificate:
        ca_cert = self.certificate
        ca_key = _load_key(self.private_key_pem, f"{self.cluster} CA")
        key = _new_key()
        start = (now or _now()) - _BACKDATE
        end = min(start + dt.timedelta(days=valid_days), ca_cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Legion {self.cluster}"),
                        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    ]
                )
            )
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return IssuedCertificate(certificate_pem=_cert_pem(cert), private_key_pem=_key_pem(key))

    def verify(
        self,
        certificate_pem: str,
        *,
        usage: x509.ObjectIdentifier | None = None,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Check that a leaf was issued by this CA, is in its validity window and allows ``usage``.

        Raises :class:`CertificateRejectedError` naming the certificate and the reason.
        """
        cert = _load_cert(certificate_pem, "presented")
        name = _common_name(cert)
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateRejectedError(
                f"certificate {name!r} was not issued by the {self.cluster} cluster CA; refuse it"
            ) from exc
        moment = now or _now()
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            raise CertificateRejectedError(
                f"certificate {name!r} is outside its validity window "
                f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}); re-issue it"
            )
        if usage is not None:
            try:
                allowed = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound as exc:
                raise CertificateRejectedError(
                    f"certificate {name!r} names no key usage; re-issue it"
                ) from exc
            if usage not in allowed:
                wanted = _USAGE_NAMES.get(usage, usage.dotted_string)
                raise CertificateRejectedError(
                    f"certificate {name!r} is not allowed for {wanted}; re-issue it with that usage"
                )
        return cert

    def to_dict(self) -> dict[str, str]:
        return {
            "cluster": self.cluster,
            "certificate": self.certificate_pem,
            "private_key": self.private_key_pem,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterAuthority:
        cluster = data.get("cluster")
        if not isinstance(cluster, str) or not cluster:
            raise SecurityMaterialError("the cluster CA record names no cluster; the state record is damaged")
        issued = IssuedCertificate.from_dict(data, what=f"{cluster} CA")
        return cls(
            cluster=cluster, certificate_pem=issued.certificate_pem, private_key_pem=issued.private_key_pem
        )


def _serial() -> int:
    # RFC 5280: positive, at most 20 octets; 128 random bits leave no room for collisions.
    return secrets.randbits(127) | 1


def client_ssl_context(ca_pem: str, client: IssuedCertificate) -> ssl.SSLContext:
    """TLS client side of mTLS: present ``client``, accept only servers that chain to ``ca_pem``.

    The node is identified by its certificate chaining to the cluster CA and by the address or DNS
    name it was reached at (hostname checking stays on; node certificates carry IP SANs).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(context, client.certificate_pem, client.private_key_pem)
    return context


def server_ssl_context(ca_pem: str, server: IssuedCertificate) -> ssl.SSLContext:
    """TLS server side of mTLS: present ``server``, require a client certificate from ``ca_pem``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    load_cert_chain(context, server.certificate_pem, server.private_key_pem)
    return context
