from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from legion_nb.engine.runtime import Engine, create_engine

PASSWORD = "correct horse battery staple"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "ops" / "state.legion"


@pytest.fixture
async def engine(state_path: Path) -> AsyncIterator[Engine]:
    """A freshly bootstrapped, unlocked engine (one Argon2 derivation)."""
    eng = create_engine(state_path)
    await eng.bootstrap(PASSWORD)
    try:
        yield eng
    finally:
        await eng.aclose()
