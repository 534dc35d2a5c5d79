"""The activity panel: progress as a view over the snapshot rows, plus the engine's activity items.

Progress here is never a percentage the panel makes up: it is how many resources are in each
lifecycle state, how many still need an action, which resources are running an operation (with its
substage) or waiting for something, and the latest activity items the engine published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import traitlets

from legion_nb.widgets.feed import Batch
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import (
    action_counts,
    activity_lines,
    current_operations,
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
                states=state_counts(snapshot.rows),
                actions=action_counts(snapshot.rows),
                operations=current_operations(snapshot.rows),
            )
        if batch.activity:
            changes["recent"] = [*self.recent, *activity_lines(batch.activity)][-RECENT_KEEP:]
        return changes
