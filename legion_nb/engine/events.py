"""The event hub: "snapshot" and "activity" publications, coalesced per event-loop tick.

Application state reaches the CLI, the daemon's subscribers and the notebook panels only through
these two topics (commands return results, never state). Publishing is cheap and may happen many
times in one tick (a burst of state commits, a wave of actor changes): the hub collects them and
delivers ONE publication per topic on the next tick.

* ``snapshot`` is latest-wins: a snapshot replaces the previous one, so only the newest of a burst is
  delivered, and a producer function may be published instead of data so that the snapshot is
  built once per tick, not once per change.
* ``activity`` is a batch: every item published in the tick is delivered together as one list.

Each subscriber has a mailbox with one slot per topic, not a queue: a slow subscriber that has not
yet taken the last snapshot simply finds the newest one when it comes back (its pending activity
batch is bounded too, keeping the newest :data:`ACTIVITY_BACKLOG` items). Memory per subscriber is
therefore bounded however slow it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from legion_nb.errors import UsageError

__all__ = ["ACTIVITY_BACKLOG", "TOPICS", "Event", "EventHub", "Topic"]

log = logging.getLogger(__name__)

Topic = Literal["snapshot", "activity"]
TOPICS: tuple[Topic, ...] = ("snapshot", "activity")
ACTIVITY_BACKLOG = 1000


@dataclass(frozen=True, slots=True)
class Event:
    topic: Topic
    data: Any


class _Mailbox:
    """One subscriber's pending publications: a slot per topic and a wake-up flag."""

    def __init__(self, topics: frozenset[Topic]) -> None:
        self.topics = topics
        self.snapshot: Any = None
        self.has_snapshot = False
        self.activity: list[Any] = []
        self.wake = asyncio.Event()
        self.closed = False

    def put(self, topic: Topic, data: Any) -> None:
        if topic not in self.topics:
            return
        if topic == "snapshot":
            self.snapshot, self.has_snapshot = data, True
        else:
            self.activity.extend(data)
            del self.activity[:-ACTIVITY_BACKLOG]
        self.wake.set()

    def take(self) -> list[Event]:
        events: list[Event] = []
        if self.has_snapshot:
            events.append(Event("snapshot", self.snapshot))
            self.snapshot, self.has_snapshot = None, False
        if self.activity:
            events.append(Event("activity", self.activity))
            self.activity = []
        self.wake.clear()
        return events


class EventHub:
    """Coalescing publish/subscribe for the engine's two topics."""

    def __init__(self) -> None:
        self._mailboxes: set[_Mailbox] = set()
        self._snapshot: Callable[[], Any] | None = None
        self._has_snapshot = False
        self._activity: list[Any] = []
        self._scheduled = False
        self._latest: Any = None
        self._has_latest = False
        self.publications = 0  # how many coalesced publications went out (for tests and benchmarks)
        self._closed = False

    # -- publishing ------------------------------------------------------------------------

    def publish(self, topic: Topic, data: Any) -> None:
        """Queue ``data`` for this tick's publication of ``topic``."""
        if topic == "snapshot":
            self.publish_snapshot(lambda: data)
        elif topic == "activity":
            self._activity.append(data)
            self._schedule()
        else:
            raise UsageError(f"unknown event topic {topic!r}: use one of {', '.join(TOPICS)}")

    def publish_snapshot(self, produce: Callable[[], Any]) -> None:
        """Mark the snapshot changed; ``produce`` is called once, at the end of the tick."""
        self._snapshot = produce
        self._has_snapshot = True
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled or self._closed:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._has_snapshot and self._snapshot is not None:
            produce, self._snapshot, self._has_snapshot = self._snapshot, None, False
            try:
                data = produce()
            except Exception:  # a broken snapshot builder must not stop the engine: log and skip it
                log.exception("building the snapshot failed; this publication is skipped")
            else:
                self._latest, self._has_latest = data, True
                self._deliver("snapshot", data)
        if self._activity:
            batch, self._activity = self._activity, []
            self._deliver("activity", batch)

    def _deliver(self, topic: Topic, data: Any) -> None:
        self.publications += 1
        for mailbox in self._mailboxes:
            mailbox.put(topic, data)

    def forget_snapshot(self) -> None:
        """Drop the retained latest snapshot (on logout it must not outlive the unlocked state)."""
        self._latest, self._has_latest = None, False
        self._snapshot, self._has_snapshot = None, False

    # -- subscribing -----------------------------------------------------------------------

    async def subscribe(self, topics: Iterable[str] = TOPICS) -> AsyncGenerator[Event, None]:
        """Events of ``topics`` until the hub closes; a new subscriber first gets the latest snapshot."""
        wanted = frozenset(_topic(t) for t in topics)
        if not wanted:
            raise UsageError(f"subscribe to at least one topic: {', '.join(TOPICS)}")
        mailbox = _Mailbox(wanted)
        if self._has_latest:
            mailbox.put("snapshot", self._latest)
        self._mailboxes.add(mailbox)
        try:
            while not self._closed:
                await mailbox.wake.wait()
                for event in mailbox.take():
                    yield event
        finally:
            self._mailboxes.discard(mailbox)

    @property
    def subscribers(self) -> int:
        return len(self._mailboxes)

    def close(self) -> None:
        """End every subscription (their iterators finish after their pending events)."""
        self._closed = True
        self.forget_snapshot()
        for mailbox in self._mailboxes:
            mailbox.closed = True
            mailbox.wake.set()


def _topic(name: str) -> Topic:
    for topic in TOPICS:
        if name == topic:
            return topic
    raise UsageError(f"unknown event topic {name!r}: use one of {', '.join(TOPICS)}")
