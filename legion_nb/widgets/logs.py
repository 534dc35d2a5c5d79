"""The log panel: search the log store, filter by label, follow a live tail, matches highlighted.

The panel asks the engine for a log frame (``engine.logs``, in process or through the daemon) with
the search text and the picked node, source and level, and keeps the lines as plain rows in a synced
trait; the page shows them as text, marking every occurrence of the search text (never parsing a
line as markup: lines come from the nodes). Typing a search or picking a label sets the trait and
the panel searches again; :meth:`LogPanel.follow` adds the lines after the last one shown every
few seconds (the frame's ``id`` is the tail's cursor). A saved notebook reopened without a kernel
shows the lines as a static table.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import TYPE_CHECKING, Any

import traitlets

from legion_nb.errors import LegionError
from legion_nb.widgets.panel import STATIC, PolledPanel, esm_of

if TYPE_CHECKING:
    import pandas as pd

    from legion_nb.engine.surface import EngineAPI

__all__ = ["LogPanel", "log_rows"]

LEVELS = ("", "err", "warning", "notice", "info", "debug")


def log_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The panel's rows from a log frame, oldest first."""
    return [
        {
            "id": int(i),
            "time": f"{at:%Y-%m-%d %H:%M:%S}",
            "node": str(n),
            "source": str(s),
            "level": str(lv),
            "text": t,
        }
        for at, i, n, s, lv, t in zip(
            frame.index,
            frame["id"],
            frame["node"],
            frame["source"],
            frame["level"],
            frame["text"],
            strict=True,
        )
    ]


class LogPanel(PolledPanel):
    """Log search of one engine (module notes); ``close()`` stops following it."""

    _esm = esm_of("logs")
    _css = (STATIC / "panels.css").read_text(encoding="utf-8")
    picks = ("query", "node", "source", "level")
    what = "log panel"

    title = traitlets.Unicode("Logs").tag(sync=True)
    status = traitlets.Unicode("waiting").tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    node = traitlets.Unicode("").tag(sync=True)
    source = traitlets.Unicode("").tag(sync=True)
    level = traitlets.Unicode("").tag(sync=True)
    levels = traitlets.List(traitlets.Unicode(), default_value=list(LEVELS)).tag(sync=True)
    nodes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    sources = traitlets.List(traitlets.Unicode()).tag(sync=True)
    lines = traitlets.List(traitlets.Dict()).tag(sync=True)
    limit = traitlets.Int(200).tag(sync=True)

    def __init__(self, engine: EngineAPI, **traits: Any) -> None:
        super().__init__(engine, **traits)
        self._engine: EngineAPI = engine

    def _filters(self) -> dict[str, Any]:
        return {
            "text": self.query or None,
            "nodes": self.node or None,
            "sources": self.source or None,
            "level": self.level or None,
        }

    async def refresh(self) -> None:
        """Search again with the current filters (the newest ``limit`` lines)."""
        try:
            frame = await self._engine.logs(**self._filters(), limit=self.limit)
            labels = await self._engine.logs(limit=self.limit)
        except LegionError as exc:  # shown in the panel: a locked engine, a bad level
            self.status = f"stopped: {exc.message}"
            return
        with self.hold_sync():
            self.lines = log_rows(frame)
            self.nodes = sorted({*self.nodes, *(str(n) for n in labels["node"].unique())})
            self.sources = sorted({*self.sources, *(str(s) for s in labels["source"].unique())})
            self.status = f"{len(frame)} lines, searched {dt.datetime.now(dt.UTC):%H:%M:%S} UTC"

    async def tail(self) -> int:
        """Add the lines after the last one shown (the live tail's step); returns how many."""
        if not self.lines:
            await self.refresh()
            return len(self.lines)
        try:
            frame = await self._engine.logs(**self._filters(), after_id=int(self.lines[-1]["id"]), limit=1000)
        except LegionError as exc:
            self.status = f"stopped: {exc.message}"
            return 0
        if frame.empty:
            return 0
        with self.hold_sync():
            self.lines = [*self.lines, *log_rows(frame)][-self.limit :]
            self.status = f"live: +{len(frame)} at {dt.datetime.now(dt.UTC):%H:%M:%S} UTC"
        return len(frame)

    def follow(self, interval: float = 2.0) -> None:
        """Search now, then tail every ``interval`` seconds until :meth:`close`."""
        super().follow(interval)

    async def step(self) -> None:
        await self.tail()

    def static_html(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(r['time'])}</td><td>{escape(r['node'])}</td><td>{escape(r['source'])}</td>"
            f"<td>{escape(r['level'])}</td><td>{escape(r['text'])}</td></tr>"
            for r in self.lines
        )
        head = "".join(f"<th>{h}</th>" for h in ("time (UTC)", "node", "source", "level", "text"))
        return f"<table><tr>{head}</tr>{rows}</table>"
