"""Cluster security material: chains verify, foreign material is refused, records round-trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from legion_nb.engine.deployment.security import (
    CertificateRejectedError,
    ClusterAuthority,
    ClusterSecurity,
    NodeSecurity,
    SecurityMaterialError,
    SshKeyPair,
    fingerprint,
    sync_handoff,
)
from legion_nb.errors import NodeError


@pytest.fixture(scope="module")
def cluster() -> ClusterSecurity:
    return ClusterSecurity.create("alpha")


@pytest.fixture(scope="module")
def node(cluster: ClusterSecurity) -> NodeSecurity:
    return cluster.provision_node("n1", dns_names=["n1.alpha.example"], ip_addresses=["127.20.0.2"])


def test_node_certificate_chains_to_its_cluster_ca(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    cert = cluster.authority.verify(node.certificate.certificate_pem, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    cluster.authority.verify(node.certificate.certificate_pem, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1", "n1.alpha.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.20.0.2"]
    assert node.certificate.common_name == "n1"


def test_certificate_from_another_ca_is_rejected(node: NodeSecurity) -> None:
    other = ClusterAuthority.create("beta")
    with pytest.raises(CertificateRejectedError, match="not issued by the beta cluster CA") as info:
        other.verify(node.certificate.certificate_pem)
    assert isinstance(info.value, NodeError)
    assert "\n" not in str(info.value)


def test_operator_certificate_is_client_only(cluster: ClusterSecurity) -> None:
    cluster.authority.verify(cluster.operator.certificate_pem, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    with pytest.raises(CertificateRejectedError, match="not allowed for serverAuth"):
        cluster.authority.verify(cluster.operator.certificate_pem, usage=ExtendedKeyUsageOID.SERVER_AUTH)


def test_expired_certificate_is_rejected(cluster: ClusterSecurity) -> None:
    old = cluster.authority.issue_node(
        "old", valid_days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    )
    assert old.expires_within(dt.timedelta(days=0))
    with pytest.raises(CertificateRejectedError, match="outside its validity window"):
        cluster.authority.verify(old.certificate_pem)


def test_serials_differ_and_rotation_keeps_identity(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    rotated = cluster.reissue_node_certificate(node, ip_addresses=["127.20.0.9"])
    assert rotated.identity == node.identity and rotated.admin == node.admin
    assert rotated.certificate.serial != node.certificate.serial
    assert not rotated.certificate.expires_within(dt.timedelta(days=30))


def test_rotation_keeps_the_host_key_pins(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    pinned = dataclasses.replace(node, host_key_presented_by="42", satellite_host_key="ssh-ed25519 AAAA")
    rotated = cluster.reissue_node_certificate(pinned, ip_addresses=["127.20.0.9"])
    assert (rotated.host_key_presented_by, rotated.satellite_host_key) == ("42", "ssh-ed25519 AAAA")


def test_name_constraints_are_recorded() -> None:
    ca = ClusterAuthority.create("gamma", permitted_dns=["gamma.example"])
    constraints = ca.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert [n.value for n in constraints.value.permitted_subtrees or []] == ["gamma.example"]


def test_bad_ip_san_is_one_line_error(cluster: ClusterSecurity) -> None:
    with pytest.raises(SecurityMaterialError, match="'not-an-ip' is not an IP address"):
        cluster.authority.issue_node("n2", ip_addresses=["not-an-ip"])


def test_records_round_trip_through_json(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    assert ClusterSecurity.from_dict(json.loads(json.dumps(cluster.to_dict()))) == cluster
    assert NodeSecurity.from_dict(json.loads(json.dumps(node.to_dict()))) == node


def test_damaged_records_fail_with_named_error(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    data = node.to_dict()
    data["certificate"]["private_key"] = cluster.operator.private_key_pem  # a key of someone else
    with pytest.raises(SecurityMaterialError, match="certificate and key do not match"):
        NodeSecurity.from_dict(data)
    data = node.to_dict()
    data["identity"]["host_key"]["public"] = SshKeyPair.generate().public_openssh
    with pytest.raises(SecurityMaterialError, match="public and private keys do not match"):
        NodeSecurity.from_dict(data)
    foreign = ClusterSecurity.create("beta").to_dict()
    mixed = {"authority": cluster.authority.to_dict(), "operator": foreign["operator"]}
    with pytest.raises(SecurityMaterialError, match="does not chain to its CA"):
        ClusterSecurity.from_dict(mixed)
    with pytest.raises(SecurityMaterialError, match="no 'admin' section"):
        NodeSecurity.from_dict({k: v for k, v in node.to_dict().items() if k != "admin"})
    with pytest.raises(SecurityMaterialError, match="cannot be read"):
        ClusterAuthority.from_dict({"cluster": "x", "certificate": "junk", "private_key": "junk"})


def test_secrets_never_in_repr(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    text = repr(cluster) + repr(node) + repr(node.admin) + repr(node.identity) + repr(cluster.authority)
    assert "PRIVATE KEY" not in text
    assert node.admin.password not in text
    assert node.admin.username == "legion-admin"


def test_fingerprint_matches_ssh_keygen(tmp_path: object, node: NodeSecurity) -> None:
    keygen = shutil.which("ssh-keygen")
    if not keygen:
        pytest.skip("ssh-keygen is not installed")
    path = f"{tmp_path}/key.pub"
    with open(path, "w") as handle:
        handle.write(node.pinned_host_key + "\n")
    out = subprocess.run([keygen, "-lf", path], capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == node.identity.fingerprint


def test_fingerprint_rejects_garbage() -> None:
    with pytest.raises(SecurityMaterialError, match="must read 'TYPE BASE64"):
        fingerprint("nonsense")
    with pytest.raises(SecurityMaterialError, match="base64 part is damaged"):
        fingerprint("ssh-ed25519 !!!")


def test_sync_handoff_lists_only_peers(cluster: ClusterSecurity, node: NodeSecurity) -> None:
    doc = sync_handoff(cluster, node, {"n1": "127.20.0.2", "n2": "127.20.0.3", "n3": "::1"})
    assert [p["url"] for p in doc["peers"]] == ["https://127.20.0.3:4413", "https://[::1]:4413"]
    assert doc["allow"] == ["127.20.0.3/32", "::1/128"]
    assert doc["ca_certificate"] == cluster.authority.certificate_pem
    json.dumps(doc)


_WRITES = ("w", "a", "x", "+")


def test_tls_contexts_never_write_a_private_key_to_the_filesystem(
    cluster: ClusterSecurity, node: NodeSecurity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both mTLS sides load their key from memory: no file is created, no temporary directory made."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    seen: list[tuple[str, object]] = []
    recording = True

    def writes(event: str, args: tuple[object, ...]) -> bool:
        if event in {"os.mkdir", "tempfile.mkdtemp", "tempfile.mkstemp"}:
            return True
        if event != "open":
            return False
        mode, flags = args[1], args[2]
        if isinstance(mode, str) and any(flag in mode for flag in _WRITES):
            return True
        return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    def hook(event: str, args: tuple[object, ...]) -> None:
        if recording and writes(event, args):
            seen.append((event, args[0]))

    sys.addaudithook(hook)
    try:
        contexts = [cluster.operator_ssl_context(), node.server_ssl_context(cluster.authority)]
    finally:
        recording = False
    assert all(isinstance(context, ssl.SSLContext) for context in contexts)
    assert seen == []
    assert list(tmp_path.iterdir()) == []


def test_without_memfd_the_key_travels_through_a_pipe(
    cluster: ClusterSecurity, node: NodeSecurity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create")
    assert isinstance(node.server_ssl_context(cluster.authority), ssl.SSLContext)
