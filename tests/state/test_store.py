"""The store: create/unlock, durable generations with a backup, conflicts, locks, password change."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from statekit import OpenStore, Template

from legion_nb.engine.state.filelock import hold_lock
from legion_nb.engine.state.store import SecureStateStore, StateIOError
from legion_nb.errors import (
    LockedError,
    StateBusyError,
    StateConflictError,
    StateCorruptedError,
    StateExistsError,
    StateNotFoundError,
    UsageError,
    WrongPasswordError,
)

SECRETS = [
    b"hetzner-token-7Gq2pXv9Lm",
    b"ovh-application-secret-QwErTy",
    b"tribes-node-frankfurt-01",
    b"-----BEGIN OPENSSH PRIVATE KEY-----",
]


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


async def test_create_makes_a_private_directory_and_file_and_unlock_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.legion"
    store = await SecureStateStore.create(path, "pw", b"first")
    assert store.generation == 1
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()
    again, payload = await SecureStateStore.unlock(path, "pw")
    again.close()
    assert payload == b"first"
    assert files_in(path.parent) == ["state.legion", "state.legion.lock"]


async def test_create_refuses_an_existing_state_or_backup(state_path: Path, tmp_path: Path) -> None:
    before = state_path.read_bytes()
    with pytest.raises(StateExistsError, match="already exists"):
        await SecureStateStore.create(state_path, "pw", b"x")
    assert state_path.read_bytes() == before
    orphan = tmp_path / "orphan" / "state.legion"
    orphan.parent.mkdir()
    orphan.with_name("state.legion.bak").write_bytes(before)
    with pytest.raises(StateExistsError):
        await SecureStateStore.create(orphan, "pw", b"x")
    assert not orphan.exists()


async def test_create_refuses_an_empty_password(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="password is empty"):
        await SecureStateStore.create(tmp_path / "s.legion", "", b"x")
    assert files_in(tmp_path) == []


async def test_unlock_of_nothing_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(StateNotFoundError, match="legion init"):
        await SecureStateStore.unlock(tmp_path / "none.legion", "pw")
    assert files_in(tmp_path) == []


async def test_saves_raise_the_generation_and_keep_the_previous_one_as_backup(
    state_path: Path, open_store: OpenStore, template: Template
) -> None:
    store, payload = open_store(state_path)
    assert payload == b"template"
    for number in range(2, 6):
        await store.save(b"save %d" % number)
        assert store.generation == number
    store.close()
    _, live = open_store(state_path)
    _, backup = open_store(store.backup_path)
    assert (live, backup) == (b"save 5", b"save 4")
    assert files_in(state_path.parent) == ["state.legion", "state.legion.bak", "state.legion.lock"]
    assert stat.S_IMODE(store.backup_path.stat().st_mode) == 0o600


async def test_a_missing_live_file_is_restored_from_its_backup(
    state_path: Path, open_store: OpenStore, caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = open_store(state_path)
    await store.save(b"acknowledged")
    await store.save(b"newest")
    store.close()
    state_path.unlink()  # what a crash inside the no-hard-link rename window leaves behind
    with caplog.at_level(logging.WARNING):
        restored, payload = open_store(state_path)
    assert payload == b"acknowledged"
    assert "restored it from its backup" in caplog.text
    assert state_path.exists()
    await restored.save(b"after recovery")
    restored.close()
    assert open_store(state_path)[1] == b"after recovery"


async def test_a_damaged_live_file_is_reported_not_silently_rolled_back(
    state_path: Path, open_store: OpenStore
) -> None:
    store, _ = open_store(state_path)
    await store.save(b"previous")
    await store.save(b"latest")
    store.close()
    damaged = bytearray(state_path.read_bytes())
    damaged[-1] ^= 1
    state_path.write_bytes(bytes(damaged))
    with pytest.raises(StateCorruptedError) as caught:
        open_store(state_path)
    assert str(store.backup_path) in str(caught.value)
    assert state_path.read_bytes() == bytes(damaged)
    store.backup_path.rename(state_path)  # what the message tells the operator to do
    assert open_store(state_path)[1] == b"previous"


async def test_a_second_store_that_missed_a_save_is_refused(state_path: Path, open_store: OpenStore) -> None:
    first, _ = open_store(state_path)
    second, _ = open_store(state_path)
    await first.save(b"from first")
    with pytest.raises(StateConflictError, match="changed by another process"):
        await second.save(b"from second")
    with pytest.raises(StateConflictError):
        await second.save(b"from second again")
    await first.save(b"first goes on")
    first.close()
    second.close()
    assert open_store(state_path)[1] == b"first goes on"


async def test_racing_stores_are_serialized_one_wins_one_is_refused(
    state_path: Path, open_store: OpenStore
) -> None:
    for _ in range(10):
        left, _ = open_store(state_path)
        right, _ = open_store(state_path)
        outcomes = await asyncio.gather(left.save(b"left"), right.save(b"right"), return_exceptions=True)
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], StateConflictError)
        winner = b"left" if outcomes[0] is None else b"right"
        left.close()
        right.close()
        assert open_store(state_path)[1] == winner


async def test_concurrent_saves_of_one_store_all_land_in_turn(
    state_path: Path, open_store: OpenStore
) -> None:
    store, _ = open_store(state_path)
    await asyncio.gather(*(store.save(b"n%d" % number) for number in range(20)))
    assert store.generation == 21
    store.close()
    assert open_store(state_path)[1].startswith(b"n")


async def test_a_removed_file_is_a_conflict_not_a_silent_recreate(
    state_path: Path, open_store: OpenStore
) -> None:
    store, _ = open_store(state_path)
    state_path.unlink()
    with pytest.raises(StateConflictError, match="was removed"):
        await store.save(b"x")
    assert not state_path.exists()


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from legion_nb.engine.state.filelock import hold_lock
    with hold_lock(Path(sys.argv[1]), timeout=5):
        print("held", flush=True)
        time.sleep(600)
    """
)


async def test_a_lock_held_by_another_process_is_busy_and_its_death_frees_it(
    state_path: Path, template: Template
) -> None:
    store, _ = SecureStateStore._unlock_with(state_path, template.derive, lock_timeout=0.3)
    lock = state_path.with_name("state.legion.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateBusyError, match="another process is writing this state"):
            await store.save(b"blocked")
        assert store.generation == 1
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    await store.save(b"after the holder died")  # the kernel dropped its lock with it
    store.close()
    assert SecureStateStore._unlock_with(state_path, template.derive)[1] == b"after the holder died"


async def test_a_lock_held_in_this_process_blocks_until_released(
    state_path: Path, open_store: OpenStore
) -> None:
    store, _ = open_store(state_path)
    lock = state_path.with_name("state.legion.lock")
    with hold_lock(lock, timeout=1):
        save = asyncio.create_task(store.save(b"waited"))
        await asyncio.sleep(0.05)
        assert not save.done()
    await save
    assert store.generation == 2


async def test_password_change_new_works_old_fails_everywhere(
    state_path: Path, open_store: OpenStore
) -> None:
    store, _ = open_store(state_path)
    await store.save(b"before change")
    old_key = store._data_key
    assert old_key is not None
    old_material = old_key.material
    await store.change_password("correct horse battery staple \u2713", "new password")
    assert old_material == bytearray(32)  # the old data key was wiped, a new one replaced it
    await store.save(b"after change")
    store.close()
    reopened, payload = await SecureStateStore.unlock(state_path, "new password")
    reopened.close()
    assert payload == b"after change"
    with pytest.raises(WrongPasswordError):
        await SecureStateStore.unlock(state_path, "correct horse battery staple \u2713")
    # The backup slot no longer holds a file the old password opens.
    with pytest.raises(WrongPasswordError):
        await SecureStateStore.unlock(store.backup_path, "correct horse battery staple \u2713")


async def test_password_change_with_a_wrong_old_password_changes_nothing(
    state_path: Path, open_store: OpenStore
) -> None:
    store, _ = open_store(state_path)
    before = state_path.read_bytes()
    with pytest.raises(WrongPasswordError):
        await store.change_password("not it", "new password")
    with pytest.raises(UsageError):
        await store.change_password("correct horse battery staple \u2713", "")
    assert state_path.read_bytes() == before
    await store.save(b"still usable")
    store.close()


async def test_close_zeroes_the_key_and_locks_the_store(state_path: Path, open_store: OpenStore) -> None:
    store, _ = open_store(state_path)
    key = store._data_key
    assert key is not None
    material = key.material
    assert any(material)
    store.close()
    assert material == bytearray(32)
    assert store.closed
    store.close()  # idempotent
    with pytest.raises(LockedError, match="unlock it again"):
        await store.save(b"x")
    with pytest.raises(LockedError):
        await store.change_password("a", "b")


async def test_leftovers_of_killed_writers_are_swept_under_the_lock(
    state_path: Path, open_store: OpenStore
) -> None:
    directory = state_path.parent
    (directory / ".state.legion.0123456789abcdef.tmp").write_bytes(b"half a save")
    (directory / "notes.txt").write_text("not ours")
    store, _ = open_store(state_path)
    await store.save(b"x")
    store.close()
    assert files_in(directory) == ["notes.txt", "state.legion", "state.legion.bak", "state.legion.lock"]


async def test_filesystems_without_hard_links_still_get_atomic_saves_and_backups(
    tmp_path: Path, open_store: OpenStore, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store, _ = open_store(state_path)
    await store.save(b"one")
    await store.save(b"two")
    store.close()
    assert open_store(state_path)[1] == b"two"
    assert open_store(store.backup_path)[1] == b"one"
    created = await SecureStateStore.create(tmp_path / "nolinks" / "state.legion", "pw", b"new")
    created.close()
    with pytest.raises(StateExistsError):
        await SecureStateStore.create(tmp_path / "nolinks" / "state.legion", "pw", b"new")


async def test_no_file_beside_the_state_holds_plaintext(tmp_path: Path) -> None:
    path = tmp_path / "state.legion"
    payload = b"{" + b", ".join(b'"%s": 1' % secret for secret in SECRETS) + b"}"
    store = await SecureStateStore.create(path, "pw", payload)
    for number in range(3):
        await store.save(payload + b" %d" % number)
    await store.change_password("pw", "pw2")
    await store.save(payload)
    store.close()
    assert files_in(tmp_path) == ["state.legion", "state.legion.bak", "state.legion.lock"]
    for name in files_in(tmp_path):
        content = (tmp_path / name).read_bytes()
        for secret in [*SECRETS, b"pw2", b"hetzner", b"BEGIN"]:
            assert secret not in content, (name, secret)


def test_the_store_repr_shows_no_key(state_path: Path, open_store: OpenStore) -> None:
    store, _ = open_store(state_path)
    key = store._data_key
    assert key is not None
    text = repr(store)
    assert bytes(key.material).hex() not in text
    assert "generation 1" in text
    store.close()
    assert "closed" in repr(store)


async def test_an_unreadable_state_path_is_a_one_line_io_error(tmp_path: Path) -> None:
    path = tmp_path / "state.legion"
    path.mkdir()  # works even as root, unlike permission bits
    with pytest.raises(StateIOError, match="cannot read") as caught:
        await SecureStateStore.unlock(path, "pw")
    assert "\n" not in str(caught.value)


def test_damage_without_a_backup_does_not_point_at_one(state_path: Path, open_store: OpenStore) -> None:
    damaged = bytearray(state_path.read_bytes())
    damaged[-1] ^= 1
    state_path.write_bytes(bytes(damaged))
    with pytest.raises(StateCorruptedError, match="copy kept elsewhere") as caught:
        open_store(state_path)
    assert ".bak" not in str(caught.value)


RACE_WRITER = Path(__file__).with_name("race_writer.py")


def test_two_processes_writing_one_state_are_serialized_and_lose_no_update(
    state_path: Path, template: Template
) -> None:
    saves = 40
    writers = [
        subprocess.Popen(
            [sys.executable, str(RACE_WRITER), str(state_path), name, str(saves)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    ]
    try:
        for writer in writers:
            assert writer.stdin is not None and writer.stdout is not None
            writer.stdin.write(template.password + "\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "ready"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        outputs = [writer.communicate(timeout=120)[0].split("\n") for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert [writer.returncode for writer in writers] == [0, 0]
    acks = [line.split() for output in outputs for line in output if line.startswith("ack")]
    generations = sorted(int(ack[3]) for ack in acks)
    # Every successful save started from the latest file and moved it on by exactly one generation:
    # no two saves ever wrote the same generation, none was lost, none interleaved.
    assert generations == list(range(2, 2 + 2 * saves))
    store, payload = SecureStateStore._unlock_with(state_path, template.derive)
    store.close()
    last = max(acks, key=lambda ack: int(ack[3]))
    assert payload == f"{last[1]} {last[2]}".encode()
    assert store.generation == 1 + 2 * saves
