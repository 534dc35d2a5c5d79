"""Fixtures for the panel tests: a real engine, and recording comms."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm
from widgetkit import RecordingComm

from legion_nb.engine.observe.scheduler import ObservationSettings
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import SessionSettings

PASSWORD = "panel test password"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """A freshly bootstrapped, unlocked engine (one Argon2 derivation)."""
    eng = create_engine(tmp_path / "state.legion")
    await eng.bootstrap(PASSWORD)
    try:
        yield eng
    finally:
        await eng.aclose()


@pytest.fixture
async def quiet_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """An unlocked engine whose observation scheduler does not run: after unlocking it publishes only
    what the test changes, so a test can tell each publication's cause."""
    settings = SessionSettings(observation=ObservationSettings(run=False))
    eng = create_engine(tmp_path / "state.legion", settings)
    await eng.bootstrap(PASSWORD)
    try:
        yield eng
    finally:
        await eng.aclose()


@pytest.fixture
def recorded_comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    """Every comm created while the test runs, through comm's documented replacement hook."""
    comms: list[RecordingComm] = []

    def create(*args: Any, **kwargs: Any) -> BaseComm:
        made = RecordingComm(**kwargs)
        comms.append(made)
        return made

    monkeypatch.setattr(comm, "create_comm", create)
    yield comms
