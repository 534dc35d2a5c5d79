"""The panels in a real JupyterLab, driven through Debian's Chromium with Playwright.

What a headless kernel run cannot show: that the panels' JavaScript renders their tables in the
page, that no widget is left "Loading widget..." or shows "Error displaying widget", that a panel
displayed in one cell redraws when a later cell changes the plan, and that a change made by a
background task AFTER the last cell finished (the kernel idle) still reaches the page. ipykernel 7
has open reports of background updates stalling while the kernel is idle; this test is the proof
that, on the versions we pin, they do not.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from labkit import CLIPPED_TEXT, MONEY_TEXT, OVERFLOWING_TEXT, LabServer, OpenNotebook
from playwright.async_api import Locator, Page, expect

NOTEBOOK = "00-plan-tour.ipynb"
PLANNED = ["node-1", "node-2", "node-3", "node-4", "example.org"]  # what the tour plans
FIREWALL = "legion-default-hetzner"  # derived from the tour's cluster, with no operator access planned
TRIGGER = "go-late-change"
RUN = 240_000  # ms: every cell, including the kernel start and one Argon2 unlock
UPDATE = 60_000  # ms: a plan change reaching the page

# Appended to the served copy of the tour: a background task that changes the plan once the test
# drops the trigger file, i.e. after every cell has finished and the kernel is idle.
LATE_CELL = f"""\
import asyncio
import re
from pathlib import Path

async def late_change():
    while not Path({TRIGGER!r}).exists():
        await asyncio.sleep(0.1)
    await engine.plan_upsert_server(name="late-1", provider="hetzner")

late = asyncio.get_running_loop().create_task(late_change())"""

# A page function on the plan diff panel: the width in pixels of each of its table's columns.
COLUMN_WIDTHS = """(panel) => [...panel.querySelectorAll('table.lnb-diff-table thead th')].map(
    (th) => th.getBoundingClientRect().width
)"""

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def serve_tour_with_late_change(root: Path) -> int:
    """Write the tour plus the late-change cell into the served root; returns its code cell count."""
    nb = nbformat.read(root / NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(LATE_CELL))
    nbformat.write(nb, root / NOTEBOOK)
    return sum(cell.cell_type == "code" for cell in nb.cells)


def resource_row(panel: Locator, name: str) -> Locator:
    return panel.locator(f'tbody tr[data-name="{name}"]')


def diff_row(page: Page, name: str) -> Locator:
    return page.locator(f'.lnb-plan-diff tr.lnb-resource[data-name="{name}"]')


async def row_names(rows: Locator) -> list[str | None]:
    return [await row.get_attribute("data-name") for row in await rows.all()]


async def agreed_rows(page: Page) -> list[str | None]:
    """The resource names once the resources, diff and activity panels agree on them (each panel
    redraws on its own feed, so one may be a redraw behind the others for a moment)."""
    resources = page.locator(".lnb-resources tbody tr[data-name]")  # resource rows, not warning rows
    diff_rows = page.locator(".lnb-plan-diff tr.lnb-resource")
    total = page.locator(".lnb-activity .lnb-total")
    for _ in range(UPDATE // 100):
        names = await row_names(resources)
        if await row_names(diff_rows) == names and await total.inner_text() == f"{len(names)} resources":
            return names
        await page.wait_for_timeout(100)
    raise AssertionError("the resources, plan diff and activity panels never agreed on the resources")


async def _fields_under(page: Page, name: str) -> list[str | None]:
    """The fields the fold row of resource ``name`` holds (the rows after it, up to the next resource)."""
    return await page.evaluate(
        """(name) => {
            const fold = document.querySelector(`.lnb-plan-diff tr.lnb-fold[data-name="${name}"]`);
            const out = [];
            let row = fold.nextElementSibling;
            while (row && row.classList.contains("lnb-field")) {
                out.push(row.dataset.field);
                row = row.nextElementSibling;
            }
            return out;
        }""",
        name,
    )


async def prompts(page: Page) -> list[str]:
    texts = await page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    return [t.strip() for t in texts]


async def test_panels_render_and_keep_updating_between_cells_and_while_idle(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    code_cells = serve_tour_with_late_change(lab.root)
    async with open_notebook(NOTEBOOK, height=3600, shot="browser-panels") as opened:
        page = opened.page
        await opened.run_all(code_cells, timeout=RUN)

        # Every panel rendered its table; no widget is still loading or failed to display.
        resources = page.locator(".lnb-panel.lnb-resources")
        await expect(resources).to_have_count(1, timeout=UPDATE)
        await expect(page.locator(".lnb-panel.lnb-plan-diff")).to_have_count(1)
        await expect(page.locator(".lnb-panel.lnb-activity")).to_have_count(1)
        await expect(page.get_by_text("Loading widget")).to_have_count(0, timeout=UPDATE)
        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)

        # The resources and diff panels were displayed before node-4 was planned: they redrew.
        for name in PLANNED:
            await expect(resource_row(resources, name)).to_have_count(1, timeout=UPDATE)
            await expect(diff_row(page, name)).to_have_count(1, timeout=UPDATE)
        shown = await agreed_rows(page)  # all three panels show the same resources

        # The plan diff's columns have fixed widths: they stay put as rows unfold and resources
        # arrive (measured again below), and every header, badge and kind reads whole in the panel.
        diff = page.locator(".lnb-panel.lnb-plan-diff")
        widths = await diff.evaluate(COLUMN_WIDTHS)
        assert await diff.evaluate(CLIPPED_TEXT) == []
        assert await diff.evaluate(OVERFLOWING_TEXT) == []

        # The plan diff leads with what changes; unchanged fields fold per resource until clicked.
        fold = page.locator('.lnb-plan-diff tr.lnb-fold[data-name="node-1"]')
        await expect(fold).to_have_count(1)
        folded = page.locator(".lnb-plan-diff tr.lnb-field.lnb-folded")
        hidden = await folded.count()
        assert (
            hidden > 0 and await page.locator(".lnb-plan-diff tr.lnb-field.lnb-folded:visible").count() == 0
        )
        await fold.click()
        await expect(folded).to_have_count(hidden - len(await _fields_under(page, "node-1")))
        assert await diff.evaluate(COLUMN_WIDTHS) == widths
        await fold.click()
        await expect(folded).to_have_count(hidden)
        # No operator access planned: the derived firewall shows its warning as a marked row of
        # its own under the resource, in words, in both panels (not a tooltip, not in the note).
        for panel in (resources, page.locator(".lnb-panel.lnb-plan-diff")):
            warning = panel.locator(f'tr.lnb-warning-row[data-warning-for="{FIREWALL}"] .lnb-warning')
            await expect(warning).to_have_count(1, timeout=UPDATE)
            await expect(warning).to_be_visible()
            await expect(warning).to_have_attribute("data-code", "open_access")
            await expect(warning).to_contain_text("\u26a0 warning")
            await expect(warning).to_contain_text("open to anywhere")
            await expect(warning).to_contain_text("legion plan access set")
        note = resource_row(resources, FIREWALL).locator("td").last
        await expect(note).to_have_text("derived from cluster default")
        assert await resources.evaluate(CLIPPED_TEXT) == []  # headers, badges, kinds read whole
        assert await resources.evaluate(OVERFLOWING_TEXT) == []  # within the panel's right edge
        money = await page.locator(".lnb-plan-diff .lnb-cost-line td.lnb-money").all_inner_texts()
        assert len(money) == 3 and all(re.fullmatch(MONEY_TEXT, text) for text in money), money
        await resources.screenshot(path=str(artifacts / "browser-panels-warning.png"))
        await page.locator(".lnb-panel.lnb-plan-diff").screenshot(
            path=str(artifacts / "browser-plan-diff-warning.png")
        )
        for badge in await resources.locator("tbody .lnb-badge.lnb-state").all():
            assert (await badge.inner_text()).strip() not in ("", "-")  # every row has a lifecycle state
        await expect(resources).to_have_attribute("data-feed", "live")

        # Now a change from a background task while the kernel is idle, with no cell running.
        before = await prompts(page)
        await expect(opened.idle).to_have_count(1)
        (lab.root / TRIGGER).write_text("go", encoding="utf-8")
        await expect(resource_row(resources, "late-1")).to_have_count(1, timeout=UPDATE)
        await expect(diff_row(page, "late-1")).to_have_count(1, timeout=UPDATE)
        assert set(await agreed_rows(page)) == {*shown, "late-1"}
        assert await diff.evaluate(COLUMN_WIDTHS) == widths  # the new resource moved no column
        assert await prompts(page) == before  # no cell ran: the update came from the background
        await expect(opened.idle).to_have_count(1)

        await page.screenshot(path=str(artifacts / "browser-panels.png"), full_page=True)
    assert opened.page_errors == []
    assert opened.widget_errors == []
