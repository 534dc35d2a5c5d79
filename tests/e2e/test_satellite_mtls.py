"""A satellite's Sender API answers only the engine that set it up.

The setup hands the satellite its cluster's CA, a certificate naming its address and the name of
Legion's operator certificate, over the pinned SSH session. From then on the Sender API is HTTPS
with mutual TLS: the engine's own probes drive streams, while a client with no certificate, with
a certificate from another CA (another Legion), or with a certificate from the same CA that is not
the operator's (a peer node's) is refused with one clear line - and none of them starts a stream.
No private key reaches a log (captured while the satellite is set up again, and Legion's own log
files), the satellite's journal, an error or the snapshot.
"""

from __future__ import annotations

import json
import logging
import ssl

import httpx
import pytest
from e2ekit import fleet_of

from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.engine.deployment.certificates import client_ssl_context
from legion_nb.engine.deployment.node_reach import satellite_endpoint
from legion_nb.engine.deployment.security import ClusterSecurity, NodeSecurity
from legion_nb.engine.runtime import Engine
from legion_nb.providers.satellite import SatelliteClient, SatelliteTrustError

pytestmark = pytest.mark.slow


def sender_of(engine: Engine) -> SimulatedNode:
    return fleet_of(engine).by_hostname("sat1")


async def health_with(engine: Engine, context: ssl.SSLContext) -> object:
    node = sender_of(engine)
    assert node.sender_port is not None
    found = satellite_endpoint(engine.state, "sat1", node.sender_port)
    assert found is not None
    client = SatelliteClient("sat1", found[0], context)
    try:
        await client.start("intruder", "tcp://127.0.0.1:9")
        return await client.health()
    finally:
        await client.aclose()


def secrets_of(engine: Engine) -> list[str]:
    """The private keys the satellite's mTLS rests on (the body of each PEM, without its armour)."""
    cluster = ClusterSecurity.from_dict(engine.state.deployment.clusters["default"].security)
    node = NodeSecurity.from_dict(engine.state.deployment.nodes["sat1"].security)
    pems = (
        cluster.operator.private_key_pem,
        node.certificate.private_key_pem,
        cluster.authority.private_key_pem,
    )
    return ["".join(pem.strip().splitlines()[1:-1])[:40] for pem in pems]


async def test_only_the_engine_that_set_the_satellite_up_drives_its_sender(
    satellite: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Set up again while every log is captured: the setup hands the satellite its private key.
    assert (await satellite.server_reinstall("sat1")).status == "succeeded"
    state = satellite.state
    cluster = ClusterSecurity.from_dict(state.deployment.clusters["default"].security)
    node = sender_of(satellite)

    # The engine's own client: the health phase passed, and its probe drives a stream.
    receiver = fleet_of(satellite).receiver
    assert receiver is not None
    view = await satellite.stream_start("sat1", "feed", receiver.url())
    assert view["state"] in ("starting", "live") and view["reason"] != "failed", view
    assert list(node.senders.sessions) == ["feed"]

    refusals: list[str] = []
    ca = cluster.authority.certificate_pem
    no_certificate = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca)
    other = ClusterSecurity.create("default")  # another Legion's cluster: another CA
    peer = cluster.provision_node("c1")  # a node certificate from the same CA: not the operator
    for context, why in (
        (no_certificate, "refuses Legion's client certificate"),  # the satellite's verdict
        (client_ssl_context(ca, other.operator), "refuses Legion's client certificate"),
        (other.operator_ssl_context(), "failed the mTLS handshake"),  # and the client's: not its CA
        (client_ssl_context(ca, peer.certificate), "refused Legion's client certificate .*HTTP 403"),
    ):
        with pytest.raises(SatelliteTrustError, match=why) as refused:
            await health_with(satellite, context)
        assert len(refused.value.message.splitlines()) == 1 and refused.value.temporary is False
        refusals.append(refused.value.message)
    assert list(node.senders.sessions) == ["feed"]  # no refused client started a stream

    async with httpx.AsyncClient() as plain:  # and plain HTTP gets nothing
        with pytest.raises(httpx.HTTPError):
            await plain.get(f"http://{node.address}:{node.sender_port}/health")

    # The satellite still answers its own engine (and nothing of the above reached the streams).
    (listed,) = await satellite.stream_list(probe=True)
    assert listed["name"] == "feed" and listed["state"] != "failed", listed

    log_files = [f.read_bytes().decode("latin-1") for f in satellite.core.log_dir.rglob("*") if f.is_file()]
    shown = [
        *log_files,
        caplog.text,
        "\n".join(entry.message for entry in node.system.journal),
        "\n".join(refusals),
        json.dumps(await satellite.snapshot(), default=str),
    ]
    for secret in secrets_of(satellite):
        assert not any(secret in text for text in shown)
    assert not any("PRIVATE KEY" in text for text in shown)
