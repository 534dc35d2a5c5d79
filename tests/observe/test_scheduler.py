"""The observation scheduler: concerns on timers, no overlap, deferral to applies, status records."""

from __future__ import annotations

import asyncio
import random

import pytest

from legion_nb.engine.observe.scheduler import Concern, ObservationScheduler, ObservationSettings
from legion_nb.errors import NodeError, UsageError
from legion_nb.providers.broker import _BACKGROUND


def _scheduler(settings: ObservationSettings, **ports: object) -> ObservationScheduler:
    return ObservationScheduler(settings, rng=random.Random(1), **ports)  # type: ignore[arg-type]


async def test_run_once_records_each_concern() -> None:
    scheduler = _scheduler(ObservationSettings(run=False))
    seen: list[bool] = []

    async def fine() -> int:
        seen.append(_BACKGROUND.get())
        return 3

    async def broken() -> int:
        raise NodeError("node n1's admin API does not answer")

    scheduler.register(Concern("nodes", fine))
    scheduler.register(Concern("providers", fine, provider_heavy=True))
    scheduler.register(Concern("logs", broken))
    async with scheduler:
        records = await scheduler.run_once()
    assert {name: (s.ok, s.items, s.error) for name, s in records.items()} == {
        "nodes": (True, 3, None),
        "providers": (True, 3, None),
        "logs": (False, 0, "node n1's admin API does not answer"),
    }
    assert seen == [False, True]  # only provider-heavy concerns call the broker as background work
    assert all(s.runs == 1 and s.seconds is not None and s.last_run is not None for s in records.values())
    section = scheduler.section()
    assert [c["concern"] for c in section["concerns"]] == ["nodes", "providers", "logs"]
    assert section["concerns"][2]["ok"] is False


async def test_unknown_concerns_are_refused() -> None:
    scheduler = _scheduler(ObservationSettings(run=False))
    scheduler.register(Concern("nodes", lambda: asyncio.sleep(0, 1)))
    with pytest.raises(UsageError, match="unknown observation concern nope; this engine runs: nodes"):
        await scheduler.run_once(["nope"])
    with pytest.raises(UsageError, match="unknown observation concern bogus"):
        ObservationSettings(intervals={"bogus": 1.0})
    with pytest.raises(UsageError, match="must be positive"):
        ObservationSettings(intervals={"nodes": 0.0})


async def test_timers_run_concerns_repeatedly_and_never_overlap() -> None:
    settings = ObservationSettings(intervals={"nodes": 0.01}, jitter=0.0)
    scheduler = _scheduler(settings)
    active = 0
    overlaps = 0
    runs = 0
    gate = asyncio.Event()

    async def poll() -> int:
        nonlocal active, overlaps, runs
        active += 1
        overlaps += active > 1
        await asyncio.sleep(0.005)
        active -= 1
        runs += 1
        if runs >= 5:
            gate.set()
        return 1

    scheduler.register(Concern("nodes", poll))
    async with scheduler:
        await asyncio.gather(scheduler.run_once(["nodes"]), scheduler.run_once(["nodes"]))
        await asyncio.wait_for(gate.wait(), 10)
    assert overlaps == 0 and runs >= 5
    assert scheduler.status()[0].next_run is not None
    assert not scheduler.running


async def test_provider_heavy_concerns_wait_while_an_apply_runs() -> None:
    applying = True
    ran = asyncio.Event()

    async def refresh() -> int:
        ran.set()
        return 1

    settings = ObservationSettings(intervals={"providers": 0.01}, jitter=0.0, defer_seconds=0.01)
    scheduler = _scheduler(settings, applying=lambda: applying)
    scheduler.register(Concern("providers", refresh, provider_heavy=True))
    async with scheduler:
        await asyncio.sleep(0.1)
        assert not ran.is_set() and scheduler.status()[0].deferred >= 2
        applying = False
        await asyncio.wait_for(ran.wait(), 10)


async def test_disabled_concerns_do_not_run_on_timers_and_activity_reports_each_run() -> None:
    items: list[dict[str, object]] = []
    settings = ObservationSettings(intervals={"nodes": 0.01}, enabled=frozenset({"logs"}))
    scheduler = _scheduler(settings, publish=items.append)
    calls = 0

    async def poll() -> int:
        nonlocal calls
        calls += 1
        return 0

    scheduler.register(Concern("nodes", poll))
    async with scheduler:
        await asyncio.sleep(0.05)
        assert calls == 0
        assert await scheduler.run_once() == {}  # every enabled concern: none registered
        await scheduler.run_once(["nodes"])  # asked by name, a disabled concern still runs once
    assert calls == 1
    assert items[-1]["summary"] == "observation nodes: 0 item(s) in " + items[-1]["summary"].split(" in ")[1]  # type: ignore[union-attr]
