"""Fleet scale, structurally: derived plans are built once per state, commits touch only the actors
they affect, and long work on the loop yields. Speed itself is measured in ``benchmarks/scale.py``."""

from __future__ import annotations

import dataclasses
import gc
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from legion_nb.engine.cluster import firewall_plan
from legion_nb.engine.cluster.firewall_plan import FirewallSetPlan
from legion_nb.engine.looplag import LoopLagProbe
from legion_nb.engine.resources import supervisor
from legion_nb.engine.resources.actor import ResourceActor, ResourceSettings
from legion_nb.engine.resources.affected import affected_keys
from legion_nb.engine.resources.snapshot import ResourceKey
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.engine.state.edits import with_tracked
from legion_nb.engine.state.model import LegionState, PlannedAccess, encode_state, synthetic_state
from legion_nb.engine.state.store import SecureStateStore

PASSWORD = "correct horse battery staple"
SERVERS = 150  # three clusters of 50 on three providers: nine derived firewall sets


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine unlocked on a synthetic fleet of ``SERVERS`` tracked servers."""
    path = tmp_path / "fleet" / "state.legion"
    path.parent.mkdir(mode=0o700)
    (await SecureStateStore.create(path, PASSWORD, encode_state(synthetic_state(SERVERS)))).close()
    engine = create_engine(path)
    try:
        yield engine
    finally:
        await engine.aclose()


@pytest.fixture
def plan_builds(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """How often each state value had its firewall plan built, wherever in legion_nb it was asked
    for (every module that imported the builder gets the counting one)."""
    builds: Counter[int] = Counter()
    kept: list[LegionState] = []  # keeps every counted state alive, so no id is reused
    real = firewall_plan.build_cluster_firewall_plan

    def counting(state: LegionState, **kwargs: Any) -> Mapping[str, FirewallSetPlan]:
        kept.append(state)
        builds[id(state)] += 1
        return real(state, **kwargs)

    name = "build_cluster_firewall_plan"
    for module in list(sys.modules.values()):
        if module.__name__.startswith("legion_nb") and vars(module).get(name) is real:
            monkeypatch.setattr(module, name, counting)
    return builds


async def test_each_state_has_its_firewall_plan_built_at_most_once(
    fleet: Engine, plan_builds: Counter[int]
) -> None:
    await fleet.unlock(PASSWORD)
    stream = fleet.subscribe(["snapshot"])
    await stream.__anext__()
    commits = [
        fleet.plan_upsert_server(name="extra-1", provider="hetzner", cluster="c000"),
        fleet.plan_set_operator_cidrs(["203.0.113.7/32"]),
        fleet.plan_upsert_dns_zone(zone="fleet.example.org", provider="hetzner"),
        fleet.plan_remove_server("node-00140"),
    ]
    for commit in commits:
        await commit
        await fleet.core.resources.wait_settled()
        await fleet.snapshot()
        await fleet.diff()
    await stream.aclose()

    assert plan_builds, "the engine never derived a firewall plan"
    assert max(plan_builds.values()) == 1
    assert len(plan_builds) <= 1 + len(commits)  # the unlocked state and one per commit


async def test_a_zone_edit_builds_no_firewall_plan_no_server_keys_and_its_keys_once(
    fleet: Engine, plan_builds: Counter[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    await fleet.unlock(PASSWORD)
    await fleet.core.resources.wait_settled()
    await fleet.snapshot()
    builds = sum(plan_builds.values())
    computed: list[LegionState] = []
    real = supervisor.desired_keys

    def counting(
        state: LegionState, plans: Mapping[str, FirewallSetPlan], **given: Any
    ) -> dict[ResourceKey, str]:
        computed.append(state)
        return real(state, plans, **given)

    fleet_keys: list[LegionState] = []
    real_servers = supervisor.server_keys

    def counting_servers(state: LegionState) -> dict[ResourceKey, str]:
        fleet_keys.append(state)
        return real_servers(state)

    monkeypatch.setattr(supervisor, "desired_keys", counting)
    monkeypatch.setattr(supervisor, "server_keys", counting_servers)
    await fleet.plan_upsert_dns_zone(zone="fleet.example.org", provider="hetzner")
    await fleet.core.resources.wait_settled()
    await fleet.snapshot()
    await fleet.diff()

    assert sum(plan_builds.values()) == builds  # zones are not an input of the firewall plan
    assert computed == [fleet.state]  # the pass after the new zone actor settled had nothing to start
    assert fleet_keys == []  # the servers' keys come from the servers' records, which stayed
    assert fleet.core.resources.actor(ResourceKey("dns_zone", "fleet.example.org")) is not None
    await fleet.core.resources.sync_from_state()
    assert len(computed) == 1


async def test_unlock_commit_and_logout_give_the_loop_back_between_actors(tmp_path: Path) -> None:
    path = tmp_path / "fleet" / "state.legion"
    path.parent.mkdir(mode=0o700)
    (await SecureStateStore.create(path, PASSWORD, encode_state(synthetic_state(SERVERS)))).close()
    engine = create_engine(path, SessionSettings(resources=ResourceSettings(loop_slice=0)))
    async with engine:
        async with LoopLagProbe() as unlocking:
            await engine.unlock(PASSWORD)
        actors = len(engine.core.resources.keys())
        assert actors > SERVERS
        assert unlocking.ticks >= actors  # one slice per actor started

        async with LoopLagProbe() as committing:
            await engine.plan_set_operator_cidrs(["203.0.113.7/32"])  # moves every firewall set
            await engine.core.resources.wait_settled()
        keys = engine.core.resources.keys()
        firewalls = [k for k in keys if k.kind == "firewall"]
        assert committing.ticks >= len(firewalls)

        assert gc.get_freeze_count() > 0  # the unlocked fleet is out of full collections

        async with LoopLagProbe() as locking:
            await engine.logout()
        assert locking.ticks >= actors
        assert gc.get_freeze_count() == 0  # and back in once locked
        waits = (unlocking.longest, committing.longest, locking.longest)
        print("longest waits (unlock, commit, logout):", ", ".join(f"{w * 1000:.1f} ms" for w in waits))


async def test_a_commit_touches_only_the_derived_actors_it_can_move(
    fleet: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fleet.unlock(PASSWORD)
    await fleet.core.resources.wait_settled()
    touched: Counter[ResourceKey] = Counter()
    real_touch = ResourceActor.touch

    def counting(actor: ResourceActor) -> None:
        touched[actor.key] += 1
        real_touch(actor)

    monkeypatch.setattr(ResourceActor, "touch", counting)
    await fleet.plan_upsert_server(name="extra-1", provider="hetzner", cluster="c001")
    await fleet.core.resources.wait_settled()

    derived = {k for k in touched if k.kind != "server"}
    assert derived == {ResourceKey("firewall", f"legion-c001-{p}") for p in ("hetzner", "ovh", "scaleway")}
    assert ResourceKey("server", "extra-1") in touched
    assert not any(k.kind == "server" and k.identity.startswith("node-") for k in touched)


def test_affected_keys_follow_the_records_a_commit_replaced() -> None:
    state = synthetic_state(SERVERS)
    moved = dataclasses.replace(state.tracked.servers["node-00060"], ipv4="127.0.9.9")
    after = with_tracked(state, servers={**state.tracked.servers, "node-00060": moved})

    assert affected_keys(state, state) == set()
    assert affected_keys(state, after) == {
        *(ResourceKey("firewall", f"legion-c001-{p}") for p in ("hetzner", "ovh", "scaleway")),
    }
    pointed = with_tracked(state, servers={**state.tracked.servers, "node-00004": moved})
    assert ResourceKey("dns_zone", "zone0.example.org") in (affected_keys(state, pointed) or set())
    assert ResourceKey("firewall", "fw-ovh") in (affected_keys(state, pointed) or set())
    opened = dataclasses.replace(
        state, scheme=dataclasses.replace(state.scheme, access=PlannedAccess(("10.0.0.0/8",)))
    )
    assert affected_keys(state, opened) is None
