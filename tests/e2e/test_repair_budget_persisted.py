"""The repair budget lives in the encrypted state: a flapping node gets no fresh attempts from a
logout and a new unlock, nor from a ``legion repairs run`` SIGKILLed in the middle of its repair.

One sandbox cloud with simulated nodes runs in this process; engines open and close on one state
file with a known password, and the state is linked to the nodes (as ``legion sandbox serve``
links it), so ``legion`` processes reach the same nodes. A fault that comes back after every
repair (r3 loses peer r1 from its membership) drives the budget.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from e2ekit import LinkedSandbox, durable_state, finished, legion_process, linked_engines, linked_sandbox

from legion_nb.emulators.nodes.fleet import NodeFleet
from legion_nb.engine.deployment.phases import execution_of
from legion_nb.engine.results import RepairView
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import LegionState

pytestmark = pytest.mark.slow

PASSWORD = "repair budget password"
NODES = ("r1", "r2", "r3")
Opener = Callable[[], Awaitable[Engine]]


@pytest.fixture
async def sandbox() -> AsyncIterator[LinkedSandbox]:
    async with linked_sandbox(23) as linked:
        yield linked


@pytest.fixture
def fleet(sandbox: LinkedSandbox) -> NodeFleet:
    return sandbox.fleet


@pytest.fixture
async def opener(sandbox: LinkedSandbox, tmp_path: Path) -> AsyncIterator[Opener]:
    """Engines on the one state; the first call also materializes the three-node cluster."""

    async def materialize_cluster(engine: Engine) -> None:
        for name in NODES:
            await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)

    async with linked_engines(sandbox, tmp_path / "budget.legion", PASSWORD, materialize_cluster) as opened:
        yield opened


def flap(fleet: NodeFleet) -> None:
    """r3 loses peer r1 (again): the fault a membership repair fixes and that keeps coming back."""
    victim = fleet.by_hostname("r3")
    if "r1" in victim.system.membership():
        victim.diverge_membership("r1")


def on_r3(views: list[RepairView]) -> RepairView:
    (view,) = [v for v in views if v["node"] == "r3"]
    return view


async def test_the_budget_survives_a_logout_and_a_new_unlock(fleet: NodeFleet, opener: Opener) -> None:
    now = [2_000_000.0]
    engine = await opener()
    engine.core.ops.repairs.clock = lambda: now[0]
    flap(fleet)
    first = on_r3(await engine.repairs_run())
    assert (first["action"], first["outcome"], first["attempts"]) == ("run", "ok", 1)
    assert engine.state.repair_attempts == {"r3": (now[0],)}  # in the state, with its time
    await engine.aclose()

    now[0] += 60.0
    engine = await opener()  # a new unlock: the budget comes back from the state
    engine.core.ops.repairs.clock = lambda: now[0]
    flap(fleet)
    held = on_r3(await engine.repairs_run())
    assert (held["action"], held["held_because"], held["attempts"]) == (
        "held",
        "backing off 300 s after attempt 1",
        1,
    )
    assert fleet.by_hostname("r3").system.membership() == ["r2"]  # nothing ran

    for step in (300.0, 600.0):  # the doubling backoff, each attempt across another reopen
        now[0] += step
        await engine.aclose()
        engine = await opener()
        engine.core.ops.repairs.clock = lambda: now[0]
        flap(fleet)
        assert on_r3(await engine.repairs_run())["outcome"] == "ok"
    await engine.aclose()

    now[0] += 1200.0  # 2160 s after the first attempt: three in the hour
    engine = await opener()
    engine.core.ops.repairs.clock = lambda: now[0]
    flap(fleet)
    spent = on_r3(await engine.repairs_run())
    assert spent["action"] == "held"
    assert spent["held_because"] == "budget spent: 3 attempts on r3 in the last hour"
    assert len(engine.state.repair_attempts["r3"]) == 3


async def legion(state: Path, *args: str) -> asyncio.subprocess.Process:
    return await legion_process(state, PASSWORD, *args)


async def durable(path: Path) -> LegionState:
    return await durable_state(path, PASSWORD)


async def test_a_repairs_run_killed_mid_repair_still_counts_its_attempt(
    fleet: NodeFleet, opener: Opener
) -> None:
    engine = await opener()
    path = engine.state_path
    await engine.aclose()
    flap(fleet)
    fleet.timing.configure_tribes = 60.0  # the reconfigure repair now sits in its Tribes phase
    process = await legion(path, "--json", "repairs", "run")
    while True:  # until the repair's first phase is on the durable record
        execution = execution_of(await durable(path), "r3")
        if execution is not None and execution.operation == "reconfigure" and execution.status == "running":
            break
        assert process.returncode is None, "legion repairs run ended before its repair began"
        await asyncio.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL

    killed = await durable(path)
    (attempt,) = killed.repair_attempts["r3"]  # written before the repair ran
    fleet.timing.configure_tribes = 0.02

    # The interrupted reconfigure is finished by the next apply; the fault then comes back.
    await finished(await legion(path, "--json", "materialize", "--yes"))
    flap(fleet)
    views = json.loads(await finished(await legion(path, "--json", "repairs", "run")))
    held = next(v for v in views if v["node"] == "r3")
    assert (held["action"], held["held_because"], held["attempts"]) == (
        "held",
        "backing off 300 s after attempt 1",
        1,
    ), held
    assert (await durable(path)).repair_attempts["r3"] == (attempt,)
    assert fleet.by_hostname("r3").system.membership() == ["r2"]  # no fresh budget: nothing ran
