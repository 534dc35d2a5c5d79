"""Fixtures for the daemon tests: a private runtime directory, a state path, a running daemon."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from daemonkit import DoubleEngine, Running, start_daemon


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private XDG_RUNTIME_DIR of this test's own (mkdtemp makes it 0700)."""
    path = Path(tempfile.mkdtemp(prefix="lnb-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.legion"


@pytest.fixture
async def daemon(runtime_dir: Path, state_path: Path) -> AsyncIterator[Running]:
    running = await start_daemon(state_path, DoubleEngine())
    try:
        yield running
    finally:
        if not running.task.done():
            await running.finish()
