"""The streams panel: each Sender stream session with its state and reason, from the snapshot.

The engine's snapshot carries a ``streams`` section (the StreamingSupervisor's latest probe of every
planned stream); the panel shows it as rows - name, satellite, state, reason, bytes delivered, the
endpoint's latency - and decides nothing itself. A locked engine shows no streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import traitlets

from legion_nb.widgets.feed import Batch
from legion_nb.widgets.panel import LivePanel, esm_of
from legion_nb.widgets.rows import parse_snapshot

__all__ = ["StreamsPanel", "stream_rows"]

_FIELDS = ("name", "satellite", "state", "reason", "bytes", "latency_ms", "endpoint", "checked_at")


def stream_rows(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of the snapshot's ``streams`` section, with only the fields the panel shows."""
    section = snapshot.get("streams")
    if not isinstance(section, list):
        return []
    return [{f: item.get(f) for f in _FIELDS} for item in section if isinstance(item, Mapping)]


class StreamsPanel(LivePanel):
    """One row per Sender stream session (module notes)."""

    _esm = esm_of("streams")

    title = traitlets.Unicode("Streams").tag(sync=True)
    # list of the _FIELDS of each stream
    streams = traitlets.List(traitlets.Dict()).tag(sync=True)

    async def prepare(self, batch: Batch) -> Mapping[str, Any]:
        if not batch.has_snapshot:
            return {}
        snapshot = parse_snapshot(batch.snapshot)
        raw = batch.snapshot if isinstance(batch.snapshot, Mapping) else {}
        return {"locked": snapshot.locked, "revision": snapshot.revision, "streams": stream_rows(raw)}
