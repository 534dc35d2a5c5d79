"""Several writers of one state: saves that rebase on another process's save, the daemon's lifetime
claim of the writer lock, and lock errors that name the holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from statekit import OpenStore

from legion_nb.engine.state.filelock import StateServedError
from legion_nb.engine.state.persistence import PersistenceSupervisor, StateChange
from legion_nb.engine.state.store import claim_writer
from legion_nb.errors import StateBusyError, StateConflictError, StateNotFoundError

State = tuple[str, ...]


def encode(state: State) -> bytes:
    return json.dumps(list(state)).encode()


def decode(payload: bytes) -> State:
    return tuple(json.loads(payload)) if payload.startswith(b"[") else ()


Holder = Callable[[str], "subprocess.Popen[str]"]


def append(item: str) -> Callable[[State], tuple[State, int]]:
    def fn(state: State) -> tuple[State, int]:
        return (*state, item), len(state)

    return fn


async def test_a_save_with_rebase_lands_on_top_of_another_save(
    state_path: Path, open_store: OpenStore
) -> None:
    first, _ = open_store(state_path)
    second, _ = open_store(state_path)
    await first.save(b"a")
    with pytest.raises(StateConflictError):
        await second.save(b"b")  # without rebase: refused, as before
    await second.save(b"b", rebase=lambda latest: latest + b"+b")
    assert second.generation == 3
    await first.save(b"c", rebase=lambda latest: latest + b"+c")
    first.close()
    second.close()
    assert open_store(state_path)[1] == b"a+b+c"


async def test_rebase_never_crosses_a_password_change(state_path: Path, open_store: OpenStore) -> None:
    first, _ = open_store(state_path)
    second, _ = open_store(state_path)
    await first.change_password("correct horse battery staple \u2713", "another password")
    with pytest.raises(StateConflictError, match="re-encrypted under another password"):
        await second.save(b"b", rebase=lambda latest: latest + b"+b")
    first.close()
    second.close()


async def test_two_supervisors_both_land_their_changes(state_path: Path, open_store: OpenStore) -> None:
    # Before: the second process's every later write failed with StateConflictError forever.
    left = PersistenceSupervisor[State](open_store(state_path)[0], (), encode, decode)
    right = PersistenceSupervisor[State](open_store(state_path)[0], (), encode, decode)
    changes: list[StateChange[State]] = []
    right.subscribe(changes.append)
    assert await left.mutate(append("from left"), reason="left") == 0
    assert await right.mutate(append("from right"), reason="right") == 1  # applied on top of left's
    assert right.state == ("from left", "from right")
    assert (changes[0].before, changes[0].after) == ((), ("from left", "from right"))
    await left.mutate(append("left again"), reason="left")
    await left.aclose()
    await right.aclose()
    store, payload = open_store(state_path)
    store.close()
    assert decode(payload) == ("from left", "from right", "left again")


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from legion_nb.engine.state.filelock import hold_lock
    from legion_nb.engine.state.store import claim_writer
    if sys.argv[2] == "daemon":
        claim = claim_writer(Path(sys.argv[1]), timeout=5)
        print("held", flush=True)
    else:
        with hold_lock(Path(sys.argv[1] + ".lock"), timeout=5):
            print("held", flush=True)
            time.sleep(600)
    time.sleep(600)
    """
)


@pytest.fixture
def holder(state_path: Path) -> Iterator[Holder]:
    children: list[subprocess.Popen[str]] = []

    def start(role: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state_path), role], stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        return child

    yield start
    for child in children:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


async def test_a_busy_lock_names_the_holders_pid(
    state_path: Path, open_store: OpenStore, holder: Holder
) -> None:
    store, _ = open_store(state_path)
    store._lock_timeout = 0.2
    child = holder("writer")
    with pytest.raises(
        StateBusyError, match=f"another process is writing this state \\(pid {child.pid};"
    ) as caught:
        await store.save(b"blocked")
    assert "\n" not in str(caught.value)
    store.close()


async def test_a_daemons_claim_refuses_other_writers_at_once(
    state_path: Path, open_store: OpenStore, holder: Holder
) -> None:
    store, _ = open_store(state_path)
    store._lock_timeout = 3600  # never waited for: a daemon keeps the lock for its whole life
    child = holder("daemon")
    with pytest.raises(StateServedError, match=f"daemon \\(pid {child.pid}\\) serves this state") as caught:
        await store.save(b"behind the daemon's back", rebase=lambda latest: latest)
    assert "LEGION_DAEMON_TOKEN" in str(caught.value) and "\n" not in str(caught.value)
    assert store.generation == 1
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    await store.save(b"after the daemon died")  # the kernel dropped its claim with it
    store.close()


async def test_the_claiming_process_still_writes_and_releases(
    state_path: Path, open_store: OpenStore
) -> None:
    claim = claim_writer(state_path, timeout=1)
    store, _ = open_store(state_path)
    await store.save(b"one")
    await store.save(b"two")
    claim.release()
    claim.release()  # idempotent
    store.close()
    other, _ = open_store(state_path)
    await other.save(b"three")  # a released claim leaves the lock free for anyone
    other.close()
    assert open_store(state_path)[1] == b"three"


def test_claiming_a_state_that_does_not_exist_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(StateNotFoundError, match="create one with `legion init`"):
        claim_writer(tmp_path / "nowhere" / "state.legion", timeout=1)


RAW_FLOCK = textwrap.dedent(
    """
    import fcntl, sys, time
    handle = open(sys.argv[1], "r+b")
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
async def test_a_dead_daemons_record_is_not_taken_for_a_serving_daemon(
    state_path: Path, open_store: OpenStore
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    lock = state_path.with_name("state.legion.lock")
    lock.write_text(f"{int(gone.stdout)} daemon\n")  # what a killed daemon leaves behind
    child = subprocess.Popen([sys.executable, "-c", RAW_FLOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        store, _ = open_store(state_path)
        store._lock_timeout = 0.2
        with pytest.raises(StateBusyError) as caught:
            await store.save(b"x")
        assert not isinstance(caught.value, StateServedError)
        store.close()
    finally:
        child.kill()
        child.wait()
