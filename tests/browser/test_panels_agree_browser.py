"""The resources and activity panels agree in a real JupyterLab, and their columns hold still.

One notebook page, written by the test, drives the in-process sandbox with simulated nodes: a
materialize that creates two servers, a reinstall of one node, and a materialize that deletes the
other, with the resources and activity panels displayed before any of it. A sampler in the page
records, every 20 ms when anything changed, the width of every header cell of both panels' tables
and what each panel says about each resource. From those samples the test proves:

* the header cells keep their widths across every redraw, however the values in the rows change;
* while the reinstall runs, the activity panel lists it as a running operation in the same sample
  in which the resources panel shows the node's substage (a deployment phase);
* a server being created reads action ``create`` and one being deleted reads ``delete``: never
  ``-`` or ``unchanged`` while the provider work is under way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from labkit import CLIPPED_TEXT, LabServer, OpenNotebook

NOTEBOOK = "panels-agree.ipynb"
RUN = 300_000  # ms: every cell, including the kernel start, two materializes and a reinstall
UPDATE = 60_000  # ms: a change reaching the page

CELLS = [
    """\
import legion_nb
from legion_nb.widgets import ActivityPanel, ResourcesPanel

engine = await legion_nb.sandbox(
    seed=11, nodes=True, providers=("hetzner",), action_seconds=1.5, boot_seconds=2.5
)
resources = ResourcesPanel(engine)
activity = ActivityPanel(engine)
display(resources, activity)""",
    """\
for name in ("web-1", "web-2"):
    await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
report = await engine.materialize(settle_seconds=120)
assert report.ok, report.errors""",
    """\
result = await engine.node_reinstall("web-2")
print(result.summary)""",
    """\
await engine.plan_remove_server("web-1")
report = await engine.materialize(settle_seconds=120)
assert report.ok, report.errors""",
    """\
# The panels stay on the page (their feeds say "closed"), so the screenshot shows how they ended.
await engine.aclose()
await resources.wait_closed()
await activity.wait_closed()""",
]

# Every 20 ms, if anything changed: the header widths of both panels' tables, the texts the resources
# panel cuts short (labkit.CLIPPED_TEXT), the resources rows and the activity panel's operation rows.
# Kept in the page so no redraw slips between round trips.
SAMPLER = (
    """() => {
    window.lnbSamples = [];
    const clippedOf = """
    + CLIPPED_TEXT
    + """;
    let last = "";
    const widths = (selector) => [...document.querySelectorAll(`${selector} thead th`)]
        .map((th) => th.getBoundingClientRect().width);
    const cell = (tr, i) => tr.children[i]?.textContent.trim() ?? "";
    window.lnbSampler = setInterval(() => {
        const rows = [...document.querySelectorAll('.lnb-resources tbody tr[data-name]')].map((tr) => ({
            name: tr.dataset.name,
            state: tr.querySelector('.lnb-badge.lnb-state')?.dataset.state ?? "",
            action: tr.querySelector('.lnb-badge.lnb-action')?.textContent.trim() ?? "",
            substage: cell(tr, 6),
        }));
        const operations = [...document.querySelectorAll('.lnb-activity .lnb-operations-table tbody tr')]
            .map((tr) => ({ name: tr.dataset.name, operation: cell(tr, 2), substage: cell(tr, 3) }));
        const panel = document.querySelector('.lnb-panel.lnb-resources');
        const sample = {
            clipped: panel ? clippedOf(panel) : [],
            resourceWidths: widths('.lnb-resources table'),
            operationWidths: widths('.lnb-activity .lnb-operations-table'),
            rows,
            operations,
        };
        const key = JSON.stringify(sample);
        if (key !== last) {
            last = key;
            window.lnbSamples.push(sample);
        }
    }, 20);
}"""
)

CREATING = {"creating", "provisioning"}
NO_ACTION = {"", "-", "unchanged"}

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def write_notebook(root: Path) -> int:
    """The test's notebook page in the served root; returns its code cell count."""
    # nbformat ships no type information; the metadata of the shipped notebooks (they name the
    # kernel, so JupyterLab starts it instead of asking which one to use).
    shipped = nbformat.read(root / "02-node-recovery.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    nb = nbformat.v4.new_notebook(metadata=shipped.metadata)  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]  # type: ignore[no-untyped-call]
    nbformat.write(nb, root / NOTEBOOK)  # type: ignore[no-untyped-call]
    return len(CELLS)


def distinct(values: list[list[float]]) -> set[tuple[float, ...]]:
    """The distinct width lists, rounded to a tenth of a pixel (sub-pixel layout noise)."""
    return {tuple(round(w, 1) for w in ws) for ws in values if ws}


async def test_panels_agree_on_a_reinstall_and_keep_their_column_widths(
    lab: LabServer, open_notebook: OpenNotebook, artifacts: Path
) -> None:
    code_cells = write_notebook(lab.root)
    async with open_notebook(NOTEBOOK, height=2400, shot="panels-agree") as opened:
        page = opened.page
        await page.evaluate(SAMPLER)
        await opened.run_all(code_cells, timeout=RUN)
        await opened.expect_no_widget_failures(timeout=UPDATE)
        samples: list[dict[str, Any]] = await page.evaluate("window.lnbSamples")
        await page.screenshot(path=str(artifacts / "panels-agree.png"), full_page=True)

    # The resources table redrew many times with changing values; its header cells never moved.
    resource_widths = [s["resourceWidths"] for s in samples]
    assert sum(1 for ws in resource_widths if ws) >= 10, len(samples)
    assert len(distinct(resource_widths)) == 1, distinct(resource_widths)
    # ... and through every state the rows went through, no header or badge was cut short.
    assert not [s["clipped"] for s in samples if s["clipped"]]
    # The activity panel's operations table comes and goes; whenever it shows, its widths are the same.
    operation_widths = [s["operationWidths"] for s in samples]
    assert any(operation_widths), "the activity panel never listed a running operation"
    assert len(distinct(operation_widths)) == 1, distinct(operation_widths)

    # During the reinstall: the activity panel lists it running while the resources row shows a phase.
    agreeing = [
        (op["substage"], row["substage"])
        for s in samples
        for op in s["operations"]
        if op["name"] == "web-2" and op["operation"] == "reinstall"
        for row in s["rows"]
        if row["name"] == "web-2" and row["substage"] not in ("", "\u2014")
    ]
    assert agreeing, [s["operations"] for s in samples if s["operations"]]

    # A server being created reads "create", one being deleted reads "delete"; never "-"/"unchanged".
    # Creation is what happens before the reinstall (which shows web-2 working again, as unchanged).
    reinstall = next(
        i
        for i, s in enumerate(samples)
        if any(op["name"] == "web-2" and op["operation"] == "reinstall" for op in s["operations"])
    )
    creating = [r for s in samples[:reinstall] for r in s["rows"] if r["state"] in CREATING]
    assert {"web-1", "web-2"} <= {r["name"] for r in creating}, creating  # the cluster firewall may show too
    assert all(r["action"] == "create" for r in creating), creating
    deleting = [r for s in samples for r in s["rows"] if r["state"] == "deleting"]
    assert deleting and all(r["action"] == "delete" for r in deleting), deleting
    assert not [r for r in creating + deleting if r["action"] in NO_ACTION]
    assert opened.page_errors == []
    assert opened.widget_errors == []
