"""The telemetry notebook in a real JupyterLab through Chromium, with the network cut off.

Every request that leaves the loopback is aborted and recorded; the notebook runs top to bottom, its
Plotly chart of the peak and both panels (Plotly sparklines and per-metric line charts as wide as
the panel, each metric titled in words with its unit over its rule name; log lines with the search
marked) show, and not one non-loopback request was even attempted. A screenshot of
the whole run lands in ``test-artifacts/telemetry-and-logs.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from labkit import CHARTS_FILL_THE_VIEW, LabServer, OpenNotebook, code_cell_count
from playwright.async_api import expect

NOTEBOOK = "05-telemetry-and-logs.ipynb"
RUN = 240_000  # ms: every cell, the sandbox cluster, the backfill
SHOWN = 30_000  # ms: outputs of cells that ran, reaching the page
CPU = "instance:node_cpu_utilisation:rate5m"
pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_the_telemetry_notebook_charts_and_panels_show_offline(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    async with open_notebook(NOTEBOOK, height=5200, shot="telemetry-and-logs", offline=True) as opened:
        page = opened.page
        await opened.run_all(code_cell_count(lab.root / NOTEBOOK), timeout=RUN)

        chart = page.locator(".jp-OutputArea-output.jp-RenderedPlotly")  # Plotly's chart of the peak
        await expect(chart).to_have_count(1, timeout=SHOWN)
        await expect(chart).to_be_visible()
        telemetry = page.locator(".lnb-panel.lnb-telemetry")
        await expect(telemetry).to_have_count(1)
        view = page.locator(".lnb-telemetry-view")  # the picks above Plotly's sparklines and charts
        await expect(view.locator(".lnb-sparklines .scatterlayer .trace")).to_have_count(3, timeout=SHOWN)
        await expect(view.locator(".lnb-charts .scatterlayer .trace path.js-line").first).to_be_visible()
        per_metric = view.locator(".lnb-charts .cartesianlayer .subplot")  # one chart per metric
        assert await per_metric.count() >= 10
        # A metric reads in words with its unit (picks, chart titles, the last value in percent);
        # the recording-rule name stays on the page as text beside the pick and under each title.
        await expect(telemetry.locator("select.lnb-pick-metric option:checked")).to_have_text(
            "CPU utilisation (%)"
        )
        await expect(telemetry.locator("code.lnb-metric-rule")).to_have_text(CPU)
        titles = view.locator(".lnb-charts .infolayer .annotation-text")
        await expect(titles.first).to_contain_text("CPU utilisation (%)")
        await expect(titles.first).to_contain_text(CPU)
        await expect(view.locator(".lnb-sparklines .annotation-text").first).to_have_text(
            re.compile(r"^game-1: last \d+\.\d%$")
        )
        # The charts take the panel's whole width (the page reports it), not two-thirds of it.
        await page.wait_for_function(CHARTS_FILL_THE_VIEW, arg=await view.element_handle(), timeout=SHOWN)
        logs = page.locator(".lnb-panel.lnb-logs")
        await expect(logs.locator(".lnb-log-line").first).to_be_visible()
        await expect(logs.locator(".lnb-log-line mark").first).to_have_text(
            re.compile("overrun", re.IGNORECASE)
        )
        await opened.expect_no_widget_failures(timeout=SHOWN)
        await page.screenshot(path=str(artifacts / "telemetry-and-logs.png"), full_page=True)
        # The panels themselves, whole (the page shot ends before the log panel).
        await view.screenshot(path=str(artifacts / "telemetry-panel.png"))
        await logs.screenshot(path=str(artifacts / "logs-panel.png"))
    assert opened.remote_requests == []
    assert opened.page_errors == []
    assert opened.widget_errors == []
