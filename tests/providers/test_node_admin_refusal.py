"""The node admin client tells a refused certificate from a node that does not answer.

Against a simulated node's real admin API (HTTPS, mutual TLS against its cluster's CA): with TLS 1.3
a node refusing the client's certificate resets the connection after the handshake, before any
response, and the client names that - the node refused Legion's certificate (or was restarting) and
`legion server reinstall NODE` issues it the cluster's certificates again. A failed handshake stays
a trust error, and a powered-off node or one that never answers stays "unreachable".
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.emulators.nodes.system import TLS_CA_PATH, TLS_CERT_PATH, TLS_KEY_PATH
from legion_nb.engine.deployment.certificates import client_ssl_context
from legion_nb.engine.deployment.security import ClusterSecurity
from legion_nb.providers.mtls_failure import classify_mtls_failure
from legion_nb.providers.node_admin import (
    NodeAdminClient,
    NodeAdminRefusedError,
    NodeAdminTrustError,
    NodeAdminUnreachableError,
    admin_url,
)

ADDRESS = "127.0.0.1"


@pytest.fixture(scope="module")
def cluster() -> ClusterSecurity:
    return ClusterSecurity.create("default")


@pytest.fixture
async def node(cluster: ClusterSecurity) -> AsyncIterator[SimulatedNode]:
    """A node whose admin API serves the certificate ``cluster``'s CA issued it."""
    issued = cluster.provision_node("n1", ip_addresses=[ADDRESS]).certificate
    async with SimulatedNode(ADDRESS, hostname="n1") as running:
        running.system.files[TLS_CA_PATH] = cluster.authority.certificate_pem
        running.system.files[TLS_CERT_PATH] = issued.certificate_pem
        running.system.files[TLS_KEY_PATH] = issued.private_key_pem
        await running.start_admin_api()
        yield running


def client_for(node: SimulatedNode, context: ssl.SSLContext) -> NodeAdminClient:
    return NodeAdminClient("n1", admin_url(ADDRESS, node.admin_port), context)


async def test_a_certificate_from_another_ca_is_a_refusal_naming_the_command(
    node: SimulatedNode, cluster: ClusterSecurity
) -> None:
    async with client_for(node, cluster.operator_ssl_context()) as own:
        assert (await own.health())["node"] == "n1"
    stranger = ClusterSecurity.create("default").operator  # another Legion's operator certificate
    async with client_for(node, client_ssl_context(cluster.authority.certificate_pem, stranger)) as other:
        with pytest.raises(NodeAdminRefusedError) as refused:
            await other.health()
        assert await other.tang_serving() is False  # a refused peer serves nobody Tang
    message = refused.value.message
    assert len(message.splitlines()) == 1
    assert "refuses Legion's operator certificate" in message and "restarting" in message
    assert "legion server reinstall n1" in message
    assert isinstance(refused.value, NodeAdminTrustError) and refused.value.temporary is True
    assert refused.value.code == "node_admin_refused"


async def test_a_failed_handshake_stays_a_trust_error(node: SimulatedNode) -> None:
    other = ClusterSecurity.create("default")  # pins another CA: Legion refuses the node
    async with client_for(node, other.operator_ssl_context()) as client:
        with pytest.raises(NodeAdminTrustError) as caught:
            await client.health()
    assert not isinstance(caught.value, NodeAdminRefusedError)
    assert "cluster CA" in caught.value.message and "\n" not in caught.value.message


async def test_a_powered_off_node_is_unreachable_not_refused(
    node: SimulatedNode, cluster: ClusterSecurity
) -> None:
    await node.power_off()
    async with client_for(node, cluster.operator_ssl_context()) as client:
        with pytest.raises(NodeAdminUnreachableError, match="does not answer") as caught:
            await client.health()
    assert not isinstance(caught.value, NodeAdminTrustError)
    assert classify_mtls_failure(caught.value.__cause__) == "unreachable"  # type: ignore[arg-type]


async def test_a_node_that_never_answers_times_out_as_unreachable(cluster: ClusterSecurity) -> None:
    stalled: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, ADDRESS, 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        url = admin_url(ADDRESS, port)
        async with NodeAdminClient("n1", url, cluster.operator_ssl_context(), timeout=0.2) as client:
            with pytest.raises(NodeAdminUnreachableError, match="timed out"):
                await client.health()
    finally:
        for writer in stalled:
            writer.close()
        server.close()
        await server.wait_closed()
