"""The resource supervisor: actors follow the state, coalesced publication, stop at lock."""

from __future__ import annotations

import asyncio

import pytest
from resourcekit import SandboxProviders, State, change, plan_cluster, server_key

from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine import planning
from legion_nb.engine.resources.actor import OPERATOR_CIDRS_ENV, ResourceSettings
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.errors import LockedError, ValidationError


async def test_ten_thousand_snapshot_changes_in_one_tick_are_one_publication(
    supervisor: ResourceSupervisor, persistence: State
) -> None:
    names = tuple(f"node-{i:03d}" for i in range(100))
    await plan_cluster(persistence, names)
    await supervisor.sync_from_state()
    await asyncio.sleep(0.05)  # let the reactive pass after the plan change finish first
    calls: list[list[ActorSnapshot]] = []
    supervisor.subscribe(calls.append)
    actors = [supervisor.actor(server_key(n)) for n in names]
    before = supervisor.publications

    for round_ in range(100):  # 100 actors x 100 changes, no await in between: one loop tick
        for actor in actors:
            assert actor is not None
            actor.error = f"change {round_}"
            actor.touch()
    await _next_tick()

    assert supervisor.publications == before + 1
    [published] = calls
    assert len(published) == 100  # the latest snapshot of each changed actor, once
    assert {s.error for s in published} == {"change 99"}
    assert all(s.revision >= 100 for s in published)


async def _next_tick() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_failing_listener_does_not_starve_the_others(
    supervisor: ResourceSupervisor, persistence: State
) -> None:
    seen: list[list[ActorSnapshot]] = []

    def broken(_: list[ActorSnapshot]) -> None:
        raise RuntimeError("listener bug")

    supervisor.subscribe(broken)
    unsubscribe = supervisor.subscribe(seen.append)
    await plan_cluster(persistence, ("web-1",))
    await supervisor.sync_from_state()
    await _next_tick()
    assert any(s.key == server_key("web-1") for batch in seen for s in batch)

    unsubscribe()
    seen.clear()
    await change(persistence, lambda s: planning.upsert_server(s, name="web-2", provider="hetzner"))
    await supervisor.sync_from_state()
    await _next_tick()
    assert seen == []


async def test_actors_follow_the_plan_without_touching_the_provider(
    supervisor: ResourceSupervisor, persistence: State, world: SandboxWorld
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2"), zone="example.org")
    await change(persistence, lambda s: planning.upsert_domain(s, name="example.org", provider="ovh"))
    await supervisor.sync_from_state()

    keys = set(supervisor.keys())
    assert keys == {
        server_key("web-1"),
        server_key("web-2"),
        ResourceKey("dns_zone", "example.org"),
        ResourceKey("firewall", "legion-default-hetzner"),
        ResourceKey("domain", "example.org"),
    }
    rows = {s.key: s for s in supervisor.snapshots()}
    assert rows[server_key("web-1")].lifecycle == "absent" and rows[server_key("web-1")].settled
    assert rows[ResourceKey("dns_zone", "example.org")].lifecycle == "planned"
    assert world.counters.total() == 0  # planning is not materializing

    await change(persistence, lambda s: planning.remove_dns_host(s, host="www", zone="example.org"))
    await change(persistence, lambda s: planning.remove_server(s, name="web-2"))
    await supervisor.sync_from_state()
    assert supervisor.actor(server_key("web-2")) is None


async def test_the_domain_actor_says_plainly_that_it_does_not_manage_registration(
    supervisor: ResourceSupervisor, persistence: State, world: SandboxWorld
) -> None:
    await change(persistence, lambda s: planning.upsert_domain(s, name="example.org", provider="ovh"))
    await supervisor.sync_wave()
    [row] = await supervisor.wait_settled([ResourceKey("domain", "example.org")])
    assert (row.lifecycle, row.settled, row.error) == ("unmanaged", True, None)
    assert "not managed through the provider API" in row.facts["note"]
    assert world.counters.total() == 0


async def test_stop_stops_every_actor_and_refuses_waves(
    supervisor: ResourceSupervisor, persistence: State
) -> None:
    await plan_cluster(persistence, ("web-1",))
    await supervisor.sync_from_state()
    actor = supervisor.actor(server_key("web-1"))
    assert actor is not None

    await supervisor.aclose()

    assert actor.stopped and actor.snapshot().lifecycle == "stopped"
    assert supervisor.snapshots() == []
    with pytest.raises(LockedError):
        await supervisor.sync_wave()
    with pytest.raises(LockedError):
        await supervisor.run_repairs()


async def test_stopping_mid_create_keeps_the_intent_and_a_new_supervisor_settles_it(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    world: SandboxWorld,
) -> None:
    """Logout while a create is in flight: the invoke is cancelled, the durable intent survives,
    and the next unlock finds the server instead of creating a second one."""
    await plan_cluster(persistence, ("web-1",))
    await supervisor.sync_wave()
    while not persistence.state.tracked.pending and not persistence.state.tracked.servers:
        await _next_tick()
    await supervisor.aclose()
    await change(persistence, lambda s: s, reason="barrier: writes taken before the stop land first")

    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as fresh:
        await fresh.sync_wave()
        rows = {s.key: s for s in await fresh.wait_settled(timeout=60)}
    assert rows[server_key("web-1")].lifecycle == "running"
    assert world.counters.snapshot()["hetzner"]["POST /v1/servers"] <= 1
    assert persistence.state.tracked.pending == {}


def test_operator_cidrs_come_from_the_environment_and_bad_ones_are_refused() -> None:
    assert ResourceSettings.from_env({}).admin_sources is None
    settings = ResourceSettings.from_env({OPERATOR_CIDRS_ENV: " 198.51.100.7 , 2001:db8::/32,"})
    assert settings.admin_sources == ("198.51.100.7/32", "2001:db8::/32")
    with pytest.raises(ValidationError, match=f"^{OPERATOR_CIDRS_ENV}: .*not an address or CIDR"):
        ResourceSettings.from_env({OPERATOR_CIDRS_ENV: "10.0.0.1,localhost"})
