"""A loop-lag probe: how long the event loop went without running a task that wants it constantly.

Why: the engine shares the kernel's loop with every panel and the scheduler, and its goal is that
nothing holds the loop for more than 50 ms. A probe task that yields and comes back as often as it
may measures exactly that from the outside. ``longest`` is wall time between two of its turns;
``longest_cpu`` is the CPU time the loop's thread spent in between, which is what the engine held
the loop for (on a shared machine the wall figure also counts time the OS gave to other processes,
and worker threads' time is not the loop's). ``ticks`` counts its turns, so a test can check that a
long operation gave the loop back without timing it. Used by ``benchmarks/scale.py`` and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

__all__ = ["LoopLagProbe"]


class LoopLagProbe:
    """``async with LoopLagProbe() as probe: await work()``, then read ``ticks`` and ``longest``."""

    def __init__(self) -> None:
        self.ticks = 0
        self.longest = 0.0
        self.longest_cpu = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="legion-loop-lag-probe")
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *_: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self) -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while True:
            await asyncio.sleep(0)
            now, now_cpu = time.perf_counter(), time.thread_time()
            self.ticks += 1
            self.longest = max(self.longest, now - last)
            self.longest_cpu = max(self.longest_cpu, now_cpu - last_cpu)
            last, last_cpu = now, now_cpu
