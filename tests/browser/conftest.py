"""Fixtures for the real-browser tests: Debian's Chromium (never a downloaded build) and JupyterLab.

The browser tests are marked ``slow`` and ``browser``; they still run in the normal suite. Without
``/usr/bin/chromium`` they skip on a developer machine but FAIL under ``CI=true``, where
``scripts/setup`` installs it: a CI run must never pass by silently not looking at a browser.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The isolated Jupyter environment (venv kernelspec) lives with the notebook harness; share it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))

from labkit import CHROMIUM, LabServer, chromium_or_skip, start_lab
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
