"""Observation end to end: a sandbox cluster of three deployed nodes, broken and mended on purpose.

The nodes are real simulated machines (SSH, mTLS admin API); the fault is injected from a node's own
shell (``systemctl stop tribes``) or a sandbox control call (a broken admin API), and what the
engine concludes is read where an operator reads it: the snapshot rows' ``health``, ``checked_at``
and ``reason``, the ``observation`` section, the activity. Polls are driven one at a time through the
engine API (``observe_once``), so "within two intervals" is counted in polls, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hcloud import Client

import legion_nb
from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.observe.scheduler import ObservationSettings
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.sandbox_engine import sandbox_cloud

pytestmark = pytest.mark.slow

NODES = ("obs-1", "obs-2", "obs-3")


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    running = await legion_nb.sandbox(
        seed=33,
        nodes=True,
        providers=("hetzner",),
        action_seconds=0.02,
        boot_seconds=0.02,
        observation=ObservationSettings(run=False, intervals={"nodes": 30.0}),
    )
    try:
        for name in NODES:
            await running.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
        report = await running.materialize()
        assert report.ok, report.summary
        yield running
    finally:
        await running.aclose()


def rows(engine: Engine) -> dict[str, dict[str, Any]]:
    snapshot = engine.core.publisher.current()
    return {r["name"]: r for r in snapshot["rows"] if r["kind"] == "server"}


def node(engine: Engine, name: str) -> SimulatedNode:
    fleet = sandbox_cloud(engine).nodes
    assert fleet is not None
    return fleet.by_hostname(name)


async def poll(engine: Engine) -> dict[str, Any]:
    result = await engine.observe_once(["nodes"])
    return result["nodes"]


async def test_a_stopped_tribes_turns_its_row_unhealthy_and_a_restart_clears_it(engine: Engine) -> None:
    first = await poll(engine)
    assert (first["ok"], first["items"]) == (True, 3)
    before = rows(engine)
    assert {n: before[n]["health"] for n in NODES} == dict.fromkeys(NODES, "healthy")
    assert all(before[n]["checked_at"] and before[n]["reason"] is None for n in NODES)

    outcome = await node(engine, "obs-2").shell.run("systemctl stop tribes", user="root")
    assert outcome.status == 0
    polls = 0
    while rows(engine)["obs-2"]["health"] == "healthy" and polls < 5:
        await poll(engine)
        polls += 1
    broken = rows(engine)
    assert polls <= 2  # within two observation intervals
    assert broken["obs-2"]["health"] == "unhealthy"
    assert "tribes is inactive" in broken["obs-2"]["reason"]
    assert {broken[n]["health"] for n in ("obs-1", "obs-3")} == {"healthy"}

    await node(engine, "obs-2").shell.run("systemctl start tribes", user="root")
    await poll(engine)
    mended = rows(engine)["obs-2"]
    assert (mended["health"], mended["reason"]) == ("healthy", None)

    section = (await engine.observation())["concerns"]
    nodes = next(c for c in section if c["concern"] == "nodes")
    assert nodes["ok"] is True and nodes["runs"] == polls + 2 and nodes["items"] == 3


async def test_a_single_missed_poll_does_not_change_health(engine: Engine) -> None:
    await poll(engine)
    target = node(engine, "obs-3")
    target.break_admin_api()
    missed = await poll(engine)
    assert missed["ok"] is True  # the other nodes answered
    once = rows(engine)["obs-3"]
    assert (once["health"], once["reason"]) == ("healthy", None)
    await poll(engine)
    twice = rows(engine)["obs-3"]
    assert twice["health"] == "unreachable" and "HTTP 500" in twice["reason"]
    target.break_admin_api(False)
    await poll(engine)
    assert rows(engine)["obs-3"]["health"] == "healthy"


async def test_a_node_powered_off_at_the_provider_is_unreachable_then_healthy_after_power_on(
    engine: Engine,
) -> None:
    await poll(engine)
    target = node(engine, "obs-2")
    phase, host_key = target.system.phase, target.host_public_key
    hz = sandbox_cloud(engine).endpoints()["hetzner"]
    server = await asyncio.to_thread(
        Client(token=hz["token"], api_endpoint=hz["url"], poll_interval=0.02).servers.get_by_name, "obs-2"
    )
    assert server is not None
    await asyncio.to_thread(lambda: server.power_off().wait_until_finished())
    while target.is_up:  # the node follows the provider's action a moment later
        await asyncio.sleep(0.01)

    await poll(engine)
    await poll(engine)  # one missed poll keeps the verdict, the second does not
    down = rows(engine)
    assert down["obs-2"]["health"] == "unreachable", down["obs-2"]
    assert "does not answer" in down["obs-2"]["reason"] and "certificate" not in down["obs-2"]["reason"]
    assert {down[n]["health"] for n in ("obs-1", "obs-3")} == {"healthy"}

    await asyncio.to_thread(lambda: server.power_on().wait_until_finished())
    await target.wait_up()
    await poll(engine)
    back = rows(engine)["obs-2"]
    assert (back["health"], back["reason"]) == ("healthy", None), back
    assert (target.system.phase, target.host_public_key) == (phase, host_key)  # the same disk


async def test_telemetry_and_logs_are_collected_into_the_stores(engine: Engine) -> None:
    await node(engine, "obs-1").shell.run("logger -t runbook maintenance starts", user="root")
    result = await engine.observe_once(["telemetry", "logs"])
    assert result["telemetry"]["ok"] and result["telemetry"]["items"] > 3 * 14 * 26 * 200  # ~26 h back
    assert result["logs"]["ok"] and result["logs"]["items"] > 0
    collection = engine.core.observation.collection
    assert collection is not None
    found = await asyncio.to_thread(collection.logs.search, text="maintenance starts")
    assert list(found.node) == ["obs-1"]
    again = await engine.observe_once(["logs"])
    assert again["logs"]["items"] < result["logs"]["items"]  # by cursor: only what is new


async def test_an_unknown_concern_is_a_usage_error(engine: Engine) -> None:
    with pytest.raises(UsageError, match="unknown observation concern nope"):
        await engine.observe_once(["nope"])
