"""Collecting a node's metrics and journal into the stores, by cursor.

Each collector reads where it stopped (the cursor the store holds for that node), fetches the next
page from the node's admin API, and writes the page and the new cursor in one transaction. A
collector killed between two pages loses nothing and repeats nothing: the next run starts from the
last committed cursor, and the stores drop anything they already hold. A node may serve smaller
pages than asked: the collectors keep paging while its ``more`` says so. The database work runs in a
worker thread so the event loop never waits on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from legion_nb.engine.observe.log_store import LogLine, LogStore
from legion_nb.engine.observe.metrics import SeriesKey
from legion_nb.engine.observe.telemetry_store import Samples, TelemetryStore
from legion_nb.errors import NodeError

__all__ = [
    "CollectReport",
    "JournalSource",
    "MalformedPageError",
    "TelemetrySource",
    "collect_journal",
    "collect_telemetry",
    "journal_cursor",
    "telemetry_cursor",
]


class MalformedPageError(NodeError):
    """A node answered a telemetry or journal page Legion cannot read."""


class TelemetrySource(Protocol):
    async def telemetry(self, *, after: int | None = None, limit: int = 20_000) -> dict[str, Any]: ...


class JournalSource(Protocol):
    async def logs(self, *, since: int = 0, limit: int = 200) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class CollectReport:
    """What one collection of one node brought in."""

    node: str
    pages: int
    stored: int
    duplicates: int
    cursor: int | None


def telemetry_cursor(node: str) -> str:
    return f"telemetry:{node}"


def journal_cursor(node: str) -> str:
    return f"journal:{node}"


async def collect_telemetry(
    store: TelemetryStore,
    node: str,
    source: TelemetrySource,
    *,
    page_limit: int = 20_000,
    max_pages: int = 100,
) -> CollectReport:
    """Fetch ``node``'s samples after its cursor, page by page, until caught up or ``max_pages``."""
    name = telemetry_cursor(node)
    cursor = await asyncio.to_thread(store.cursor, name)
    pages = stored = duplicates = 0
    while pages < max_pages:
        page = await source.telemetry(after=cursor, limit=page_limit)
        samples, next_cursor, more = _samples_of(node, page)
        report = await asyncio.to_thread(store.ingest, samples, cursor=(name, next_cursor))
        pages += 1
        stored += report.accepted
        duplicates += report.duplicates
        cursor = next_cursor
        if not more:
            break
    return CollectReport(node, pages, stored, duplicates, cursor)


def _samples_of(node: str, page: Mapping[str, Any]) -> tuple[Samples, int, bool]:
    try:
        series = tuple(SeriesKey(node, str(s["metric"]), str(s.get("device", ""))) for s in page["series"])
        columns = page["samples"]
        index = np.asarray(columns["index"], dtype=np.int64)
        times = np.asarray(columns["time_ms"], dtype=np.int64)
        values = np.asarray(columns["value"], dtype=np.float64)
        next_cursor = int(page["next"])
        more = bool(page.get("more", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPageError(f"node {node} sent a telemetry page Legion cannot read ({exc})") from exc
    if len(index) and (index.min() < 0 or index.max() >= len(series)):
        raise MalformedPageError(f"node {node} sent samples for series it did not name")
    return Samples(series, index, times, values), next_cursor, more


async def collect_journal(
    store: LogStore, node: str, source: JournalSource, *, page_limit: int = 1000, max_pages: int = 100
) -> CollectReport:
    """Fetch ``node``'s journal after its cursor (a sequence number), page by page."""
    name = journal_cursor(node)
    cursor = await asyncio.to_thread(store.cursor, name) or 0
    pages = stored = duplicates = 0
    while pages < max_pages:
        page = await source.logs(since=cursor, limit=page_limit)
        lines, next_cursor, more = _lines_of(node, page, cursor, page_limit)
        added = await asyncio.to_thread(store.append, lines, cursor=(name, next_cursor))
        pages += 1
        stored += added
        duplicates += len(lines) - added
        caught_up = next_cursor == cursor or not more
        cursor = next_cursor
        if caught_up:
            break
    return CollectReport(node, pages, stored, duplicates, cursor)


def _lines_of(
    node: str, page: Mapping[str, Any], cursor: int, page_limit: int
) -> tuple[Sequence[LogLine], int, bool]:
    """The page's lines, the cursor after them, and whether the node holds more: its ``more``
    when it says so (a node may cap its pages below ``page_limit``), else a full page."""
    try:
        lines = [
            LogLine(
                time_ms=int(float(entry["time"]) * 1000),
                node=node,
                source=str(entry["unit"]),
                text=str(entry["message"]),
                level=int(entry.get("priority", 6)),
                seq=int(entry["seq"]),
            )
            for entry in page["entries"]
        ]
        next_cursor = int(page.get("next", cursor))
        more = bool(page["more"]) if "more" in page else len(lines) >= page_limit
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPageError(f"node {node} sent a journal page Legion cannot read ({exc})") from exc
    return lines, max(next_cursor, cursor), more
