"""The activity panel: progress as a view over the snapshot rows, plus the engine's activity items.

Progress here is never a percentage the panel makes up: it is how many resources are in each
lifecycle state and how many have settled, how many still need an action, which resources are
running an operation (with its substage) or waiting for something, the engine's own operation, and
the latest activity items the engine published. The engine operation line knows the operations that
began while the panel was open (activity is a stream); the per-resource operations come with every
snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import traitlets

from legion_nb.widgets.feed import Batch
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import (
    EngineOperation,
    action_counts,
    activity_lines,
    current_operations,
    follow_operation,
    parse_snapshot,
    state_counts,
)

__all__ = ["RECENT_KEEP", "ActivityPanel"]

RECENT_KEEP = 20  # activity lines kept on screen, newest last


class ActivityPanel(LivePanel):
    """Counts per lifecycle state and per pending action, current operations, recent activity."""

    _esm = esm_of("activity")

    topics: ClassVar[tuple[str, ...]] = ("snapshot", "activity")

    title = traitlets.Unicode("Activity").tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    # how many resources' actors have nothing left to do for now
    settled = traitlets.Int(0).tag(sync=True)
    # the engine's running operation (summary), and the last finished one with its status
    running = traitlets.Unicode("").tag(sync=True)
    last_operation = traitlets.Unicode("").tag(sync=True)
    # lifecycle state -> number of resources in it
    states = traitlets.Dict().tag(sync=True)
    # action -> number of resources needing it
    actions = traitlets.Dict().tag(sync=True)
    # list[rows.OperationRow]
    operations = traitlets.List(traitlets.Dict()).tag(sync=True)
    # readable activity lines, newest last
    recent = traitlets.List(traitlets.Unicode()).tag(sync=True)

    async def prepare(self, batch: Batch) -> Mapping[str, Any]:
        changes: dict[str, Any] = {}
        if batch.has_snapshot:
            snapshot = parse_snapshot(batch.snapshot)
            changes.update(
                locked=snapshot.locked,
                revision=snapshot.revision,
                total=len(snapshot.rows),
                settled=sum(row["settled"] for row in snapshot.rows),
                states=state_counts(snapshot.rows),
                actions=action_counts(snapshot.rows),
                operations=current_operations(snapshot.rows),
            )
        if batch.activity:
            changes["recent"] = [*self.recent, *activity_lines(batch.activity)][-RECENT_KEEP:]
            seen = EngineOperation(running=self.running, last=self.last_operation)
            operation = follow_operation(batch.activity, seen)
            changes.update(running=operation.running, last_operation=operation.last)
        return changes
