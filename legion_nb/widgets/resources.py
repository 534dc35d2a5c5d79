"""The resources panel: a live table of every resource and what Legion believes about it now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import traitlets

from legion_nb.widgets.feed import Batch
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import parse_snapshot

__all__ = ["ResourcesPanel"]


class ResourcesPanel(LivePanel):
    """One row per resource: kind, name, provider, lifecycle state, current operation, substage,
    waiting reason and last error, as the engine's latest snapshot has them.

    ``ResourcesPanel(engine)`` follows ``engine`` (an in-process engine or a daemon client) until
    :meth:`close`; redraws are throttled to about ten a second however fast the engine publishes.
    """

    _esm = esm_of("resources")

    title = traitlets.Unicode("Resources").tag(sync=True)
    # list[rows.ResourceRow]; the JavaScript table reads exactly these keys.
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)

    async def prepare(self, batch: Batch) -> Mapping[str, Any]:
        if not batch.has_snapshot:
            return {}
        snapshot = parse_snapshot(batch.snapshot)
        return {"rows": list(snapshot.rows), "locked": snapshot.locked, "revision": snapshot.revision}
