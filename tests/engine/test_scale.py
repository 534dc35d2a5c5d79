"""Fleet scale, structurally: derived plans are built once per state, commits touch only the actors
they affect, and long work on the loop yields. Speed itself is measured in ``benchmarks/scale.py``."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from legion_nb.engine.cluster import firewall_plan
from legion_nb.engine.cluster.firewall_plan import FirewallSetPlan
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.state.model import LegionState, encode_state, synthetic_state
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
