"""Sandbox node faults: broken on purpose from the node's own shell or by a control call."""

from __future__ import annotations

import json
import time

import asyncssh
import pytest
from aiohttp.test_utils import TestClient, TestServer

from legion_nb.emulators.nodes import NodeFleet, SimulatedNode
from legion_nb.emulators.nodes.admin_api import create_admin_app
from legion_nb.emulators.nodes.system import NBDE_BINDING_PATH


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _public(key: asyncssh.SSHKey) -> str:
    return str(key.export_public_key("openssh").decode())


async def _ssh(node: SimulatedNode, key: asyncssh.SSHKey) -> asyncssh.SSHClientConnection:
    known = asyncssh.import_known_hosts(f"[{node.address}]:{node.ssh_port} {node.host_public_key}\n")
    return await asyncssh.connect(
        node.address, node.ssh_port, username="root", client_keys=[key], known_hosts=known, config=[]
    )


def _configured(node: SimulatedNode) -> None:
    """A node that runs Tribes with two peers and an NBDE binding naming two Tang peers."""
    peers = [{"name": "b"}, {"name": "c"}]
    node.system.tribes_config = {"cluster": "c", "node": node.hostname, "peers": peers}
    node.system.tribes_active_since = time.monotonic()
    node.system.files[NBDE_BINDING_PATH] = json.dumps(
        {"mode": "tang", "tang": [{"node": "b"}, {"node": "c"}], "recovery_passphrase": "s3cret"}
    )


async def test_systemctl_stops_and_starts_tribes_and_its_telemetry_sees_the_outage(
    client_key: asyncssh.SSHKey,
) -> None:
    async with SimulatedNode("127.79.1.2", hostname="a", authorized_keys=[_public(client_key)]) as node:
        _configured(node)
        async with await _ssh(node, client_key) as conn:
            stop = await conn.run("systemctl stop tribes", check=False)
            stopped = await conn.run("systemctl is-active tribes", check=False)
            outage = [list(span) for span in node.system.telemetry.outages]
            start = await conn.run("systemctl start tribes.service", check=False)
            started = await conn.run("systemctl is-active tribes", check=False)
            unknown = await conn.run("systemctl stop nginx", check=False)
    assert (stop.exit_status, stopped.exit_status, stopped.stdout) == (0, 3, "inactive\n")
    assert len(outage) == 1 and outage[0][1] is None  # an open outage while stopped
    assert (start.exit_status, started.stdout) == (0, "active\n")
    assert node.system.telemetry.outages[0][1] is not None  # closed once started again
    assert (unknown.exit_status, unknown.stderr) == (5, "Unit nginx could not be found.\n")
    systemd = [e.message for e in node.system.journal if e.unit == "systemd"]
    assert systemd == ["Stopped tribes.", "Started tribes."]


async def test_tribes_cannot_start_before_it_is_configured(client_key: asyncssh.SSHKey) -> None:
    node = SimulatedNode("127.79.1.3", authorized_keys=[_public(client_key)])
    async with node, await _ssh(node, client_key) as conn:
        result = await conn.run("systemctl start tribes", check=False)
    assert result.exit_status == 5 and "configure-tribes" in str(result.stderr)


async def test_logger_writes_a_journal_line(client_key: asyncssh.SSHKey) -> None:
    node = SimulatedNode("127.79.1.4", authorized_keys=[_public(client_key)])
    async with node, await _ssh(node, client_key) as conn:
        plain = await conn.run("logger maintenance window opens", check=False)
        tagged = await conn.run("logger -p user.err -t runbook disk almost full", check=False)
        bad = await conn.run("logger -p user.loud hi", check=False)
        empty = await conn.run("logger", check=False)
    lines = [(e.unit, e.priority, e.message) for e in node.system.journal if e.unit in ("root", "runbook")]
    assert lines == [("root", 5, "maintenance window opens"), ("runbook", 3, "disk almost full")]
    assert (plain.exit_status, tagged.exit_status) == (0, 0)
    assert bad.exit_status == 1 and "unknown priority name" in str(bad.stderr)
    assert empty.exit_status == 1 and "usage" in str(empty.stderr)


async def test_admin_api_reports_services_and_serves_the_faults() -> None:
    async with SimulatedNode("127.79.1.5", hostname="a") as node:
        _configured(node)
        node.system.sync_listening = True
        async with TestClient(TestServer(create_admin_app(node.system, node.tang))) as client:
            health = await (await client.get("/v1/health")).json()
            assert health["services"] == {
                "tribes": "active",
                "tribes-sync": "active",
                "tang": "active",
                "node-exporter": "active",
            }
            assert health["membership"] == ["b", "c"]
            assert health["nbde"] == {"mode": "tang", "tang": ["b", "c"]}
            assert "s3cret" not in json.dumps(health)  # the recovery passphrase never leaves the node

            await node.stop_service("tang")
            assert (await client.get("/tang/adv")).status == 503
            await node.start_service("tang")
            assert (await client.get("/tang/adv")).status == 200

            before = (await (await client.get("/v1/metrics")).json())["sampled_at_ms"]
            node.stall_metrics()
            node.system.telemetry.stalled_at = before - 60_000  # the exporter hung a minute ago
            stale = (await (await client.get("/v1/metrics")).json())["sampled_at_ms"]
            assert stale <= before - 60_000
            node.resume_metrics()

            assert node.diverge_membership() == "b"
            assert node.drop_tang_peer("c") == "c"
            health = await (await client.get("/v1/health")).json()
            assert (health["membership"], health["nbde"]["tang"]) == (["c"], ["b"])
            with pytest.raises(ValueError, match="no Tang peer zz"):
                node.drop_tang_peer("zz")

            node.break_admin_api()
            assert (await client.get("/v1/health")).status == 500
            node.break_admin_api(False)
            assert (await client.get("/v1/health")).status == 200


async def test_a_reboot_starts_every_stopped_service_again() -> None:
    async with SimulatedNode("127.79.1.6", hostname="a") as node:
        _configured(node)
        await node.stop_service("tribes")
        await node.stop_service("node-exporter")
        assert node.system.telemetry.stalled_at is not None
        node.system.boot()  # what power_on runs (without the sync port this test node has no certs for)
        assert node.system.service_state("tribes") == "active"
        assert node.system.telemetry.stalled_at is None and node.system.telemetry.outages[-1][1] is not None


async def test_fleet_finds_a_node_by_its_server_name() -> None:
    async with NodeFleet() as fleet:
        node = await fleet.start_node("127.79.1.7", "web-1")
        assert fleet.by_hostname("web-1") is node
        with pytest.raises(KeyError, match="no simulated node named web-2"):
            fleet.by_hostname("web-2")
