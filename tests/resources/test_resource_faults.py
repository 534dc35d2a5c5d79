"""Injected provider faults (429, 5xx, committed-then-dropped): waves converge on the same provider
state as a clean run, with no duplicate resources."""

from __future__ import annotations

import pytest
from resourcekit import State, make_world, peer_cidrs, plan_cluster

from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.ownership import LEGION_MANAGED_LABEL
from legion_nb.providers.records import PortRange

NAMES = ("web-1", "web-2", "web-3")


@pytest.fixture(params=[11, 23])
def world(request: pytest.FixtureRequest) -> SandboxWorld:
    return make_world(seed=int(request.param), fault_rate=0.2)


async def _converge(supervisor: ResourceSupervisor, waves: int = 8) -> list[ActorSnapshot]:
    """What an operator does after a partial failure: materialize again (repairs first)."""
    rows: list[ActorSnapshot] = []
    for _ in range(waves):
        await supervisor.run_repairs()
        await supervisor.sync_wave()
        rows = await supervisor.wait_settled(timeout=60)
        if all(r.error is None for r in rows):
            return rows
    return rows


async def test_materialize_under_faults_converges_without_duplicates(
    supervisor: ResourceSupervisor,
    persistence: State,
    world: SandboxWorld,
    observer: dict[str, ProviderAdapter],
) -> None:
    await plan_cluster(persistence, NAMES, zone="example.org")

    rows = await _converge(supervisor)

    assert [r for r in rows if r.error is not None] == []
    world.faults = FaultPlan(rate=0.0, seed=0)  # read the result without faults
    servers = await observer["hetzner"].list_servers()
    assert sorted(s.name for s in servers) == list(NAMES)  # exactly one of each
    tracked = persistence.state.tracked
    assert {s.id for s in servers} == {tracked.servers[n].provider_id for n in NAMES}
    assert tracked.pending == {}
    addresses = {tracked.servers[n].ipv4 for n in NAMES}
    records = await observer["hetzner"].list_records("example.org")
    assert {v for r in records if (r.name, r.type) == ("www", "A") for v in r.values} == addresses
    [firewall] = await observer["hetzner"].list_firewalls()
    sync = {s for r in firewall.rules if r.port == PortRange.single(4413) for s in r.sources}
    assert sync == peer_cidrs(tracked.servers, NAMES)
    assert {r.key for r in rows} >= {ResourceKey("server", n) for n in NAMES}


async def test_scaleway_servers_and_security_group_converge_under_faults(
    supervisor: ResourceSupervisor,
    persistence: State,
    world: SandboxWorld,
    observer: dict[str, ProviderAdapter],
) -> None:
    """Scaleway creates servers stopped and starts them with a second call, and its names are not
    unique: a lost answer there is where duplicates would come from."""
    await plan_cluster(persistence, NAMES, provider="scaleway")

    rows = await _converge(supervisor)

    assert [r for r in rows if r.error is not None] == []
    world.faults = FaultPlan(rate=0.0, seed=0)
    servers = await observer["scaleway"].list_servers()
    assert sorted(s.name for s in servers) == list(NAMES)
    assert {s.status for s in servers} == {"running"}
    tracked = persistence.state.tracked
    [group] = [g for g in await observer["scaleway"].list_firewalls() if g.labels.get(LEGION_MANAGED_LABEL)]
    sync = {s for r in group.rules if r.port == PortRange.single(4413) for s in r.sources}
    assert sync == {f"{tracked.servers[n].ipv4}/32" for n in NAMES}
    assert set(group.applied_to) == {tracked.servers[n].provider_id for n in NAMES}
    assert tracked.pending == {}
