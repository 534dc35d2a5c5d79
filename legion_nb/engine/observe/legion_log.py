"""Legion's own log in the log store: operations and actor changes beside the nodes' journals.

An analyst asking "what happened at 03:12" wants the cluster's journals and what Legion did at the
same moment in one search. This service follows the event hub's activity topic - the one stream
that already says when an operation began and ended and when a resource's visible status (state,
operation, waiting reason, error) changed - and stores each item as a log line of node ``legion``:
source ``operation`` for operation starts and ends, source ``actor`` for the actors' changes (the
trace of each resource actor at the level an operator reads). A failed operation or a resource
showing an error is level ``err``; the rest is ``info``.

Every line passes the redaction layer (:func:`legion_nb.engine.redaction.redact`) on its way into
the store, so no secret the unlocked state holds is ever written. Lines are batched: the activity
topic delivers a tick's items together and they land in one transaction, off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from legion_nb.engine.events import EventHub
from legion_nb.engine.observe.log_store import LEVELS, LogLine, LogStore
from legion_nb.engine.redaction import redact

__all__ = ["LEGION_NODE", "LegionLog", "legion_lines"]

log = logging.getLogger(__name__)

LEGION_NODE = "legion"
_ERR = LEVELS.index("err")
_INFO = LEVELS.index("info")
_FAILED = frozenset({"failed", "interrupted", "error"})


def legion_lines(items: Iterable[Mapping[str, Any]]) -> list[LogLine]:
    """Log lines for activity items (items of other shapes are skipped)."""
    lines = []
    for item in items:
        summary = item.get("summary")
        event = item.get("event")
        if not isinstance(summary, str) or event not in ("begin", "end", "resource"):
            continue
        level = _INFO
        if event == "resource":
            source = "actor"
            resource = item.get("resource")
            if isinstance(resource, Mapping) and resource.get("error"):
                level = _ERR
        else:
            source = "operation"
            if event == "end" and item.get("status") in _FAILED:
                level = _ERR
        operation = item.get("operation")
        text = f"[{operation}] {summary}" if operation else summary
        lines.append(LogLine(_time_ms(item.get("time")), LEGION_NODE, source, text, level))
    return lines


def _time_ms(value: object) -> int:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # an item without a readable time is stamped now
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return int(moment.timestamp() * 1000)
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


class LegionLog:
    """Writes the hub's activity into the log store at ``path`` while the session is open."""

    def __init__(self, hub: EventHub, path: Path) -> None:
        self._hub = hub
        self._path = path
        self._store: LogStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.written = 0
        """Lines stored so far (for tests and the status)."""

    async def __aenter__(self) -> LegionLog:
        self._subscribed.clear()
        self._store = await asyncio.to_thread(LogStore, self._path, redact=redact)
        self._task = asyncio.create_task(self._follow(), name="legion-log")
        await self._subscribed.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Store what the hub delivered before now, then stop and close the store (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            await asyncio.sleep(0)  # let a publication of this tick reach the mailbox
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        store, self._store = self._store, None
        if store is not None:
            await asyncio.to_thread(store.close)

    async def _follow(self) -> None:
        events = self._hub.subscribe(["activity"])
        try:
            first = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0)  # the generator registers its mailbox on its first step
            self._subscribed.set()
            event = await first
            while True:
                await self._write(event.data)
                event = await anext(events)
        except StopAsyncIteration:  # the hub closed
            return
        finally:
            self._subscribed.set()
            await events.aclose()

    async def _write(self, batch: object) -> None:
        items = batch if isinstance(batch, list) else [batch]
        lines = legion_lines(i for i in items if isinstance(i, Mapping))
        store = self._store
        if not lines or store is None:
            return
        try:
            self.written += await asyncio.to_thread(store.append, lines)
        except Exception:  # the log must never stop the engine: say so and keep following
            log.exception("writing %d Legion log line(s) to %s failed", len(lines), self._path)
