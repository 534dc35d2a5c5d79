"""The plan diff panel: planned, tracked and observed values field by field, and the action each
resource needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, Protocol

import traitlets

from legion_nb.errors import LockedError
from legion_nb.widgets.feed import Batch, StreamEvent
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import parse_diff, parse_snapshot, tally

__all__ = ["DiffSource", "PlanDiffPanel"]


class DiffSource(Protocol):
    """An engine that streams snapshots and answers ``diff()`` (in-process or through the daemon)."""

    def subscribe(self, topics: Sequence[str]) -> AsyncIterator[StreamEvent]: ...

    def diff(self) -> Awaitable[Any]: ...


class PlanDiffPanel(LivePanel):
    """Every resource with its action (create, update, delete, unchanged, adopt, orphan) and, under
    it, each field in the planned, tracked and observed views; changed fields are highlighted.

    Each snapshot tells the panel that the state moved; it then reads the engine's ``diff()`` (a
    query, never a command) and shows that, so the field values are always the engine's own diff.
    """

    _esm = esm_of("plan_diff")

    title = traitlets.Unicode("Plan diff").tag(sync=True)
    # list[rows.DiffRow]
    resources = traitlets.List(traitlets.Dict()).tag(sync=True)
    # action -> number of resources needing it
    counts = traitlets.Dict().tag(sync=True)

    def __init__(self, engine: DiffSource | None = None, **options: Any) -> None:
        self._diff_source = engine
        super().__init__(engine, **options)

    async def prepare(self, batch: Batch) -> Mapping[str, Any]:
        if not batch.has_snapshot or self._diff_source is None:
            return {}
        snapshot = parse_snapshot(batch.snapshot)
        if snapshot.locked:
            return {"locked": True, "revision": None, "resources": [], "counts": {}}
        try:
            rows = parse_diff(await self._diff_source.diff())
        except LockedError:  # locked between the snapshot and the query: the next snapshot says so
            return {"locked": True, "revision": None, "resources": [], "counts": {}}
        return {
            "locked": False,
            "revision": snapshot.revision,
            "resources": rows,
            "counts": tally(row["action"] for row in rows),
        }
