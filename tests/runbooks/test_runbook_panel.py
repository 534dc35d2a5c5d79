"""The runbook panel over a sandbox engine: list, a run from the page's event, progress, a failure."""

from __future__ import annotations

import asyncio
import re

from legion_nb.engine.runtime import Engine
from legion_nb.widgets import RunbookPanel


async def test_panel_lists_runs_from_its_form_and_shows_the_failing_cell(cluster: Engine) -> None:
    panel = RunbookPanel(cluster, poll_interval=0.05)
    try:
        await panel.refresh()
        names = [b["name"] for b in panel.runbooks]
        assert "node-recovery" in names and panel.selected == names[0]
        node = next(b for b in panel.runbooks if b["name"] == "node-recovery")
        assert node["parameters"]["node"]["help"] and node["purpose"]

        # What the page does: pick the runbook, type a parameter, press Run (one "run" event).
        panel.selected = "node-recovery"
        panel.values = {"node": "ghost", "settle_seconds": ""}
        panel._on_event(panel, {"event": "run"}, [])
        assert panel._task is not None
        await asyncio.wait_for(panel._task, 300)

        assert not panel.running
        assert panel.failure["error"].startswith("LookupError: no server 'ghost'")
        assert "server_row(await engine.snapshot(), node)" in panel.failure["source"]
        assert panel.runs[0]["status"] == "failed" and panel.runs[0]["failed_cell"] == panel.failure["index"]
        # named as the author finds it: the executed notebook's prompt and the cell's first line
        assert re.fullmatch(r"In \[\d+\]: if not node:", panel.failure["where"]), panel.failure
        assert panel.runs[0]["failed_at"] == panel.failure["where"]
        # Live progress mid-run (which cell runs) is shown deterministically by the probe runbook's
        # own view of runbook_live in test_runbooks_sandbox; here: the final count.
        assert panel.progress["cells"] > 0 and panel.progress["current"] is None

        record = await panel.run("node-recovery", {"node": "web-1"}, dry_run=True)
        assert record.exit_status == 0 and panel.failure == {}
        assert [r["status"] for r in panel.runs] == ["succeeded", "failed"]
        assert panel.progress["done"] == panel.progress["cells"] == len(record.cells)
    finally:
        panel.close()
