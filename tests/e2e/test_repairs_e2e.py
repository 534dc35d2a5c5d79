"""Safe repairs end to end: faults injected on real (simulated) nodes are listed with their reason
before anything runs, fixed by a repair run, held by the budget when they persist, and never
touched while a materialize runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import legion_nb
from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.engine.results import RepairView
from legion_nb.engine.runtime import Engine
from legion_nb.sandbox_engine import sandbox_cloud

pytestmark = pytest.mark.slow

NODES = ("r1", "r2", "r3")


@pytest.fixture
async def cluster() -> AsyncIterator[Engine]:
    engine = await legion_nb.sandbox(
        seed=31, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        for name in NODES:
            await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)
        yield engine
    finally:
        await engine.aclose()


def node(engine: Engine, name: str) -> SimulatedNode:
    fleet = sandbox_cloud(engine).nodes
    assert fleet is not None
    return fleet.by_hostname(name)


def brief(views: list[RepairView]) -> list[tuple[str, str, str]]:
    return [(v["node"], v["operation"], v["action"]) for v in views]


async def test_a_diverged_membership_and_a_dropped_tang_peer_are_listed_then_fixed(cluster: Engine) -> None:
    assert await cluster.repairs_plan() == []
    left = node(cluster, "r1").diverge_membership()
    dropped = node(cluster, "r2").drop_tang_peer()

    plan = await cluster.repairs_plan()

    assert brief(plan) == [("r1", "reconfigure", "run"), ("r2", "nbde_reconcile", "run")]
    assert plan[0]["reasons"] == [f"membership: node lacks peer {left}"]
    assert plan[1]["reasons"] == [f"NBDE: Tang peer {dropped} missing from the node's disk binding"]
    assert all(v["outcome"] is None for v in plan)  # listing runs nothing
    assert node(cluster, "r1").system.membership() == sorted({"r2", "r3"} - {left})

    ran = await cluster.repairs_run()

    assert [(v["node"], v["outcome"]) for v in ran] == [("r1", "ok"), ("r2", "ok")]
    assert node(cluster, "r1").system.membership() == ["r2", "r3"]
    tang = node(cluster, "r2").system.health()["nbde"]
    assert isinstance(tang, dict) and tang["tang"] == ["r1", "r3"]
    assert await cluster.repairs_plan() == []
    rows = {r["name"]: r for r in (await cluster.snapshot())["rows"] if r["kind"] == "server"}
    assert {(rows[n]["system"], rows[n]["error"]) for n in NODES} == {("deployed", "")}


async def test_a_fault_that_persists_is_not_retried_beyond_the_budget(cluster: Engine) -> None:
    tick = cluster.core.ops.repairs
    now = [1_000_000.0]
    tick.clock = lambda: now[0]
    victim = node(cluster, "r3")
    attempts: list[str | None] = []
    for step in (0.0, 60.0, 300.0, 600.0, 1200.0, 1300.0, 300.0):
        now[0] += step
        if victim.system.membership() == ["r1", "r2"]:
            victim.diverge_membership("r1")  # the fault comes back after every repair
        (view,) = await cluster.repairs_run()
        attempts.append(view["outcome"] if view["action"] == "run" else view["held_because"])

    assert attempts[0] == "ok"
    assert attempts[1] == "backing off 300 s after attempt 1"  # 60 s later
    assert attempts[2] == "ok"  # 360 s after the first
    assert attempts[3] == "ok"  # 600 s after the second: the backoff doubled
    assert attempts[4] == "budget spent: 3 attempts on r3 in the last hour"
    assert attempts[5] == "budget spent: 3 attempts on r3 in the last hour"  # 3460 s after the first
    assert attempts[6] == "ok"  # 3760 s: the first attempt left the hour
    victim.diverge_membership("r1")
    (held,) = await cluster.repairs_plan()
    assert (held["action"], held["attempts"]) == ("held", 3) and held["next_attempt"] is not None
    assert held["reasons"] == ["membership: node lacks peer r1"]


async def test_no_repair_runs_while_materialize_runs(cluster: Engine) -> None:
    node(cluster, "r1").diverge_membership("r3")
    await cluster.plan_upsert_server(name="r4", provider="hetzner", cluster="alpha")
    apply = asyncio.create_task(cluster.materialize(settle_seconds=120))
    while cluster.core.ops.applying is None or cluster.core.ops.applying.id == "starting":
        await asyncio.sleep(0.001)

    views = await cluster.repairs_run()

    assert [(v["node"], v["action"], v["outcome"]) for v in views] == [("r1", "held", None)]
    assert views[0]["held_because"] is not None and "materialize" in views[0]["held_because"]
    assert node(cluster, "r1").system.membership() == ["r2"]
    report = await apply
    assert report.ok, (report.summary, report.errors)


async def test_the_scheduler_repair_tick_fixes_a_diverged_membership(cluster: Engine) -> None:
    node(cluster, "r2").diverge_membership("r1")

    runs = await cluster.observe_once(["repairs"])

    assert runs["repairs"] == {"ok": True, "seconds": runs["repairs"]["seconds"], "items": 1, "error": None}
    assert node(cluster, "r2").system.membership() == ["r1", "r3"]
    section = (await cluster.snapshot())["observation"]
    (repairs,) = [c for c in section["concerns"] if c["concern"] == "repairs"]
    assert (repairs["interval"], repairs["ok"], repairs["items"]) == (300.0, True, 1)
