"""The plan diff panel: planned, tracked and observed values field by field, and the action each
resource needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import traitlets

from legion_nb.widgets.feed import Batch
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import parse_snapshot, plan_cost_of, tally

__all__ = ["PlanDiffPanel"]


class PlanDiffPanel(LivePanel):
    """Every resource with its action (create, update, delete, unchanged, adopt, orphan) and, under
    it, each field in the planned, tracked and observed views; changed fields are highlighted. Above
    them, what the plan costs a month now, after it, and the change, per currency.

    The field diffs travel in the snapshot rows (the app snapshot joins the pure diff in), so this
    panel shows exactly the resources the resources panel shows, from the same publication.
    """

    _esm = esm_of("plan_diff")

    title = traitlets.Unicode("Plan diff").tag(sync=True)
    # list[rows.DiffRow]
    resources = traitlets.List(traitlets.Dict()).tag(sync=True)
    # action -> number of resources needing it
    counts = traitlets.Dict().tag(sync=True)
    # the plan's monthly cost: {"currencies": [{currency, now, planned, change}], "unpriced": [...]}
    cost = traitlets.Dict().tag(sync=True)

    async def prepare(self, batch: Batch) -> Mapping[str, Any]:
        if not batch.has_snapshot:
            return {}
        snapshot = parse_snapshot(batch.snapshot)
        return {
            "locked": snapshot.locked,
            "revision": snapshot.revision,
            "resources": list(snapshot.changes),
            "counts": tally(row["action"] for row in snapshot.changes),
            "cost": plan_cost_of(batch.snapshot),
        }
