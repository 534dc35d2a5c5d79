"""A throttled feed from the engine's event streams into a panel.

The engine may publish many snapshots a second (a wave of actor changes during materialize), but a
browser redraw per publication would flood the kernel's comm channel and the page. A :class:`Feed`
therefore splits reading from drawing:

* the *reader* drains the subscription as fast as the engine publishes and keeps only what a redraw
  needs: the newest snapshot (latest wins) and the activity items not yet drawn (bounded);
* the *drawer* hands whatever is pending to the panel's ``apply`` coroutine, then waits
  ``min_interval`` before it looks again, so a panel redraws at most ``1 / min_interval`` times a
  second however fast the engine changes (0.1 s: ~10 redraws a second).

Both run as tasks on the loop that is running when the feed starts: in a notebook that is the
kernel's own loop, so cells never block them and no ``nest_asyncio`` is involved. An exception in
``apply`` is logged and the feed carries on with the next publication; a subscription that fails is
logged and reported through ``on_stop``, so nothing ever vanishes silently inside a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from legion_nb.errors import UsageError

__all__ = [
    "ACTIVITY_KEEP",
    "DEFAULT_MIN_INTERVAL",
    "Batch",
    "EventSource",
    "Feed",
    "StreamEvent",
]

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL = 0.1  # seconds between redraws: at most ~10 a second
ACTIVITY_KEEP = 200  # activity items held for the next redraw; older ones are dropped first


class StreamEvent(Protocol):
    """One event of an engine stream (``Engine`` and ``RemoteEngine`` both give ``Event``)."""

    @property
    def topic(self) -> str: ...

    @property
    def data(self) -> Any: ...


class EventSource(Protocol):
    """Anything with the engine's ``subscribe``: the in-process engine and the daemon's client."""

    def subscribe(self, topics: Sequence[str]) -> AsyncIterator[StreamEvent]: ...


@dataclass(slots=True)
class Batch:
    """What arrived since the last redraw: the newest snapshot (if any) and the activity items."""

    has_snapshot: bool = False
    snapshot: Any = None
    activity: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.has_snapshot or bool(self.activity)


Apply = Callable[[Batch], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
OnStop = Callable[[BaseException | None], None]


class Feed:
    """Subscribe ``source`` to ``topics`` and feed ``apply`` at most once per ``min_interval``.

    ``sleep`` is the pause between redraws; tests pass a gate instead of a clock so that throttling
    is checked without timing anything. ``on_stop`` learns how the stream ended: ``None`` when the
    engine closed it, the exception when reading it failed (cancellation by :meth:`close` is not
    reported).
    """

    def __init__(
        self,
        source: EventSource,
        topics: Sequence[str],
        apply: Apply,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        sleep: Sleep = asyncio.sleep,
        on_stop: OnStop | None = None,
        name: str = "panel feed",
    ) -> None:
        if min_interval < 0:
            raise UsageError(f"min_interval must be zero or positive, not {min_interval}")
        self._source = source
        self._topics = tuple(topics)
        self._apply = apply
        self._min_interval = min_interval
        self._sleep = sleep
        self._on_stop = on_stop
        self._name = name
        self._pending = Batch()
        self._wake = asyncio.Event()
        self._ended = False
        self._task: asyncio.Task[None] | None = None
        self.redraws = 0  # how many times apply ran (for tests and benchmarks)
        self.received = 0  # how many events the subscription delivered

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start reading on the running loop; :class:`UsageError` outside one."""
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                "panels need a running event loop: create them in a notebook cell or in async code"
            ) from None
        self._task = loop.create_task(self._run(), name=self._name)
        self._task.add_done_callback(self._log_end)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def close(self) -> None:
        """Cancel the feed (and with it the subscription); safe to call more than once."""
        if self._task is not None and not self._task.done():
            # A widget may be collected after its loop closed (kernel shutdown): the task can never
            # run again then, and cancelling it would only raise about the closed loop.
            with contextlib.suppress(RuntimeError):
                self._task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the feed's task has finished (after :meth:`close` or the stream's end)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    # -- the two loops ---------------------------------------------------------------------

    async def _run(self) -> None:
        drawer = asyncio.create_task(self._draw(), name=f"{self._name} (drawer)")
        failure: BaseException | None = None
        try:
            await self._read()
        except asyncio.CancelledError:
            drawer.cancel()
            raise
        except Exception as exc:  # the stream broke: log it, keep what was read, report it below
            log.exception("%s: the engine stream failed", self._name)
            failure = exc
        self._ended = True
        self._wake.set()
        try:
            await drawer  # draws what is still pending, then returns
        except asyncio.CancelledError:
            drawer.cancel()
            raise
        if self._on_stop is not None:
            self._call_on_stop(failure)

    async def _read(self) -> None:
        stream = self._source.subscribe(self._topics)
        try:
            async for event in stream:
                self.received += 1
                if event.topic == "snapshot":
                    self._pending.has_snapshot = True
                    self._pending.snapshot = event.data
                elif event.topic == "activity":
                    items = event.data if isinstance(event.data, list) else [event.data]
                    self._pending.activity.extend(items)
                    del self._pending.activity[:-ACTIVITY_KEEP]
                self._wake.set()
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()

    async def _draw(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, Batch()
            if batch:
                self.redraws += 1
                try:
                    await self._apply(batch)
                except Exception:  # a failed redraw must not end the feed: log it, wait for the next
                    log.exception("%s: drawing an update failed", self._name)
            if self._ended and not self._pending:
                return
            await self._sleep(self._min_interval)

    def _call_on_stop(self, failure: BaseException | None) -> None:
        assert self._on_stop is not None
        try:
            self._on_stop(failure)
        except Exception:  # the callback is panel code: log, never let it vanish in the task
            log.exception("%s: reporting the end of the stream failed", self._name)

    def _log_end(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped: %s", self._name, exc, exc_info=exc)
