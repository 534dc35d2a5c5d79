"""The install path a deployment drives, end to end against a simulated node.

cloud image (its own host key) -> kexec -> install with Legion's host key -> reboot (host-key swap)
-> activate certificates (mTLS admin API) -> configure Tribes sync -> ready. Along the way: the old
pin is refused after the swap, mTLS refuses foreign certificates in both directions, and injected
failures surface as one-line step errors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.deployment.security import (
    ClusterSecurity,
    NodeSecurity,
    client_ssl_context,
    sync_handoff,
)
from legion_nb.engine.ssh import (
    HostKeyMismatchError,
    NodeCommandError,
    ReconnectPolicy,
    SshConnection,
    SshTarget,
    connect,
    connect_with_retry,
    scan_host_key,
)


async def _step_with_reboot(conn: SshConnection, command: str) -> None:
    """Run a step that reboots the node and wait until the node has dropped us."""
    await conn.check(command)
    await conn.wait_closed()


async def _install(
    node: SimulatedNode, root_target: SshTarget, security: NodeSecurity, quick_retry: ReconnectPolicy
) -> SshTarget:
    """Take the node from cloud image to installed; return the admin target pinned to Legion's key."""
    pin = await scan_host_key("n1", node.address, node.ssh_port)
    root = dataclasses.replace(root_target, pinned_host_key=pin)
    async with await connect(root) as conn:
        assert (await conn.check("legion-node phase")).strip() == "cloud-image"
        await _step_with_reboot(conn, "legion-node kexec")
    async with await connect_with_retry(root, quick_retry) as conn:
        assert (await conn.check("legion-node phase")).strip() == "installer"
        stage = {
            "/etc/ssh/ssh_host_ed25519_key": security.identity.host_key.private_openssh,
            "/etc/legion/admin_authorized_keys": security.admin.authorized_keys_line() + "\n",
            "/etc/legion/admin_user": security.admin.username,
        }
        for path, content in stage.items():
            await conn.check(f"legion-node write-file {path} 0600", input=content)
        assert "installed" in await conn.check("legion-node install")
        await _step_with_reboot(conn, "legion-node reboot")
    return security.admin_ssh_target(node.address, node.ssh_port)


@pytest.fixture
def security(cluster: ClusterSecurity, node: SimulatedNode) -> NodeSecurity:
    return cluster.provision_node("n1", ip_addresses=[node.address])


@pytest.fixture
async def installed(
    node: SimulatedNode, root_target: SshTarget, security: NodeSecurity, quick_retry: ReconnectPolicy
) -> AsyncIterator[SshConnection]:
    admin = await _install(node, root_target, security, quick_retry)
    async with await connect_with_retry(admin, quick_retry) as conn:
        yield conn


async def _activate(conn: SshConnection, cluster: ClusterSecurity, security: NodeSecurity) -> None:
    files = {
        "/etc/tribes/tls/ca.pem": cluster.authority.certificate_pem,
        "/etc/tribes/tls/node.pem": security.certificate.certificate_pem,
        "/etc/tribes/tls/node.key": security.certificate.private_key_pem,
    }
    for path, content in files.items():
        await conn.check(f"legion-node write-file {path} 0600", input=content)
    await conn.check("legion-node activate-certs")


def _url(node: SimulatedNode, path: str) -> str:
    return f"https://{node.address}:{node.admin_port}{path}"


async def test_host_key_swap_after_install(
    node: SimulatedNode,
    root_target: SshTarget,
    security: NodeSecurity,
    installed: SshConnection,
) -> None:
    assert "Tribes OS" in await installed.check("cat /etc/os-release")
    assert (await installed.check("whoami")).strip() == "legion-admin"
    assert node.host_public_key.split()[:2] == security.pinned_host_key.split()[:2]
    with pytest.raises(HostKeyMismatchError, match=r"node n1 presented host key SHA256:"):
        await connect(root_target)  # still pinned to the cloud image's key


async def test_mtls_admin_api_accepts_only_cluster_certificates(
    node: SimulatedNode, cluster: ClusterSecurity, security: NodeSecurity, installed: SshConnection
) -> None:
    await _activate(installed, cluster, security)
    async with httpx.AsyncClient(verify=cluster.operator_ssl_context()) as client:
        health = (await client.get(_url(node, "/v1/health"))).json()
    assert health["node"] == "n1" and health["client"] == "legion-operator"

    foreign = ClusterSecurity.create("beta")
    # The node refuses a client certificate from another CA: the handshake fails.
    async with httpx.AsyncClient(verify=_client_context(cluster, foreign)) as client:
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(_url(node, "/v1/health"))
    # Legion refuses a node whose certificate comes from another CA.
    async with httpx.AsyncClient(verify=foreign.operator_ssl_context()) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(_url(node, "/v1/health"))


def _client_context(trusted: ClusterSecurity, presenting: ClusterSecurity) -> ssl.SSLContext:
    """Trust ``trusted``'s CA for the server, but present ``presenting``'s operator certificate."""
    return client_ssl_context(trusted.authority.certificate_pem, presenting.operator)


async def test_tribes_configuration_reaches_readiness(
    node: SimulatedNode, cluster: ClusterSecurity, security: NodeSecurity, installed: SshConnection
) -> None:
    not_ready = await installed.run("legion-node readiness")
    assert not_ready.exit_status == 1 and json.loads(not_ready.stdout)["ready"] is False
    with pytest.raises(NodeCommandError, match="activate-certs first"):
        await installed.check("legion-node configure-tribes", input="{}")
    await _activate(installed, cluster, security)
    handoff = sync_handoff(cluster, security, {"n1": node.address, "n2": "127.77.0.3"})
    assert "1 peer" in await installed.check("legion-node configure-tribes", input=json.dumps(handoff))
    report = json.loads(await installed.check("legion-node readiness"))
    assert report["ready"] is True and all(report["checks"].values())
    assert "Active: active (running)" in await installed.check("systemctl status tribes")

    async with httpx.AsyncClient(verify=cluster.operator_ssl_context()) as client:
        assert (await client.get(_url(node, "/v1/readiness"))).json()["ready"] is True
        metrics = (await client.get(_url(node, "/v1/metrics"))).json()
        assert metrics["sync_peers"] == 1 and metrics["tribes"] == "active"
        logs = (await client.get(_url(node, "/v1/logs"), params={"since": 0})).json()
        assert any("configure-tribes exit 0" in e["message"] for e in logs["entries"])
        later = (await client.get(_url(node, "/v1/logs"), params={"since": logs["next"]})).json()
        assert all(e["seq"] > logs["next"] for e in later["entries"])
        bad = await client.get(_url(node, "/v1/logs"), params={"since": "x"})
        assert bad.status_code == 400
        adv = (await client.get(_url(node, "/tang/adv"))).json()
    _verify_tang_advertisement(adv)


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify_tang_advertisement(adv: dict[str, object]) -> None:
    """The JWS verifies with the ES512 key it carries, and it carries an ECMR exchange key."""
    payload = str(adv["payload"])
    signature = adv["signatures"][0]  # type: ignore[index]
    keys = json.loads(_b64d(payload))["keys"]
    assert sorted(k["alg"] for k in keys) == ["ECMR", "ES512"]
    signing = next(k for k in keys if k["alg"] == "ES512")
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64d(signing["x"]), "big"), int.from_bytes(_b64d(signing["y"]), "big"), ec.SECP521R1()
    ).public_key()
    raw = _b64d(signature["signature"])
    der = encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big"))
    public.verify(der, f"{signature['protected']}.{payload}".encode(), ec.ECDSA(hashes.SHA512()))


async def test_admin_api_survives_a_reboot(
    node: SimulatedNode,
    cluster: ClusterSecurity,
    security: NodeSecurity,
    installed: SshConnection,
    quick_retry: ReconnectPolicy,
) -> None:
    await _activate(installed, cluster, security)
    port = node.admin_port
    await _step_with_reboot(installed, "reboot")
    await node.wait_up()
    assert node.admin_port == port
    async with httpx.AsyncClient(verify=cluster.operator_ssl_context()) as client:
        assert (await client.get(_url(node, "/v1/health"))).status_code == 200


async def test_injected_failures_and_wrong_material_are_one_line_errors(
    node: SimulatedNode, cluster: ClusterSecurity, security: NodeSecurity, installed: SshConnection
) -> None:
    node.faults.fail("activate-certs", "tpm busy")
    foreign = ClusterSecurity.create("beta")
    await installed.check(
        "legion-node write-file /etc/tribes/tls/ca.pem", input=foreign.authority.certificate_pem
    )
    await installed.check(
        "legion-node write-file /etc/tribes/tls/node.pem", input=security.certificate.certificate_pem
    )
    await installed.check(
        "legion-node write-file /etc/tribes/tls/node.key", input=security.certificate.private_key_pem
    )
    with pytest.raises(NodeCommandError, match=r"'legion-node activate-certs' exited 1: .*tpm busy"):
        await installed.check("legion-node activate-certs")
    with pytest.raises(NodeCommandError, match="not issued by the staged CA"):
        await installed.check("legion-node activate-certs")
    assert not node.system.admin_api_active


async def test_install_refuses_steps_out_of_order(root_target: SshTarget) -> None:
    async with await connect(root_target) as conn:
        with pytest.raises(NodeCommandError, match="run kexec first"):
            await conn.check("legion-node install")
        with pytest.raises(NodeCommandError, match="install and reboot first"):
            await conn.check("legion-node activate-certs")
        with pytest.raises(NodeCommandError, match="unknown step 'dance'"):
            await conn.check("legion-node dance")


async def _greet(node: SimulatedNode, context: ssl.SSLContext, source: str) -> bytes:
    """Dial the node's peer sync from ``source`` and say hello; what the node answers (b"" = nothing)."""
    reader, writer = await asyncio.open_connection(
        node.address, node.sync_port, ssl=context, local_addr=(source, 0)
    )
    try:
        writer.write(b"HELLO n2\n")
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def test_peer_sync_requires_cluster_certificate_and_allowed_address(
    node: SimulatedNode,
    cluster: ClusterSecurity,
    security: NodeSecurity,
    installed: SshConnection,
    quick_retry: ReconnectPolicy,
) -> None:
    await _activate(installed, cluster, security)
    handoff = sync_handoff(cluster, security, {"n1": node.address, "n2": "127.77.0.3"})
    await installed.check("legion-node configure-tribes", input=json.dumps(handoff))
    peer = cluster.provision_node("n2", ip_addresses=["127.77.0.3"])
    peer_context = client_ssl_context(cluster.authority.certificate_pem, peer.certificate)

    assert await _greet(node, peer_context, "127.77.0.3") == b"WELCOME n1 alpha\n"
    assert await _greet(node, peer_context, "127.77.0.9") == b""  # valid cert, address not allowed
    foreign = ClusterSecurity.create("beta").provision_node("n2", ip_addresses=["127.77.0.3"])
    foreign_context = client_ssl_context(cluster.authority.certificate_pem, foreign.certificate)
    try:
        answer = await _greet(node, foreign_context, "127.77.0.3")
    except (ssl.SSLError, ConnectionError):
        answer = b""  # the handshake failed (TLS 1.3 may report it only as a dropped stream)
    assert answer == b""
    messages = [e.message for e in node.system.journal if e.unit == "tribes-sync"]
    assert any("peer n2 from 127.77.0.3 synced" in m for m in messages)
    assert any("refused 127.77.0.9" in m for m in messages)

    await _step_with_reboot(installed, "reboot")  # sync comes back with the node
    await node.wait_up()
    assert await _greet(node, peer_context, "127.77.0.3") == b"WELCOME n1 alpha\n"
