"""The quickstart in a real JupyterLab: its panels render, and they follow materialize as it runs.

A headless kernel run (tests/notebooks) proves the cells work; only a browser shows what an operator
sees. Every cell of ``notebooks/01-quickstart.ipynb`` runs in JupyterLab through Debian's Chromium,
while a sampler in the page records, every few milliseconds, each code cell's prompt and each row
of the resources panel with its lifecycle state. From those samples the test proves that the panel
redrew WHILE the materialize cell was still running: each server's row went through working
states such as ``creating`` and ``provisioning`` (all ``running`` once the cell was done), and on
the shrink ``web-3`` showed ``deleting``. The sandbox's provider work takes seconds in this
notebook, so the working states last long enough to be seen.

A gate cell is added to the served copy after the first materialize and the DataFrame, so that the
screenshot (``test-artifacts/quickstart.png``) shows the cluster up; the teardown then runs and the
panels must end empty and ``closed``, with no error output anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labkit import CLIPPED_TEXT, LabServer, OpenNotebook, run_all_cells
from playwright.async_api import expect

NOTEBOOK = "01-quickstart.ipynb"
SERVERS = ["web-1", "web-2", "web-3"]
WORKING = {"settling", "creating", "provisioning", "verifying", "applying"}
TRIGGER = "go-teardown"
RUN = 240_000  # ms: the cells up to a point, including the kernel start and one Argon2 unlock
UPDATE = 60_000  # ms: a change reaching the page

# Added to the served copy before "Shrink the cluster": holds the run until the test has looked.
GATE_CELL = f"""\
import asyncio
from pathlib import Path

while not Path({TRIGGER!r}).exists():
    await asyncio.sleep(0.1)"""

# Every 20 ms, if anything changed: the code cells' prompts and the resources panel's (name, state)
# rows. Kept in the page so that no state the panel showed can slip between two test round trips.
SAMPLER = """() => {
    window.lnbSamples = [];
    let last = "";
    window.lnbSampler = setInterval(() => {
        const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')]
            .map((p) => p.textContent.trim());
        const rows = [...document.querySelectorAll('.lnb-resources tbody tr[data-name]')]
            .map((tr) => [tr.dataset.name, tr.querySelector('.lnb-badge.lnb-state')?.dataset.state ?? ""]);
        const key = JSON.stringify([prompts, rows]);
        if (key !== last) {
            last = key;
            window.lnbSamples.push({ prompts, rows });
        }
    }, 20);
}"""

# True once the first n code cells show an execution count ("[3]:"), i.e. have run to their end.
CELLS_RAN = """(n) => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
    const done = (p) => /^\\[\\d+\\]:$/.test(p.textContent.trim());
    return prompts.length >= n && prompts.slice(0, n).every(done);
}"""

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def serve_with_gate(root: Path) -> tuple[int, list[int]]:
    """Write the quickstart plus the gate cell into the served root.

    Returns the gate's position among the code cells and the positions of the materialize cells.
    """
    # nbformat ships no type information
    nb = nbformat.read(root / NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    shrink = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "Shrink" in c.source)
    nb.cells.insert(shrink, nbformat.v4.new_code_cell(GATE_CELL))  # type: ignore[no-untyped-call]
    nbformat.write(nb, root / NOTEBOOK)  # type: ignore[no-untyped-call]
    code = [c for c in nb.cells if c.cell_type == "code"]
    gate = next(i for i, c in enumerate(code) if c.source == GATE_CELL)
    materialize = [i for i, c in enumerate(code) if "await engine.materialize()" in c.source]
    return gate, materialize


def states_while_running(samples: list[dict[str, Any]], cell: int) -> list[dict[str, str]]:
    """The resources panel's rows ({name: state}) in each sample taken while code cell ``cell`` ran.

    Run All marks every queued cell ``[*]`` at once, so a cell runs when it shows ``[*]`` and every
    code cell before it shows its execution count.
    """
    done = re.compile(r"^\[\d+\]:$")
    inside = [
        i
        for i, s in enumerate(samples)
        if len(s["prompts"]) > cell
        and s["prompts"][cell] == "[*]:"
        and all(done.match(p) for p in s["prompts"][:cell])
    ]
    if not inside:
        return []
    # Prompts are drawn from kernel replies that race the panel's comm updates: the cell may already
    # run before the previous prompt shows its count, and its last redraw may land just after its own
    # prompt does. The one sample on each side of the window belongs to the same run.
    first, last = max(inside[0] - 1, 0), min(inside[-1] + 1, len(samples) - 1)
    return [dict(samples[i]["rows"]) for i in range(first, last + 1)]


def changes(states: list[str | None]) -> list[str | None]:
    """``states`` without consecutive repeats: the successive states a row showed."""
    return [state for i, state in enumerate(states) if i == 0 or states[i - 1] != state]


async def test_quickstart_panels_follow_materialize_while_it_runs(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    gate, (create_cell, shrink_cell, teardown_cell) = serve_with_gate(lab.root)
    async with open_notebook(NOTEBOOK, height=2400, shot="quickstart") as opened:
        page = opened.page
        await page.evaluate(SAMPLER)
        await run_all_cells(page)
        await page.wait_for_function(CELLS_RAN, arg=gate, timeout=RUN)  # held at the gate now

        # Every panel rendered its table; nothing is loading, failed to display or wrote stderr.
        resources = page.locator(".lnb-panel.lnb-resources")
        for panel in ("lnb-resources", "lnb-plan-diff", "lnb-activity"):
            await expect(page.locator(f".lnb-panel.{panel}")).to_have_count(1, timeout=UPDATE)
        await expect(resources.locator("table.lnb-table")).to_have_count(1)
        await expect(page.locator(".lnb-plan-diff table.lnb-table")).to_have_count(1)
        await opened.expect_no_widget_failures(timeout=UPDATE)
        for name in SERVERS:
            row = resources.locator(f'tbody tr[data-name="{name}"] .lnb-badge.lnb-state')
            await expect(row).to_have_attribute("data-state", "running", timeout=UPDATE)
        await expect(resources.locator("tbody tr[data-name]")).to_have_count(5)  # 3 servers, zone, firewall
        await expect(resources).to_have_attribute("data-feed", "live")
        # At 1400 px every header, badge, kind and provider reads whole (no "Provid…", "unchan…",
        # no "dns_zone" on two lines).
        assert await resources.evaluate(CLIPPED_TEXT) == []
        # JupyterLab scrolls the notebook inside its own panel: bring the panels to the top first.
        await resources.evaluate("(el) => el.scrollIntoView({block: 'start'})")
        await page.screenshot(path=str(artifacts / "quickstart.png"), full_page=True)

        (lab.root / TRIGGER).write_text("go", encoding="utf-8")
        code_cells = await page.locator(".jp-NotebookPanel .jp-CodeCell").count()
        await page.wait_for_function(CELLS_RAN, arg=code_cells, timeout=RUN)
        await expect(opened.idle).to_have_count(1, timeout=RUN)

        # The teardown left nothing to show; the engine closed, so the panels' feeds say so.
        await expect(resources.locator("tbody tr[data-name]")).to_have_count(0, timeout=UPDATE)
        await expect(resources.locator(".lnb-empty")).to_have_count(1)
        await expect(resources).to_have_attribute("data-feed", "closed", timeout=UPDATE)
        await opened.expect_no_widget_failures(timeout=UPDATE)
        samples: list[dict[str, Any]] = await page.evaluate("window.lnbSamples")
        await resources.evaluate("(el) => el.scrollIntoView({block: 'start'})")
        await page.screenshot(path=str(artifacts / "quickstart-teardown.png"), full_page=True)

    # While the first materialize ran, the panel redrew as the servers went through working states
    # (absent -> creating -> provisioning ..., each row at its own pace); at the gate all were running.
    during = states_while_running(samples, create_cell)
    for name in SERVERS:
        seen = changes([rows.get(name) for rows in during])
        assert WORKING & set(seen) and len(seen) >= 2, f"{name} while materialize ran: {seen}"
    # While the shrink ran, web-3 showed "deleting"; web-1 and web-2 were checked, never rebuilt.
    during = states_while_running(samples, shrink_cell)
    assert any(rows.get("web-3") == "deleting" for rows in during), during
    kept = {state for rows in during for state in (rows.get("web-1"), rows.get("web-2"))}
    assert kept.isdisjoint({"absent", "creating", "provisioning", "deleting"}), kept
    # The teardown deleted the last two while its cell ran.
    during = states_while_running(samples, teardown_cell)
    assert any(rows.get("web-1") == "deleting" for rows in during), during
    assert opened.page_errors == []
    assert opened.widget_errors == []
