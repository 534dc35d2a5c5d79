"""Fixtures for executing the notebooks: the isolated Jupyter environment, set for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbkit import isolated_jupyter_env


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Point this process's Jupyter lookups (nbclient's kernel manager) at an isolated tree."""
    env = isolated_jupyter_env(tmp_path_factory.mktemp("jupyter"))
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The directory a notebook runs in (its kernel's working directory)."""
    return tmp_path
