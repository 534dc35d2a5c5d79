"""The billing notebook in a real JupyterLab through Chromium: its charts and the billing panel show.

The notebook's charts and the billing panel's cost-per-day chart (as wide as the panel) are
Plotly's, drawn with the plotly.js its wheel bundles: every request that leaves the loopback is
aborted and recorded, and none is attempted. A screenshot of the whole run lands in
``test-artifacts/billing-analysis.png``, one of the billing panel in ``billing-panel.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from labkit import CHARTS_FILL_THE_VIEW, MONEY_TEXT, LabServer, OpenNotebook, code_cell_count
from playwright.async_api import expect

NOTEBOOK = "04-billing-analysis.ipynb"
RUN = 240_000  # ms: every cell, the sandbox, a materialize and the collections
SHOWN = 30_000  # ms: outputs of cells that ran, reaching the page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_the_billing_notebook_shows_its_charts_and_panel(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    async with open_notebook(NOTEBOOK, height=4000, shot="billing-analysis", offline=True) as opened:
        page = opened.page
        await opened.run_all(code_cell_count(lab.root / NOTEBOOK), timeout=RUN)

        charts = page.locator(".jp-OutputArea-output.jp-RenderedPlotly")  # Plotly's JupyterLab view
        await expect(charts).to_have_count(2, timeout=SHOWN)
        for chart in await charts.all():
            await expect(chart).to_be_visible()
        panel = page.locator(".lnb-panel.lnb-billing")
        await expect(panel).to_have_count(1)
        await expect(panel.locator(".lnb-billing-totals tbody tr")).to_have_count(3)
        cost_chart = page.locator(".lnb-billing-view .lnb-cost-chart")  # Plotly's bars under the tables
        await expect(cost_chart.locator(".barlayer .point path").first).to_be_visible()
        # The history's cost no day holds is a bar of its own, and the chart says what it is.
        await expect(cost_chart.locator(".xtick text", has_text="unattributed")).to_have_count(1)
        await expect(cost_chart.locator(".gtitle")).to_contain_text("on no day Legion estimated")
        # The chart takes the panel's whole width (the page reports it), not two-thirds of it.
        view = page.locator(".lnb-billing-view")
        await page.wait_for_function(CHARTS_FILL_THE_VIEW, arg=await view.element_handle(), timeout=SHOWN)
        await expect(panel.locator(".lnb-billing-orphans tbody tr")).to_have_count(1)
        # Money reads as money: cents at least, and no run of zeros past them ("3.7740000000").
        money = await panel.locator(".lnb-billing-totals tbody td.lnb-money").all_inner_texts()
        assert money and all(re.fullmatch(MONEY_TEXT, text) for text in money if text != "\u2014"), money
        await opened.expect_no_widget_failures(timeout=SHOWN)
        await page.screenshot(path=str(artifacts / "billing-analysis.png"), full_page=True)
        await page.locator(".lnb-billing-view").screenshot(path=str(artifacts / "billing-panel.png"))
    assert opened.remote_requests == []
    assert opened.page_errors == []
    assert opened.widget_errors == []
