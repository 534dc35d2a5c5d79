"""Figures for the deployment runtime (prints numbers, asserts nothing).

Run: ``.venv/bin/python benchmarks/deployment.py``.

* ``initialize`` cost: marking every running execution of an N-server state interrupted (CPU, best
  of 9), the work an engine does once at unlock;
* one ``add`` against the sandbox (Hetzner emulator + a simulated node over real SSH): wall time per
  phase and in total, and how many durable state writes the operation made (two per phase plus the
  final one, plus the material and provider writes);
* the same node's ``nbde_reconcile`` when nothing changed (the cost of a repair tick that finds the
  node already bound).

The sandbox harness is the deployment tests' own (``tests/deployment/runtimekit.py``), so the
figures are for the exact setup the tests exercise.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "deployment"))

from runtimekit import create_state, engine, sandbox

from legion_nb.engine.deployment.phases import PLANS, NodeOperation
from legion_nb.engine.state.edits import mark_interrupted
from legion_nb.engine.state.model import synthetic_state


def initialize_cost(servers: int) -> float:
    state = synthetic_state(servers)
    running = {
        name: replace(record, execution=replace(record.execution, status="running"))
        for name, record in state.tracked.servers.items()
        if record.execution is not None
    }
    state = replace(state, tracked=replace(state.tracked, servers=running))
    best = float("inf")
    for _ in range(9):
        start = time.process_time()
        _, names = mark_interrupted(state)
        best = min(best, time.process_time() - start)
    assert len(names) == servers
    return best * 1000


async def one_add() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state" / "state.legion"
        await create_state(path, servers=("n1",))
        async with sandbox() as world, engine(path, world.credentials(), world.ssh_port) as parts:
            writes = parts.persistence.revision
            start = time.perf_counter()
            await parts.runtime.run("n1", NodeOperation.ADD)
            total = time.perf_counter() - start
            writes = parts.persistence.revision - writes
            metrics = parts.runtime.metrics
            print(f"add against the sandbox: {total * 1000:.0f} ms wall, {writes} durable state writes")
            for phase in PLANS[NodeOperation.ADD]:
                print(f"  {phase.value:<18} {metrics.seconds[phase] * 1000:8.1f} ms")
            start = time.perf_counter()
            await parts.runtime.run("n1", NodeOperation.NBDE_RECONCILE)
            idle = time.perf_counter() - start
            print(f"nbde_reconcile with nothing to change: {idle * 1000:.1f} ms wall")


def main() -> None:
    for servers in (100, 1000, 5000):
        cost = initialize_cost(servers)
        print(f"initialize (mark interrupted) on {servers} running executions: {cost:.2f} ms cpu")
    asyncio.run(one_add())


if __name__ == "__main__":
    main()
