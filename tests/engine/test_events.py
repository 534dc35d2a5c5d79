"""The event hub: per-tick coalescing, latest-wins snapshots, bounded slow subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

import pytest

from legion_nb.engine.events import ACTIVITY_BACKLOG, Event, EventHub
from legion_nb.errors import UsageError


async def next_event(stream: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(stream.__anext__(), 5)


async def started(
    hub: EventHub, topics: Sequence[str] = ("snapshot", "activity")
) -> tuple[AsyncGenerator[Event, None], asyncio.Future[Event]]:
    stream = hub.subscribe(topics)
    task = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)  # let the subscription register
    return stream, task


async def test_a_burst_in_one_tick_is_one_publication_latest_wins() -> None:
    hub = EventHub()
    stream, first = await started(hub)
    built: list[int] = []

    def producer(n: int) -> Callable[[], dict[str, int]]:
        def build() -> dict[str, int]:
            built.append(n)
            return {"n": n}

        return build

    for n in range(100):
        hub.publish_snapshot(producer(n))
    event = await asyncio.wait_for(first, 5)
    assert event == Event("snapshot", {"n": 99})
    assert built == [99]  # the snapshot was built once, not 100 times
    assert hub.publications == 1
    await stream.aclose()


async def test_activity_items_of_a_tick_arrive_as_one_batch() -> None:
    hub = EventHub()
    stream, first = await started(hub, ["activity"])
    for n in range(5):
        hub.publish("activity", {"step": n})
    hub.publish("snapshot", {"ignored": True})  # not subscribed to snapshots
    event = await asyncio.wait_for(first, 5)
    assert event.topic == "activity"
    assert [item["step"] for item in event.data] == [0, 1, 2, 3, 4]
    await stream.aclose()


async def test_separate_ticks_are_separate_publications() -> None:
    hub = EventHub()
    stream, first = await started(hub)
    hub.publish("snapshot", 1)
    assert (await asyncio.wait_for(first, 5)).data == 1
    hub.publish("snapshot", 2)
    assert (await next_event(stream)).data == 2
    assert hub.publications == 2
    await stream.aclose()


async def test_a_slow_subscriber_gets_the_latest_not_a_backlog() -> None:
    hub = EventHub()
    stream, first = await started(hub)
    hub.publish("snapshot", 0)
    assert (await asyncio.wait_for(first, 5)).data == 0
    # The subscriber does not read while 50 ticks publish snapshots and lots of activity.
    for n in range(1, 51):
        hub.publish("snapshot", n)
        for k in range(100):
            hub.publish("activity", (n, k))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert hub.publications > 50
    snapshot = await next_event(stream)
    assert snapshot == Event("snapshot", 50)
    activity = await next_event(stream)
    assert len(activity.data) == ACTIVITY_BACKLOG
    assert activity.data[-1] == (50, 99)
    await stream.aclose()


async def test_new_subscribers_start_from_the_latest_snapshot() -> None:
    hub = EventHub()
    hub.publish("snapshot", {"v": 1})
    await asyncio.sleep(0)
    stream = hub.subscribe(["snapshot"])
    assert (await next_event(stream)).data == {"v": 1}
    await stream.aclose()
    hub.forget_snapshot()
    stream, pending = await started(hub, ["snapshot"])
    assert not pending.done()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert hub.subscribers == 0  # cancelling the reader ends its subscription


async def test_a_failing_snapshot_builder_is_skipped_not_fatal() -> None:
    hub = EventHub()
    stream, first = await started(hub)
    hub.publish_snapshot(lambda: 1 / 0)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    hub.publish("snapshot", "ok")
    assert (await asyncio.wait_for(first, 5)).data == "ok"
    await stream.aclose()


async def test_close_ends_subscriptions_and_unknown_topics_are_refused() -> None:
    hub = EventHub()
    _, first = await started(hub)
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(first, 5)
    assert hub.subscribers == 0
    with pytest.raises(UsageError, match="unknown event topic 'weather'"):
        await hub.subscribe(["weather"]).__anext__()
    with pytest.raises(UsageError):
        hub.publish("weather", 1)  # type: ignore[arg-type]
