"""Simulated nodes: the fleet, the shell's commands over real SSH, loopback-only addresses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncssh
import httpx
import pytest

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.nodes import NodeFleet, NodeTiming, SimulatedNode
from legion_nb.emulators.ovh.app import state_of as ovh_state_of
from legion_nb.emulators.world import SandboxWorld, Timing


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


async def test_fleet_starts_stops_and_syncs(client_key: asyncssh.SSHKey) -> None:
    async with NodeFleet(authorized_keys=[_public(client_key)], timing=NodeTiming()) as fleet:
        await fleet.sync({"127.79.0.2": "a", "127.79.0.3": "b"})
        assert fleet.addresses() == ["127.79.0.2", "127.79.0.3"]
        first = fleet.node("127.79.0.2")
        assert fleet.endpoints()["127.79.0.2"] == {"ssh": first.ssh_port, "admin": 0, "sync": 0}
        assert await fleet.start_node("127.79.0.2", "renamed") is first  # idempotent
        async with await _ssh(first, client_key) as conn:
            assert (await conn.run("hostname")).stdout == "a\n"
        await fleet.sync({"127.79.0.3": "b"})
        assert "127.79.0.2" not in fleet and not first.is_up
        with pytest.raises(KeyError, match=r"no simulated node at 127\.79\.0\.2"):
            fleet.node("127.79.0.2")
        await fleet.stop_node("127.79.0.2")  # idempotent
        survivor = fleet.node("127.79.0.3")
    assert fleet.addresses() == [] and not survivor.is_up


async def test_shell_commands(client_key: asyncssh.SSHKey) -> None:
    node = SimulatedNode("127.79.0.9", hostname="box", authorized_keys=[_public(client_key)])
    async with node, await _ssh(node, client_key) as conn:
        results = {
            cmd: await conn.run(cmd, check=False)
            for cmd in (
                "echo a 'b c'",
                "hostname",
                "uptime",
                "cat /etc/os-release",
                "systemctl status tribes",
                "systemctl is-active tribes",
                "systemctl status nginx",
                "stty size",
                "cat /nope",
                "echo 'unterminated",
                "legion-node phase",
                "legion-node",
            )
        }
    assert results["echo a 'b c'"].stdout == "a b c\n"
    assert results["hostname"].stdout == "box\n"
    assert "up 0 min" in str(results["uptime"].stdout)
    assert "ID=debian" in str(results["cat /etc/os-release"].stdout)
    assert results["systemctl status tribes"].exit_status == 3
    assert "Active: inactive (dead)" in str(results["systemctl status tribes"].stdout)
    assert (
        results["systemctl is-active tribes"].exit_status,
        results["systemctl is-active tribes"].stdout,
    ) == (
        3,
        "inactive\n",
    )
    assert results["systemctl status nginx"].exit_status == 4
    assert results["stty size"].exit_status == 1  # no PTY on an exec request
    assert results["cat /nope"].stderr == "cat: /nope: No such file or directory\n"
    assert results["echo 'unterminated"].exit_status == 2
    assert results["legion-node phase"].stdout == "cloud-image\n"
    assert results["legion-node"].exit_status == 2


async def test_faults_fail_the_named_step_the_given_times(client_key: asyncssh.SSHKey) -> None:
    async with SimulatedNode("127.79.0.10", authorized_keys=[_public(client_key)]) as node:
        node.faults.fail("readiness", "disk full", times=2)
        async with await _ssh(node, client_key) as conn:
            outcomes = [await conn.run("legion-node readiness", check=False) for _ in range(3)]
    assert [o.stderr for o in outcomes[:2]] == ["legion-node readiness: disk full\n"] * 2
    assert outcomes[2].stderr == "" and '"ready": false' in str(outcomes[2].stdout)
    assert any("readiness failed: disk full" in e.message for e in node.system.journal)


async def test_unknown_keys_and_users_are_refused(client_key: asyncssh.SSHKey) -> None:
    async with SimulatedNode("127.79.0.11", authorized_keys=[_public(client_key)]) as node:
        with pytest.raises(asyncssh.PermissionDenied):
            await _ssh(node, asyncssh.generate_private_key("ssh-ed25519"))
        known = asyncssh.import_known_hosts(f"[{node.address}]:{node.ssh_port} {node.host_public_key}\n")
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(
                node.address,
                node.ssh_port,
                username="legion-admin",
                client_keys=[client_key],
                known_hosts=known,
                config=[],
            )


def test_nodes_live_on_loopback_only() -> None:
    with pytest.raises(ValueError, match=r"outside 127\.0\.0\.0/8"):
        SimulatedNode("10.0.0.5")


async def test_sandbox_cloud_boots_a_node_for_each_running_hetzner_server(
    client_key: asyncssh.SSHKey,
) -> None:
    world = SandboxWorld(seed=3, timing=Timing(action_seconds=0.02, boot_seconds=0.02))
    async with SandboxCloud(world, nodes=NodeFleet()) as cloud:
        hz = cloud.endpoints()["hetzner"]
        fleet = cloud.nodes
        assert fleet is not None
        headers = {"Authorization": f"Bearer {hz['token']}"}
        async with httpx.AsyncClient(base_url=hz["url"], headers=headers) as api:
            key = await api.post("/ssh_keys", json={"name": "legion", "public_key": _public(client_key)})
            assert key.status_code == 201
            body = {
                "name": "web-1",
                "server_type": "cx22",
                "image": "debian-12",
                "location": "fsn1",
                "ssh_keys": ["legion"],
            }
            created = (await api.post("/servers", json=body)).json()["server"]
            address = created["public_net"]["ipv4"]["ip"]
            node = await fleet.wait_node(address)
            async with await _ssh(node, client_key) as conn:
                assert (await conn.run("hostname")).stdout == "web-1\n"
            action = (await api.delete(f"/servers/{created['id']}")).json()["action"]
            while (await api.get(f"/actions/{action['id']}")).json()["action"]["status"] == "running":
                await asyncio.sleep(0.02)
            while address in fleet:  # the delete's stop task runs in the world
                await asyncio.sleep(0.01)
            assert not node.is_up
    assert fleet.addresses() == []


async def test_ovh_instances_get_nodes_too(client_key: asyncssh.SSHKey) -> None:
    world = SandboxWorld(seed=4, timing=Timing(action_seconds=0.02, boot_seconds=0.02))
    async with SandboxCloud(world, nodes=NodeFleet()) as cloud:
        compute = ovh_state_of(cloud.emulator("ovh")).compute
        fleet = cloud.nodes
        assert fleet is not None
        key = compute.add_ssh_key("legion", _public(client_key), "GRA11")
        instance = compute.launch(
            name="db-1",
            region="GRA11",
            flavor_id=compute.catalog.flavor_ids("GRA11")[0],
            image_id=compute.catalog.image_ids("GRA11")[0],
            ssh_key_id=key.id,
            user_data=None,
            monthly=False,
        )
        node = await fleet.wait_node(instance.ip)
        async with await _ssh(node, client_key) as conn:
            assert (await conn.run("hostname")).stdout == "db-1\n"


async def _eventually(predicate: Callable[[], bool]) -> None:
    """Wait for a world task to take effect (the test's timeout bounds it)."""
    while not predicate():
        await asyncio.sleep(0.01)


async def test_hetzner_power_reboot_and_rebuild_reach_the_node(client_key: asyncssh.SSHKey) -> None:
    world = SandboxWorld(seed=5, timing=Timing(action_seconds=0.02, boot_seconds=0.02))
    async with SandboxCloud(world, nodes=NodeFleet(timing=NodeTiming(reboot=0.01))) as cloud:
        hz = cloud.endpoints()["hetzner"]
        fleet = cloud.nodes
        assert fleet is not None
        headers = {"Authorization": f"Bearer {hz['token']}"}
        async with httpx.AsyncClient(base_url=hz["url"], headers=headers) as api:

            async def act(server_id: int, action: str, **body: str) -> None:
                started = (await api.post(f"/servers/{server_id}/actions/{action}", json=body)).json()
                path = f"/actions/{started['action']['id']}"
                while (await api.get(path)).json()["action"]["status"] == "running":
                    await asyncio.sleep(0.01)

            await api.post("/ssh_keys", json={"name": "legion", "public_key": _public(client_key)})
            body = {
                "name": "app-1",
                "server_type": "cx22",
                "image": "debian-12",
                "location": "fsn1",
                "ssh_keys": ["legion"],
            }
            created = (await api.post("/servers", json=body)).json()["server"]
            node = await fleet.wait_node(created["public_net"]["ipv4"]["ip"])
            node.system.files["/srv/mark"] = "kept on disk"
            first_key = node.host_public_key

            await act(created["id"], "reboot")
            await _eventually(lambda: node.boots == 1 and node.is_up)
            await act(created["id"], "poweroff")
            await _eventually(lambda: not node.is_up)
            await act(created["id"], "poweron")
            await _eventually(lambda: node.is_up)
            assert node.system.files["/srv/mark"] == "kept on disk" and node.host_public_key == first_key

            await act(created["id"], "rebuild", image="debian-12")
            await _eventually(lambda: not node.is_up)  # the old disk is gone (popped, then closed)
            fresh = await fleet.wait_node(node.address)
            assert "/srv/mark" not in fresh.system.files and fresh.host_public_key != first_key
            async with await _ssh(fresh, client_key) as conn:
                assert (await conn.run("legion-node phase")).stdout == "cloud-image\n"
