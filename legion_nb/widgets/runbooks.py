"""The runbook panel: the runbooks on offer, a parameters form, a run with live cell progress, history.

Like the billing panel it has no stream to follow: it asks the engine (in process, or the daemon's
``RemoteEngine``) for the runbooks and the recorded runs on :meth:`RunbookPanel.refresh`. A run
starts from the page (its Run button sends one ``run`` event; the form's values are synced traits)
or from a cell (``await panel.run("node-recovery", {"node": "web-2"})``); while it runs the panel
polls ``runbook_live`` for the cell in progress. A failed run shows its failing cell and error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from legion_nb.engine.runbooks.catalog import parse_value
from legion_nb.errors import LegionError, UsageError
from legion_nb.widgets.panel import STATIC, esm_of

if TYPE_CHECKING:
    from legion_nb.engine.runbooks.records import RunRecord
    from legion_nb.engine.surface import EngineAPI

__all__ = ["RunbookPanel"]

log = logging.getLogger(__name__)


class RunbookPanel(anywidget.AnyWidget):
    """Runbooks for one engine (module notes); ``close()`` stops any progress polling."""

    _esm = esm_of("runbooks")
    _css = (STATIC / "panels.css").read_text(encoding="utf-8")

    title = traitlets.Unicode("Runbooks").tag(sync=True)
    status = traitlets.Unicode("waiting").tag(sync=True)
    runbooks = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    values = traitlets.Dict().tag(sync=True)
    """Parameter name -> the text typed in the form (empty: the runbook's default)."""
    dry_run = traitlets.Bool(False).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.Dict().tag(sync=True)
    """The run in progress: ``cells``, ``done`` (count) and ``current`` (cell index or None)."""
    runs = traitlets.List(traitlets.Dict()).tag(sync=True)
    failure = traitlets.Dict().tag(sync=True)
    """The last run's failing cell: ``id``, ``index`` (its position in the output notebook), ``where``
    (how its author finds it: ``In [4]: first line``), ``source``, ``error`` (empty when it passed)."""

    def __init__(self, engine: EngineAPI, *, poll_interval: float = 0.25, **traits: Any) -> None:
        super().__init__(**traits)
        self._engine = engine
        self._poll_interval = poll_interval
        self._task: asyncio.Task[Any] | None = None
        self.on_msg(self._on_event)

    async def refresh(self) -> None:
        """Read the runbooks and the recorded runs (newest first)."""
        try:
            books = await self._engine.runbook_list()
            runs = await self._engine.runbook_runs()
        except LegionError as exc:  # shown in the panel: a locked engine, a daemon gone
            self.status = f"stopped: {exc.message}"
            return
        with self.hold_sync():
            self.runbooks = books
            if not self.selected and books:
                self.selected = books[0]["name"]
            self.runs = list(reversed(runs))
            self.status = f"{len(books)} runbook(s), {len(runs)} run(s) recorded"

    async def run(
        self,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool | None = None,
    ) -> RunRecord:
        """Run ``name`` (default: the selected runbook) with ``parameters`` (default: the form's)."""
        name = name or self.selected
        if not name:
            raise UsageError("no runbook selected: pick one in the panel or pass its name")
        if parameters is None:
            parameters = {k: parse_value(v) for k, v in self.values.items() if str(v).strip()}
        dry = self.dry_run if dry_run is None else dry_run
        with self.hold_sync():
            self.selected, self.running, self.failure = name, True, {}
            self.progress = {"cells": 0, "done": 0, "current": None}
            self.status = f"running {name}{' (dry run)' if dry else ''}"
        poller = asyncio.get_running_loop().create_task(self._poll(), name="legion-runbook-progress")
        try:
            record = await self._engine.run_runbook(name=name, parameters=dict(parameters), dry_run=dry)
        except LegionError as exc:
            with self.hold_sync():
                self.running = False
                self.status = f"refused: {exc.message}"
            raise
        finally:
            poller.cancel()
        failed = record.failed_cell
        with self.hold_sync():
            self.running = False
            done = sum(1 for c in record.cells if c.status == "completed")
            self.progress = {"cells": len(record.cells), "done": done, "current": None}
            self.failure = (
                {}
                if failed is None
                else {
                    "id": record.id,
                    "index": failed.index,
                    "where": failed.label,
                    "source": failed.source,
                    "error": failed.error,
                }
            )
            self.status = f"{record.id}: {record.status}"
        await self.refresh()
        self.status = f"{record.id}: {record.status}"
        return record

    async def _poll(self) -> None:
        while True:
            try:
                for live in await self._engine.runbook_live():
                    if live["runbook"] == self.selected:
                        self.progress = {
                            "cells": live["cells"],
                            "done": len(live["done"]),
                            "current": live["current"],
                        }
            except LegionError as exc:  # the run itself reports; progress is best effort
                log.debug("runbook progress poll failed: %s", exc)
            await asyncio.sleep(self._poll_interval)

    def _on_event(self, _: Any, content: Any, buffers: Any) -> None:
        """The page's Run button: one ``run`` event, the form's values already synced."""
        if not isinstance(content, dict) or content.get("event") != "run" or self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run_from_page(), name="legion-runbook-run")

    async def _run_from_page(self) -> None:
        try:
            await self.run()
        except Exception:  # logged: errors in widget callbacks are otherwise swallowed silently
            log.exception("runbook run from the panel failed")

    def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            log.info("closing the runbook panel; its run goes on in the engine")
        super().close()
