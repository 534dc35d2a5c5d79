"""Fixtures for executing the notebooks: the isolated Jupyter environment and a working directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nbkit import patched_jupyter_env


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Point this process's Jupyter lookups (nbclient's kernel manager) at an isolated tree, for the
    notebook tests only: the variables are restored when the module is done."""
    with patched_jupyter_env(tmp_path_factory.mktemp("jupyter")) as env:
        yield env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The directory a notebook runs in (its kernel's working directory)."""
    return tmp_path
