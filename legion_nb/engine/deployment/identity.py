"""SSH identities Legion generates for the machines it manages.

Why Legion generates a node's host key itself: the key is written onto the node during the OS
install, so Legion knows the host key it must pin *before* it ever talks to the installed system.
There is no trust-on-first-use window, and a node that later answers with any other key is refused
(see :mod:`legion_nb.engine.ssh`).

Everything here is pure: keys are made with ``cryptography`` and carried as OpenSSH text (a private
key in ``-----BEGIN OPENSSH PRIVATE KEY-----`` form, a public key as one ``ssh-ed25519 AAAA... comment``
line), because that is what sshd, ``authorized_keys`` and the SSH client all read. Records serialize
to JSON-able dicts for the encrypted state; private halves never show in a ``repr``.

Raises :class:`SecurityMaterialError` for material that cannot be parsed (a damaged state record).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from legion_nb.errors import NodeError

__all__ = [
    "ADMIN_USERNAME",
    "AdminCredentials",
    "NodeIdentity",
    "SecurityMaterialError",
    "SshKeyPair",
    "fingerprint",
]

ADMIN_USERNAME = "legion-admin"
"""The system user Legion creates on each node for its own SSH sessions."""

_PASSWORD_BYTES = 24


class SecurityMaterialError(NodeError):
    """A key, certificate or credential record could not be read (damaged or foreign material)."""

    code = "security_material"


def fingerprint(public_openssh: str) -> str:
    """The OpenSSH ``SHA256:...`` fingerprint of a public key line (what ``ssh-keygen -lf`` prints)."""
    parts = public_openssh.split()
    if len(parts) < 2:
        raise SecurityMaterialError("an SSH public key must read 'TYPE BASE64 [comment]'; re-create the key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise SecurityMaterialError("an SSH public key's base64 part is damaged; re-create the key") from exc
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True, slots=True)
class SshKeyPair:
    """An Ed25519 key pair as OpenSSH text; the private half never appears in a repr."""

    public_openssh: str
    private_openssh: str = field(repr=False)

    @classmethod
    def generate(cls, comment: str = "") -> SshKeyPair:
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode("ascii")
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode("ascii")
        )
        return cls(public_openssh=f"{public} {comment}".strip(), private_openssh=private)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_openssh)

    def to_dict(self) -> dict[str, str]:
        return {"public": self.public_openssh, "private": self.private_openssh}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, what: str = "SSH key pair") -> SshKeyPair:
        public = _text(data, "public", what)
        private = _text(data, "private", what)
        try:
            key = serialization.load_ssh_private_key(private.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise SecurityMaterialError(f"the {what}'s private key cannot be read; re-create it") from exc
        derived = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode("ascii")
        )
        if derived.split()[:2] != public.split()[:2]:
            raise SecurityMaterialError(f"the {what}'s public and private keys do not match; re-create it")
        return cls(public_openssh=public, private_openssh=private)


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who a node is: its name and the SSH host key Legion installs on it (and pins)."""

    node: str
    host_key: SshKeyPair

    @classmethod
    def generate(cls, node: str) -> NodeIdentity:
        return cls(node=node, host_key=SshKeyPair.generate(comment=f"host@{node}"))

    @property
    def host_public_key(self) -> str:
        """The public line Legion pins for this node (``known_hosts`` material)."""
        return self.host_key.public_openssh

    @property
    def fingerprint(self) -> str:
        return self.host_key.fingerprint

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "host_key": self.host_key.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeIdentity:
        node = _text(data, "node", "node identity")
        return cls(
            node=node,
            host_key=SshKeyPair.from_dict(
                _mapping(data, "host_key", "node identity"), what=f"host key of {node}"
            ),
        )


@dataclass(frozen=True, slots=True)
class AdminCredentials:
    """The system admin user on a node: a random password (console, sudo) and Legion's SSH key for it.

    The password is for the provider's rescue console when SSH is gone; Legion itself logs in with
    the key. Both are generated per cluster node and live only in the encrypted state.
    """

    username: str
    password: str = field(repr=False)
    ssh_key: SshKeyPair = field(repr=False)

    @classmethod
    def generate(cls, node: str, username: str = ADMIN_USERNAME) -> AdminCredentials:
        return cls(
            username=username,
            password=secrets.token_urlsafe(_PASSWORD_BYTES),
            ssh_key=SshKeyPair.generate(comment=f"{username}@{node}"),
        )

    def authorized_keys_line(self) -> str:
        """The line to put into the admin user's ``authorized_keys``."""
        return self.ssh_key.public_openssh

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password, "ssh_key": self.ssh_key.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdminCredentials:
        username = _text(data, "username", "admin credentials")
        return cls(
            username=username,
            password=_text(data, "password", "admin credentials"),
            ssh_key=SshKeyPair.from_dict(
                _mapping(data, "ssh_key", "admin credentials"), what=f"SSH key of {username}"
            ),
        )


def _text(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise SecurityMaterialError(f"the {what} record has no {key!r} text; the state record is damaged")
    return value


def _mapping(data: Mapping[str, Any], key: str, what: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise SecurityMaterialError(f"the {what} record has no {key!r} object; the state record is damaged")
    return value
