"""Fixtures for the state tests: one real state made once per session, copied per test.

Creating a state runs Argon2id (~0.2 s); copying the file and opening it through
``SecureStateStore._unlock_with`` with a key derived once (see ``statekit.OnceDerived``) keeps each
test fast while every byte still goes through the real envelope, store and lock code.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from statekit import PASSWORD, OnceDerived, OpenStore, Template

from legion_nb.engine.state.store import SecureStateStore


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("template") / "state.legion"
    asyncio.run(SecureStateStore.create(path, PASSWORD, b"template")).close()
    return Template(path=path, password=PASSWORD, derive=OnceDerived(PASSWORD))


@pytest.fixture
def state_path(template: Template, tmp_path: Path) -> Path:
    """A fresh copy of the template state (same password, salt and data key) in its own directory."""
    target = tmp_path / "state" / "state.legion"
    target.parent.mkdir(mode=0o700)
    shutil.copyfile(template.path, target)
    target.chmod(0o600)
    return target


@pytest.fixture
def open_store(template: Template) -> OpenStore:
    """Unlock a copy of the template without paying Argon2id again."""

    def open_(path: Path) -> tuple[SecureStateStore, bytes]:
        return SecureStateStore._unlock_with(path, template.derive)

    return open_
