"""The throttled feed over the engine's real event hub: latest wins, bounded, logged, cancellable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from widgetkit import until

from legion_nb.engine.events import Event, EventHub
from legion_nb.errors import UsageError
from legion_nb.widgets.feed import ACTIVITY_KEEP, Batch, Feed


class Gate:
    """A ``sleep`` for the feed that blocks until the test opens it: throttling without a clock."""

    def __init__(self) -> None:
        self.waiting = 0
        self._open = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waiting += 1
        await self._open.wait()
        self._open.clear()
        self.waiting -= 1

    def open(self) -> None:
        self._open.set()


class Drawn:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)


async def tick() -> None:
    """Let the hub flush this tick's publication and the feed read it."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_burst_while_drawing_is_one_redraw_with_the_latest_snapshot() -> None:
    hub = EventHub()
    gate, drawn = Gate(), Drawn()
    feed = Feed(hub, ["snapshot"], drawn, sleep=gate)
    feed.start()
    hub.publish("snapshot", {"n": 0})
    await until(lambda: gate.waiting == 1)  # first snapshot drawn; the feed now rests
    assert [b.snapshot for b in drawn.batches] == [{"n": 0}]

    for n in range(1, 101):  # 100 separate publications (one per tick) while the feed rests
        hub.publish("snapshot", {"n": n})
        await tick()
    assert feed.received == 101 and len(drawn.batches) == 1

    gate.open()
    await until(lambda: gate.waiting == 1 and len(drawn.batches) == 2)
    assert drawn.batches[1].snapshot == {"n": 100}  # latest wins, the 99 in between were never drawn
    assert feed.redraws == 2
    feed.close()
    await feed.wait_closed()


async def test_activity_items_accumulate_between_redraws_and_stay_bounded() -> None:
    hub = EventHub()
    gate, drawn = Gate(), Drawn()
    feed = Feed(hub, ["snapshot", "activity"], drawn, sleep=gate)
    feed.start()
    hub.publish("activity", "first")
    await until(lambda: gate.waiting == 1)
    for n in range(ACTIVITY_KEEP + 50):
        hub.publish("activity", f"item {n}")
        await tick()
    gate.open()
    await until(lambda: len(drawn.batches) == 2)
    items = drawn.batches[1].activity
    assert len(items) == ACTIVITY_KEEP  # bounded: the oldest were dropped, not the newest
    assert items[-1] == f"item {ACTIVITY_KEEP + 49}" and items[0] == "item 50"
    assert not drawn.batches[1].has_snapshot
    feed.close()
    await feed.wait_closed()


async def test_a_failing_redraw_is_logged_and_the_feed_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub()
    seen: list[Any] = []

    async def apply(batch: Batch) -> None:
        seen.append(batch.snapshot)
        if batch.snapshot == "bad":
            raise ValueError("cannot draw this")

    feed = Feed(hub, ["snapshot"], apply, min_interval=0, name="test feed")
    feed.start()
    with caplog.at_level(logging.ERROR, logger="legion_nb.widgets.feed"):
        hub.publish("snapshot", "bad")
        await until(lambda: seen == ["bad"])
        hub.publish("snapshot", "good")
        await until(lambda: seen == ["bad", "good"])
    assert feed.running
    assert any("test feed: drawing an update failed" in r.getMessage() and r.exc_info for r in caplog.records)
    feed.close()
    await feed.wait_closed()


class BrokenStream:
    """An event source whose stream fails after one event, as a dropped daemon connection would."""

    def subscribe(self, topics: Sequence[str]) -> AsyncIterator[Event]:
        async def events() -> AsyncIterator[Event]:
            yield Event("snapshot", {"n": 1})
            raise ConnectionResetError("the daemon went away")

        return events()


async def test_a_failing_stream_is_logged_drawn_up_to_the_failure_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drawn = Drawn()
    ended: list[BaseException | None] = []
    feed = Feed(BrokenStream(), ["snapshot"], drawn, min_interval=0, on_stop=ended.append)
    with caplog.at_level(logging.ERROR, logger="legion_nb.widgets.feed"):
        feed.start()
        await feed.wait_closed()
    assert [b.snapshot for b in drawn.batches] == [{"n": 1}]
    assert len(ended) == 1 and isinstance(ended[0], ConnectionResetError)
    assert any("the engine stream failed" in r.getMessage() for r in caplog.records)


async def test_the_engine_closing_the_stream_draws_what_is_pending_and_reports_a_clean_end() -> None:
    hub = EventHub()
    gate, drawn = Gate(), Drawn()
    ended: list[BaseException | None] = []
    feed = Feed(hub, ["snapshot"], drawn, sleep=gate, on_stop=ended.append)
    feed.start()
    hub.publish("snapshot", 1)
    await until(lambda: gate.waiting == 1)
    hub.publish("snapshot", 2)
    await tick()
    hub.close()
    await tick()
    gate.open()
    await feed.wait_closed()
    assert [b.snapshot for b in drawn.batches] == [1, 2]  # nothing lost at the end
    assert ended == [None]


async def test_close_cancels_the_feed_and_its_subscription() -> None:
    hub = EventHub()
    feed = Feed(hub, ["snapshot"], Drawn(), min_interval=0)
    feed.start()
    await until(lambda: hub.subscribers == 1)
    feed.close()
    await feed.wait_closed()
    assert not feed.running
    assert hub.subscribers == 0
    feed.close()  # twice is fine


def test_a_feed_needs_a_running_loop() -> None:
    feed = Feed(EventHub(), ["snapshot"], Drawn())
    with pytest.raises(UsageError, match="running event loop"):
        feed.start()


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(UsageError, match="min_interval"):
        Feed(EventHub(), ["snapshot"], Drawn(), min_interval=-1)
