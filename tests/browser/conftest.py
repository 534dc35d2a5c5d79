"""Fixtures for the real-browser tests: Debian's Chromium (never a downloaded build) and JupyterLab.

The browser tests are marked ``slow`` and ``browser``; they still run in the normal suite. Without
``/usr/bin/chromium`` they skip on a developer machine but FAIL under ``CI=true``, where
``scripts/setup`` installs it: a CI run must never pass by silently not looking at a browser.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

# The isolated Jupyter environment (venv kernelspec) lives with the notebook harness; share it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))

from labkit import CHROMIUM, LabServer, NotebookPage, OpenNotebook, chromium_or_skip, notebook_page, start_lab
from nbkit import NOTEBOOKS_DIR

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def chromium() -> Path:
    return chromium_or_skip(CHROMIUM)


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory JupyterLab serves: a copy of the notebooks under test."""
    root = tmp_path_factory.mktemp("lab-root")
    for notebook in NOTEBOOKS_DIR.glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    return root


@pytest.fixture(scope="module")
def lab(chromium: Path, lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = start_lab(lab_root, tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def open_notebook(lab: LabServer, chromium: Path, artifacts: Path) -> OpenNotebook:
    """``async with open_notebook(NOTEBOOK, height=H, shot="name") as opened``: the notebook open in
    this module's JupyterLab through Chromium, its kernel idle (:func:`labkit.notebook_page`), in a
    page ``width`` x ``height`` pixels; a failing body leaves ``test-artifacts/<shot>-failure.png``.
    ``offline=True`` aborts and records every request that leaves the loopback."""

    def open_(
        notebook: str, *, height: int, shot: str, width: int = 1400, offline: bool = False
    ) -> AbstractAsyncContextManager[NotebookPage]:
        return notebook_page(
            lab,
            chromium,
            notebook,
            viewport={"width": width, "height": height},
            failure_shot=artifacts / f"{shot}-failure.png",
            offline=offline,
        )

    return open_
