"""The state path on odd filesystems: special files, huge files, symlinks, vanishing files, stuck temps."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from statekit import OpenStore, Template

from legion_nb.engine.state import store as store_module
from legion_nb.engine.state.crypto import Envelope, SecretKey
from legion_nb.engine.state.store import MAX_STATE_BYTES, SecureStateStore, StateIOError, StateSizeError
from legion_nb.errors import StateError, StateNotFoundError


def never_derive(envelope: Envelope) -> SecretKey:
    raise AssertionError("nothing may be derived for a file refused before reading")


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "state.legion"
    os.mkfifo(path)
    with pytest.raises(StateIOError, match=r"cannot read .* it is a FIFO, not a regular file") as caught:
        SecureStateStore._unlock_with(path, never_derive)
    one_line(caught.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "state.legion"
    path.symlink_to("/dev/zero")
    with pytest.raises(StateIOError, match="character device, not a regular file"):
        SecureStateStore._unlock_with(path, never_derive)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.legion"
    path.mkdir()
    with pytest.raises(StateIOError, match="it is a directory, not a regular file"):
        SecureStateStore._unlock_with(path, never_derive)


def test_a_file_beyond_the_bound_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "state.legion"
    with path.open("wb") as file:  # sparse: no disk is spent
        file.truncate(MAX_STATE_BYTES + 1)
    with pytest.raises(StateSizeError, match=f"more than a state file may \\({MAX_STATE_BYTES}\\)") as caught:
        SecureStateStore._unlock_with(path, never_derive)
    one_line(caught.value)


async def test_a_save_beyond_the_bound_is_refused_before_writing(
    state_path: Path, open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = open_store(state_path)
    before = state_path.read_bytes()
    monkeypatch.setattr(store_module, "MAX_STATE_BYTES", 1024)
    with pytest.raises(StateSizeError, match="refusing to write"):
        await store.save(b"x" * 2048)
    assert state_path.read_bytes() == before
    assert store.generation == 1
    store.close()


async def test_a_symlinked_state_is_followed_and_its_target_written(
    state_path: Path, open_store: OpenStore, tmp_path: Path
) -> None:
    link = tmp_path / "elsewhere" / "state.legion"
    link.parent.mkdir()
    link.symlink_to(state_path)
    store, payload = open_store(link)
    assert payload == b"template"
    await store.save(b"through the link")
    store.close()
    assert link.is_symlink()  # the link stays a link ...
    assert open_store(state_path)[1] == b"through the link"  # ... and the target holds the save
    assert state_path.with_name("state.legion.bak").exists()
    assert sorted(os.listdir(link.parent)) == ["state.legion"]


def test_a_dangling_symlink_beside_a_backup_fails_once_in_one_line(state_path: Path, tmp_path: Path) -> None:
    directory = tmp_path / "dangling"
    directory.mkdir()
    (directory / "state.legion.bak").write_bytes(state_path.read_bytes())
    link = directory / "state.legion"
    link.symlink_to(directory / "gone" / "state.legion")
    derivations = []

    def counting(envelope: Envelope) -> SecretKey:
        derivations.append(envelope)
        raise AssertionError("the target has no backup: nothing to derive")

    with pytest.raises(StateNotFoundError, match=r"a symlink to .*, which does not exist") as caught:
        SecureStateStore._unlock_with(link, counting)
    one_line(caught.value)
    assert derivations == []


def test_backup_restore_is_tried_once_then_one_line(
    state_path: Path, template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live file that keeps appearing to the restore and vanishing to the reader: before the fix
    # unlock and restore called each other until RecursionError, one Argon2id derivation per level.
    state_path.rename(state_path.with_name("state.legion.bak"))
    monkeypatch.setattr(store_module._StateFiles, "install", lambda *_a, **_k: False)
    with pytest.raises(StateError, match="vanished again while its backup was being restored") as caught:
        SecureStateStore._unlock_with(state_path, template.derive)
    one_line(caught.value)


async def test_a_temp_file_that_cannot_be_removed_is_skipped(
    state_path: Path, open_store: OpenStore, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = state_path.parent / ".state.legion.0123456789abcdef.tmp"
    stuck.mkdir()  # unlink() refuses a directory: the same as an entry we may not remove
    (stuck / "inside").write_bytes(b"")
    store, _ = open_store(state_path)
    with caplog.at_level(logging.WARNING):
        await store.save(b"one")
        await store.save(b"two")
    store.close()
    assert open_store(state_path)[1] == b"two"
    assert "cannot remove stale temp file" in caplog.text
