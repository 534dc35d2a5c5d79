"""The runbook panel in a real JupyterLab through Chromium: fill the form, Run, watch, read the result.

A notebook written into the served root starts a sandbox cluster and shows the panel; the test then
drives the page as an operator would: picks node-recovery, types a node that does not exist, presses
Run and finds the failing cell and its error in the panel; then types a real node with dry run on
and finds the succeeded run in the history, the runs table whole within the panel (no column past
its right edge, no header cut short). Screenshot: ``test-artifacts/runbook-panel.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from labkit import CLIPPED_TEXT, LOAD, OVERFLOWING_TEXT, LabServer, OpenNotebook
from playwright.async_api import expect

NOTEBOOK = "runbook-panel.ipynb"
RUN = 240_000  # ms: the sandbox cluster's materialize, then a runbook's own kernel
CELLS = [
    """\
import legion_nb
from legion_nb.widgets import RunbookPanel

# The state (and so the run records and output notebooks) under the served root: the test opens
# a run's output notebook in JupyterLab.
engine = await legion_nb.sandbox(
    seed=5, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02, state_dir="state"
)
for name in ("web-1", "web-2"):
    await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
report = await engine.materialize(settle_seconds=120)
assert report.ok, report.errors""",
    """\
panel = RunbookPanel(engine)
await panel.refresh()
panel""",
]

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_the_runbook_panel_runs_a_runbook_and_shows_a_failing_cell(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, lab.root / NOTEBOOK)  # type: ignore[no-untyped-call]
    async with open_notebook(NOTEBOOK, height=2400, shot="runbook-panel") as opened:
        page = opened.page
        await opened.run_all(len(CELLS), timeout=RUN)
        panel = page.locator(".lnb-panel.lnb-runbooks")
        await expect(panel).to_have_count(1, timeout=RUN)
        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)

        await panel.locator("select.lnb-runbook-select").select_option("node-recovery")
        node = panel.locator('input.lnb-runbook-input[name="node"]')
        await expect(node).to_have_count(1)
        await node.fill("ghost")
        await node.press("Tab")  # the change event syncs the value
        await panel.locator("button.lnb-runbook-run").click()
        failure = panel.locator(".lnb-runbook-failure")
        await expect(failure).to_contain_text("no server 'ghost'", timeout=RUN)
        await expect(failure.locator(".lnb-runbook-source")).to_contain_text("server_row(")
        await expect(panel.locator(".lnb-runbook-runs tbody tr")).to_have_count(1)
        # The cell named as its author finds it: the prompt the output notebook shows, its first line.
        said = await failure.locator(".lnb-error").inner_text()
        prompt = re.search(r"failed at In \[(\d+)\]: if not node: - LookupError", said)
        assert prompt is not None, said
        await expect(panel.locator(".lnb-runbook-runs tbody tr").first).to_contain_text(
            f"In [{prompt.group(1)}]: if not node:"
        )

        node = panel.locator('input.lnb-runbook-input[name="node"]')
        await node.fill("web-1")
        await node.press("Tab")
        await panel.locator("input.lnb-runbook-dry").check()
        await panel.locator("button.lnb-runbook-run").click()
        rows = panel.locator(".lnb-runbook-runs tbody tr")
        await expect(rows).to_have_count(2, timeout=RUN)
        await expect(rows.first.locator(".lnb-badge")).to_have_text("succeeded")
        await expect(failure).to_have_count(0)
        await expect(panel.locator(".lnb-runbook-progress-text")).to_contain_text("cells done")
        # The runs table fits the panel: every column, the failed run's error last, reads whole
        # inside its right edge, with no header or badge cut short.
        await expect(rows.last.locator("td").last).to_contain_text("no server 'ghost'")
        assert await panel.evaluate(OVERFLOWING_TEXT) == []
        assert await panel.evaluate(CLIPPED_TEXT) == []
        await page.screenshot(path=str(artifacts / "runbook-panel.png"), full_page=True)

        # The failed run's output notebook opens in JupyterLab with its outputs and the error.
        outputs = sorted((lab.root / "state").glob("*.logs/runbooks/outputs/*.ipynb"))
        assert len(outputs) == 2
        failed_output = next(p for p in outputs if "no server 'ghost'" in p.read_text())
        await page.goto(lab.url(f"lab/tree/{failed_output.relative_to(lab.root).as_posix()}"))
        await expect(page.locator(".jp-OutputArea-output").get_by_text("LookupError").first).to_be_visible(
            timeout=LOAD
        )
        error = page.locator(".jp-OutputArea-output", has_text="the servers are: web-1, web-2").first
        await expect(error).to_be_visible()
        failed_cell = page.locator(".jp-CodeCell", has_text="the servers are: web-1, web-2").first
        await expect(failed_cell.locator(".jp-InputPrompt")).to_contain_text(f"[{prompt.group(1)}]")
        await page.screenshot(path=str(artifacts / "runbook-output.png"), full_page=True)
    assert opened.page_errors == []
    assert opened.widget_errors == []
