"""Helpers for the panel tests: a comm that records what a widget sends, a gate that steps a panel's
feed one redraw at a time, and a bounded wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """A comm that keeps every message a widget publishes, instead of sending it to a frontend."""

    sent: list[dict[str, Any]]

    def __init__(self, **kwargs: Any) -> None:
        self.sent = []
        super().__init__(**kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        self.sent.append({"msg_type": msg_type, "data": data})

    def updates(self) -> list[dict[str, Any]]:
        """The state updates sent after the widget was opened (each one comm message)."""
        messages = [m["data"] for m in self.sent if m["msg_type"] == "comm_msg"]
        return [data for data in messages if data.get("method") == "update"]


class RedrawGate:
    """The pause a panel's feed takes after each redraw (its ``sleep``), held until the test lets it go.

    A test waits on the redraw itself - the feed entering its pause once ``apply`` has returned - never
    on a clock, so a loaded machine only makes it slower: :meth:`rested` returns after the next
    redraw, :meth:`next_redraw` lets the resting feed go on and returns after the redraw that follows.
    """

    def __init__(self) -> None:
        self._rests: asyncio.Queue[None] = asyncio.Queue()
        self._go = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self._rests.put_nowait(None)
        await self._go.wait()
        self._go.clear()

    async def rested(self) -> None:
        """Wait until the feed has finished its next redraw."""
        await self._rests.get()

    async def next_redraw(self) -> None:
        """Release the resting feed and wait until it has finished the redraw after."""
        self._go.set()
        await self.rested()


async def until(predicate: Callable[[], bool], *, rounds: int = 2000) -> None:
    """Let the loop run until ``predicate`` holds (a bounded number of short waits, never a timing)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


async def latest_snapshot(engine: Any) -> Any:
    """The engine's newest snapshot, as a new subscriber gets it first (what a panel must show)."""
    stream = engine.subscribe(["snapshot"])
    try:
        async for event in stream:
            return event.data
    finally:
        await stream.aclose()
    raise AssertionError("the engine published no snapshot")


async def until_matches_engine(engine: Any, shown: Callable[[], Any], expected: Callable[[Any], Any]) -> Any:
    """Wait until a panel shows what the engine's newest snapshot says; returns that snapshot.

    Actors may still publish (same state revision, newer beliefs) while the test looks, so the newest
    snapshot is read again on every round instead of once.
    """
    for _ in range(400):
        data = await latest_snapshot(engine)
        if shown() == expected(data):
            return data
        await asyncio.sleep(0.01)
    raise AssertionError(f"the panel never showed the engine's snapshot: {shown()!r}")
