"""The firewall actor: the derived cluster set at the provider, peers only on 4413, node-level plans."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from resourcekit import SandboxProviders, State, change, materialize, peer_cidrs, plan_cluster

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.hetzner import state_of
from legion_nb.emulators.hetzner.actions import Action
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine import planning
from legion_nb.engine.resources.node import record_observed
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.hetzner import client as hetzner_client
from legion_nb.providers.hetzner.client import HetznerAdapter
from legion_nb.providers.records import Firewall, PortRange

FIREWALL = ResourceKey("firewall", "legion-default-hetzner")


def _sources(firewall: Firewall, port: int) -> set[str]:
    return {s for r in firewall.rules if r.port == PortRange.single(port) for s in r.sources}


async def _only_firewall(observer: dict[str, ProviderAdapter]) -> Firewall:
    [firewall] = await observer["hetzner"].list_firewalls()
    return firewall


async def test_the_cluster_firewall_admits_only_the_peers_on_4413(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2", "web-3"))
    rows = await materialize(supervisor)

    firewall = await _only_firewall(observer)
    servers = persistence.state.tracked.servers
    assert firewall.name == "legion-default-hetzner"
    assert all(servers[n].ipv6 for n in ("web-1", "web-2", "web-3")), "Hetzner servers get IPv6"
    assert _sources(firewall, 4413) == peer_cidrs(servers, ("web-1", "web-2", "web-3"))
    assert _sources(firewall, 22) == _sources(firewall, 8443) == {"127.0.0.1/32"}
    assert {r.port for r in firewall.rules} == {PortRange.single(p) for p in (22, 8443, 4413)}
    assert all(r.direction == "in" and r.protocol == "tcp" for r in firewall.rules)
    assert set(firewall.applied_to) == {servers[n].provider_id for n in ("web-1", "web-2", "web-3")}
    row = rows[FIREWALL]
    assert (row.lifecycle, row.health) == ("applied", "healthy")
    assert row.facts["servers"] == "web-1,web-2,web-3"


async def test_removing_a_server_takes_it_out_of_the_firewall(
    supervisor: ResourceSupervisor,
    persistence: State,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2", "web-3"))
    await materialize(supervisor)
    await change(persistence, lambda s: planning.remove_server(s, name="web-3"))

    await materialize(supervisor)

    firewall = await _only_firewall(observer)
    servers = persistence.state.tracked.servers
    assert _sources(firewall, 4413) == peer_cidrs(servers, ("web-1", "web-2"))
    assert set(firewall.applied_to) == {servers[n].provider_id for n in ("web-1", "web-2")}
    before = world.counters.mutations()
    await materialize(supervisor)
    assert world.counters.mutations() == before


async def test_a_provider_without_firewalls_gets_a_node_level_plan_and_no_calls(
    supervisor: ResourceSupervisor, persistence: State, world: SandboxWorld
) -> None:
    await plan_cluster(persistence, ("node-1", "node-2"), provider="ovh")
    rows = await materialize(supervisor)

    row = rows[ResourceKey("firewall", "legion-default-ovh")]
    assert (row.lifecycle, row.facts["enforcement"]) == ("applied", "node")
    tracked = persistence.state.tracked.firewalls["legion-default-ovh"]
    servers = persistence.state.tracked.servers
    assert tracked.provider_id == "" and tracked.servers == ("node-1", "node-2")
    [sync] = [r for r in tracked.rules if r.port == "4413"]
    assert set(sync.sources) == {f"{servers[n].ipv4}/32" for n in ("node-1", "node-2")}
    assert not any("firewall" in route for route in world.counters.snapshot().get("ovh", {}))


async def test_endpoints_changing_while_the_firewall_applies_end_in_the_latest_set(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    """A peer's address changes while the apply's provider calls are in flight: the actor applies
    the latest full set before it reports convergence."""
    await plan_cluster(persistence, ("web-1", "web-2"))
    await materialize(supervisor)
    await change(persistence, lambda s: planning.upsert_server(s, name="web-3", provider="hetzner"))
    moved = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def move_web1() -> None:
        def apply(s: LegionState) -> LegionState:
            servers = dict(s.tracked.servers)
            servers["web-1"] = replace(servers["web-1"], ipv4="127.20.9.9")
            return replace(s, tracked=replace(s.tracked, servers=servers))

        await change(persistence, apply)
        moved.set()

    def watch(batch: list[ActorSnapshot]) -> None:
        for snap in batch:
            if snap.key == FIREWALL and snap.operation == "apply" and not tasks:
                tasks.append(asyncio.get_running_loop().create_task(move_web1()))

    supervisor.subscribe(watch)
    await supervisor.sync_wave()
    await moved.wait()
    rows = {s.key: s for s in await supervisor.wait_settled(timeout=60)}

    firewall = await _only_firewall(observer)
    servers = persistence.state.tracked.servers
    expected = {"127.20.9.9/32", f"{servers['web-1'].ipv6}/128"} | peer_cidrs(servers, ("web-2", "web-3"))
    assert _sources(firewall, 4413) == expected
    assert rows[FIREWALL].lifecycle == "applied"


async def test_a_set_waits_with_a_visible_reason_while_peer_addresses_are_unknown(
    supervisor: ResourceSupervisor, persistence: State
) -> None:
    key = ResourceKey("firewall", "legion-default-scaleway")
    seen: list[ActorSnapshot] = []
    supervisor.subscribe(lambda batch: seen.extend(s for s in batch if s.key == key))
    await plan_cluster(persistence, ("sat-1", "sat-2"), provider="scaleway")

    rows = await materialize(supervisor)

    reasons = {s.waiting for s in seen if s.waiting}
    assert reasons and all(r.startswith("waiting for endpoints of sat-") for r in reasons)
    assert rows[key].lifecycle == "applied" and rows[key].waiting is None


async def test_the_last_server_leaving_takes_its_cluster_firewall_with_it(
    supervisor: ResourceSupervisor,
    persistence: State,
    observer: dict[str, ProviderAdapter],
) -> None:
    await plan_cluster(persistence, ("web-1",))
    await materialize(supervisor)
    await change(persistence, lambda s: planning.remove_server(s, name="web-1"))

    rows = await materialize(supervisor)

    assert await observer["hetzner"].list_servers() == []
    assert await observer["hetzner"].list_firewalls() == []
    assert persistence.state.tracked.firewalls == {} and persistence.state.tracked.servers == {}
    assert [r for r in rows.values() if r.error] == []


async def test_outside_a_wave_a_moved_address_waits_for_materialize_without_a_provider_write(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
    cloud: SandboxCloud,
) -> None:
    """A server's address changes at the provider and its actor reads it outside any wave (a
    session opening settles a create by lookup, or waits for a server left provisioning): the
    applied set says it is out of date and names the wave, in this session and in the next one,
    and nothing is written to the provider until that wave applies the full set."""
    await plan_cluster(persistence, ("web-1", "web-2"))
    await materialize(supervisor)
    before = world.counters.mutations()
    web1 = persistence.state.tracked.servers["web-1"].provider_id
    state_of(cloud.emulator("hetzner")).servers[int(web1)].ipv4 = "127.20.8.8"  # moved at the provider
    await record_observed(persistence, "web-1", await observer["hetzner"].get_server(web1))

    [row] = await supervisor.wait_settled([FIREWALL])
    assert (row.lifecycle, row.waiting) == ("applied", "legion materialize: rules out of date"), row
    assert world.counters.mutations() == before
    assert "127.20.8.8/32" not in _sources(await _only_firewall(observer), 4413)

    await supervisor.aclose()  # the next session: a fresh supervisor on the same state
    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as fresh:
        [row] = await fresh.wait_settled([FIREWALL])
        assert (row.lifecycle, row.waiting) == ("applied", "legion materialize: rules out of date"), row
        assert world.counters.mutations() == before

        rows = await materialize(fresh)

    assert (rows[FIREWALL].lifecycle, rows[FIREWALL].waiting) == ("applied", None)
    assert "127.20.8.8/32" in _sources(await _only_firewall(observer), 4413)
    assert world.counters.mutations() > before


async def test_a_teardown_detaches_the_firewall_again_when_a_server_vanishes_mid_release(
    supervisor: ResourceSupervisor,
    persistence: State,
    observer: dict[str, ProviderAdapter],
    cloud: SandboxCloud,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole cluster leaves: a server's own deletion completes between the firewall's read of
    what it is applied to and its ``remove_from_resources``, which the provider refuses (that
    server is gone) and which so leaves the other servers attached. The delete is then refused as
    ``resource_in_use``: the actor says why it waits, detaches again and the wave ends clean. The
    adapter's own re-read after that refusal is switched off, so the actor's recovery is what runs
    (it stays the net for a race the adapter's bounded attempts do not outlast)."""
    monkeypatch.setattr(hetzner_client, "DETACH_ATTEMPTS", 1)
    await plan_cluster(persistence, ("web-1", "web-2", "web-3"))
    await materialize(supervisor)
    project = state_of(cloud.emulator("hetzner"))
    read = HetznerAdapter._get_firewall
    vanished: list[int] = []
    reasons: list[str] = []

    async def read_then_lose_a_server(self: HetznerAdapter, firewall_id: str) -> Firewall:
        if vanished:  # the retry's read: the actor says why its deletion waits
            snapshot = supervisor.snapshot(FIREWALL)
            reasons.append(snapshot.waiting or "" if snapshot is not None else "")
        firewall = await read(self, firewall_id)
        if not vanished and len(firewall.applied_to) >= 2:
            sid = int(firewall.applied_to[0])
            project.servers.pop(sid)  # its delete action completed at the provider
            project.firewalls[int(firewall_id)].servers.remove(sid)
            vanished.append(sid)
        return firewall

    delete_firewall, complete = HetznerAdapter.delete_firewall, project.actions._complete_later
    firewall_delete_tried = asyncio.Event()

    async def try_delete_firewall(self: HetznerAdapter, firewall_id: str) -> None:
        firewall_delete_tried.set()
        await delete_firewall(self, firewall_id)

    async def complete_after_the_firewall_delete(action: Action, seconds: float) -> None:
        if action.command == "delete_server":  # the other servers are still being deleted
            await firewall_delete_tried.wait()
        await complete(action, seconds)

    monkeypatch.setattr(HetznerAdapter, "_get_firewall", read_then_lose_a_server)
    monkeypatch.setattr(HetznerAdapter, "delete_firewall", try_delete_firewall)
    monkeypatch.setattr(project.actions, "_complete_later", complete_after_the_firewall_delete)
    for name in ("web-1", "web-2", "web-3"):
        await change(persistence, lambda s, name=name: planning.remove_server(s, name=name))

    rows = await materialize(supervisor)

    assert vanished, "the release read the firewall while several servers were applied"
    assert [r for r in rows.values() if r.error] == []
    assert reasons and all("still holds the firewall in use" in r for r in reasons), reasons
    assert await observer["hetzner"].list_firewalls() == []
    assert await observer["hetzner"].list_servers() == []
    assert persistence.state.tracked.firewalls == {} and persistence.state.tracked.servers == {}
