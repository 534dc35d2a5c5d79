"""The engine's runbook surface: list, run, runs, show, verify, and what runs right now.

The same methods answer a notebook cell (``await engine.run_runbook("node-recovery", {"node":
"web-2"})``), the CLI and the daemon; a run through the daemon executes in the daemon's process,
whose kernel reaches the daemon's engine through the run's channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from legion_nb.engine.api import engine_api
from legion_nb.engine.runbooks.records import RunRecord
from legion_nb.engine.runbooks.service import Runbooks

__all__ = ["RunbookMethods"]


class RunbookMethods:
    """Mixed into the engine, which provides ``runbooks`` and ``assert_unlocked``."""

    runbooks: Runbooks

    def assert_unlocked(self) -> object:
        raise NotImplementedError

    @engine_api
    async def runbook_list(self) -> list[dict[str, Any]]:
        """Each runbook's name, title, one-paragraph purpose and parameters (default and help)."""
        return [
            {"name": r.name, "title": r.title, "purpose": r.purpose, "parameters": r.parameters}
            for r in self.runbooks.catalog()
        ]

    @engine_api
    async def run_runbook(
        self, name: str, parameters: Mapping[str, Any] | None = None, dry_run: bool = False
    ) -> RunRecord:
        """Execute runbook ``name`` with ``parameters`` and return its (already appended) record.

        A run whose cell fails is still recorded: ``status`` is ``failed``, ``exit_status`` 1, and
        ``failed_cell`` names the cell and its error. Unknown runbooks or parameters raise
        :class:`~legion_nb.errors.UsageError` before anything runs.
        """
        self.assert_unlocked()
        return await self.runbooks.run(name, parameters or {}, dry_run=dry_run)

    @engine_api
    async def runbook_runs(self) -> list[dict[str, Any]]:
        """One row per recorded run, oldest first."""
        return [record.row() for record in self.runbooks.runs()]

    @engine_api
    async def runbook_show(self, run_id: str) -> RunRecord:
        """The full record of run ``run_id``."""
        return self.runbooks.show(run_id)

    @engine_api
    async def runbook_verify(self, run_id: str | None = None) -> dict[str, Any]:
        """Check the record chain and output notebooks (all, or one run's): ok, checked, problems."""
        report = self.runbooks.verify(run_id)
        return {"ok": report.ok, "checked": report.checked, "problems": list(report.problems)}

    @engine_api
    async def runbook_live(self) -> list[dict[str, Any]]:
        """The runs executing now: which cell runs and which are done (the panel's progress)."""
        return [live.to_json() for live in self.runbooks.live.values()]
