"""Every notebook under ``notebooks/`` runs top to bottom in a real kernel, without an error.

A notebook that rots is worse than none, so each one is executed with nbclient in a ``python3``
kernel of this virtualenv (see :mod:`nbkit`). Notebooks use top-level ``await`` on the kernel's own
loop. A run fails on any error output and on anything written to stderr (a logged exception from a
panel's feed lands there). If ``tests/notebooks/checks/<notebook>.ipy`` exists, its code runs as one
more cell in the same kernel: assertions about what the notebook built.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbkit import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CHECKS_DIR = Path(__file__).parent / "checks"
CELL_TIMEOUT = 180  # seconds for one cell; a hung cell fails the run instead of hanging the suite


def problems_in(nb: Any) -> list[str]:
    """Error outputs and stderr text, one line each, naming the cell."""
    found: list[str] = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index} wrote to stderr: {output.get('text', '').strip()[:500]}")
    return found


def test_there_are_notebooks() -> None:
    assert any(p.name == "00-plan-tour.ipynb" for p in NOTEBOOKS)


async def execute(nb: Any, workdir: Path) -> list[str]:
    """Run every cell of ``nb`` (outputs land in ``nb``) and return its problems."""
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=True,  # collect every error below, with its cell, instead of stopping at the first
        resources={"metadata": {"path": str(workdir)}},
    )
    await client.async_execute()
    return problems_in(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
async def test_notebook_runs_clean(path: Path, jupyter_env: dict[str, str], workdir: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    check = CHECKS_DIR / f"{path.stem}.ipy"
    if check.exists():
        nb.cells.append(nbformat.v4.new_code_cell(check.read_text(encoding="utf-8")))
    assert await execute(nb, workdir) == []
    if check.exists():
        assert "notebook checks passed" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)


async def test_the_harness_catches_errors_and_stderr(jupyter_env: dict[str, str], workdir: Path) -> None:
    """The harness itself: a raising cell and a logged exception both fail a run, and nothing stops
    the cells after them from running (so one run reports every problem)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import sys; print(sys.executable)"),
        nbformat.v4.new_code_cell("raise RuntimeError('broken cell')"),
        nbformat.v4.new_code_cell("import logging; logging.getLogger('x').error('a task failed')"),
    ]
    problems = await execute(nb, workdir)
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable  # the venv's python, not another one
    assert problems == ["cell 1: RuntimeError: broken cell", "cell 2 wrote to stderr: a task failed"]
