"""The plan diff panel: planned, tracked and observed values field by field, and the action each
resource needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, Protocol

import traitlets

from legion_nb.errors import LockedError
from legion_nb.widgets.feed import Batch, StreamEvent
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import DiffRow, Snapshot, parse_diff, parse_snapshot, tally

__all__ = ["DiffSource", "PlanDiffPanel"]


class DiffSource(Protocol):
    """An engine that streams snapshots and answers ``diff()`` (in-process or through the daemon)."""

    def subscribe(self, topics: Sequence[str]) -> AsyncIterator[StreamEvent]: ...

    def diff(self) -> Awaitable[Any]: ...


class PlanDiffPanel(LivePanel):
    """Every resource with its action (create, update, delete, unchanged, adopt, orphan) and, under
    it, each field in the planned, tracked and observed views; changed fields are highlighted.

    The field diffs come with the snapshot rows (the app snapshot joins them in), so this panel shows
    exactly the resources the resources panel shows. An engine whose snapshot rows carry no fields
    is asked for its ``diff()`` (a query, never a command) after each snapshot instead.
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
        if not batch.has_snapshot:
            return {}
        snapshot = parse_snapshot(batch.snapshot)
        rows = None if snapshot.locked else await self._changes(snapshot)
        if rows is None:
            return {"locked": True, "revision": None, "resources": [], "counts": {}}
        return {
            "locked": False,
            "revision": snapshot.revision,
            "resources": rows,
            "counts": tally(row["action"] for row in rows),
        }

    async def _changes(self, snapshot: Snapshot) -> list[DiffRow] | None:
        """The snapshot's field diffs, or the engine's ``diff()``; None when the state is locked."""
        if snapshot.changes is not None:
            return list(snapshot.changes)
        if self._diff_source is None:
            return []
        try:
            return parse_diff(await self._diff_source.diff())
        except LockedError:  # locked between the snapshot and the query: the next snapshot says so
            return None
