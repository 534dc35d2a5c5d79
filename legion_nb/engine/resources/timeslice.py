"""A time slice on the shared event loop: long loops of small steps yield between slices.

Why: the engine runs on the kernel's loop, beside every panel and the scheduler. Starting, waking or
stopping a thousand actors is a thousand small steps that never await anything slow, so without a
deliberate yield they hold the loop for as long as they all take. A loop that calls
:meth:`TimeSlice.checkpoint` after each step gives the loop back once ``seconds`` of work have run
since the last yield (``0``: after every step), which bounds the longest stall by one slice plus
one step, however many steps there are.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["DEFAULT_SLICE", "TimeSlice"]

DEFAULT_SLICE = 0.02
"""Seconds of work between yields: well under the 50 ms a panel redraw may wait."""


class TimeSlice:
    """Counts ``yields`` so that tests can see a loop gave the loop back without timing it."""

    __slots__ = ("_seconds", "_since", "yields")

    def __init__(self, seconds: float = DEFAULT_SLICE) -> None:
        self._seconds = seconds
        self._since = time.perf_counter()
        self.yields = 0

    async def checkpoint(self) -> bool:
        """Yield to the loop when this slice is used up (True) or return at once (False)."""
        now = time.perf_counter()
        if now - self._since < self._seconds:
            return False
        await asyncio.sleep(0)
        self.yields += 1
        self._since = time.perf_counter()
        return True
