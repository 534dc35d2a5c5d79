"""The billing notebook in a real JupyterLab through Chromium: its charts and the billing panel show.

The notebook's charts and the billing panel's cost-per-day chart are Plotly's, drawn with the
plotly.js its wheel bundles: every request that leaves the loopback is aborted and recorded, and
none is attempted. A screenshot of the whole run lands in
``test-artifacts/billing-analysis.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from labkit import LabServer, notebook_page, run_all_cells
from playwright.async_api import expect

NOTEBOOK = "04-billing-analysis.ipynb"
LOAD = 180_000  # ms: JupyterLab's first load on a small shared machine
RUN = 240_000  # ms: every cell, the sandbox, a materialize and the collections
SHOWN = 30_000  # ms: outputs of cells that ran, reaching the page
ALL_CELLS_RAN = """(n) => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
    return prompts.length === n && prompts.every((p) => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
}"""

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_the_billing_notebook_shows_its_charts_and_panel(
    lab: LabServer, chromium: Path, artifacts: Path
) -> None:
    nb = nbformat.read(lab.root / NOTEBOOK, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    async with notebook_page(
        lab,
        chromium,
        NOTEBOOK,
        viewport={"width": 1400, "height": 4000},
        load_timeout=LOAD,
        failure_shot=artifacts / "billing-analysis-failure.png",
        offline=True,
    ) as opened:
        page = opened.page
        await run_all_cells(page)
        await page.wait_for_function(ALL_CELLS_RAN, arg=code_cells, timeout=RUN)
        await expect(opened.idle).to_have_count(1, timeout=RUN)

        charts = page.locator(".jp-OutputArea-output.jp-RenderedPlotly")  # Plotly's JupyterLab view
        await expect(charts).to_have_count(2, timeout=SHOWN)
        for chart in await charts.all():
            await expect(chart).to_be_visible()
        panel = page.locator(".lnb-panel.lnb-billing")
        await expect(panel).to_have_count(1)
        await expect(panel.locator(".lnb-billing-totals tbody tr")).to_have_count(3)
        cost_chart = page.locator(".lnb-billing-view .lnb-cost-chart")  # Plotly's bars under the tables
        await expect(cost_chart.locator(".barlayer .point path").first).to_be_visible()
        await expect(panel.locator(".lnb-billing-orphans tbody tr")).to_have_count(1)
        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        assert not await page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).count()
        await page.screenshot(path=str(artifacts / "billing-analysis.png"), full_page=True)
    assert opened.remote_requests == []
    assert opened.page_errors == []
    assert [e for e in opened.console_errors if re.search(r"widget|lnb|anywidget", e, re.IGNORECASE)] == []
