"""The persistence supervisor: serialized, coalesced, durable mutations and ordered listeners."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from statekit import OpenStore

from legion_nb.engine.state.filelock import hold_lock
from legion_nb.engine.state.persistence import PersistenceSupervisor, StateChange
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.errors import LockedError, StateConflictError

State = tuple[str, ...]


def encode(state: State) -> bytes:
    return json.dumps(list(state)).encode()


def append(item: str) -> Callable[[State], tuple[State, int]]:
    """A pure mutation: add ``item``, return the position it landed at."""

    def fn(state: State) -> tuple[State, int]:
        return (*state, item), len(state)

    return fn


def fail(state: State) -> tuple[State, int]:
    raise ValueError("this mutation is refused")


@pytest.fixture
async def supervisor(state_path: Path, open_store: OpenStore) -> AsyncIterator[PersistenceSupervisor[State]]:
    store, _ = open_store(state_path)
    supervisor = PersistenceSupervisor[State](store, (), encode)
    yield supervisor
    await supervisor.aclose()


def on_disk(path: Path, open_store: OpenStore) -> State:
    store, payload = open_store(path)
    store.close()
    return tuple(json.loads(payload))


async def test_a_mutation_is_durable_when_it_returns(
    supervisor: PersistenceSupervisor[State], state_path: Path, open_store: OpenStore
) -> None:
    assert (supervisor.state, supervisor.revision) == ((), 0)
    position = await supervisor.mutate(append("alpha"), reason="plan alpha")
    assert position == 0
    assert (supervisor.state, supervisor.revision) == (("alpha",), 1)
    assert on_disk(state_path, open_store) == ("alpha",)


async def test_concurrent_mutations_coalesce_into_few_writes_in_call_order(
    supervisor: PersistenceSupervisor[State], state_path: Path, open_store: OpenStore
) -> None:
    first_generation = supervisor.store.generation
    names = [f"server-{number:03d}" for number in range(300)]
    positions = await asyncio.gather(*(supervisor.mutate(append(name), reason=name) for name in names))
    assert positions == list(range(300))
    assert supervisor.state == tuple(names)
    writes = supervisor.store.generation - first_generation
    assert writes == supervisor.revision
    assert writes <= 3  # the first alone, then everything queued behind it (at most one more batch)
    assert on_disk(state_path, open_store) == tuple(names)


async def test_mutations_queued_during_a_write_wait_for_their_own_durable_write(
    supervisor: PersistenceSupervisor[State], state_path: Path
) -> None:
    lock = state_path.with_name("state.legion.lock")
    released = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with hold_lock(lock, timeout=1):
            held.set()
            released.wait(5)

    holder = asyncio.create_task(asyncio.to_thread(hold))
    await asyncio.to_thread(held.wait, 5)
    first = asyncio.create_task(supervisor.mutate(append("a"), reason="a"))
    await asyncio.sleep(0.05)  # the write of "a" is now waiting for the lock
    rest = [asyncio.create_task(supervisor.mutate(append(name), reason=name)) for name in "bcd"]
    await asyncio.sleep(0.05)
    assert supervisor.state == ()  # readers never see a state that is not on disk
    assert not first.done()
    assert not any(task.done() for task in rest)
    released.set()
    await holder
    assert await first == 0
    assert await asyncio.gather(*rest) == [1, 2, 3]
    assert supervisor.revision == 2  # "a" alone, then b, c and d in one write


async def test_a_failing_mutation_changes_nothing_and_others_go_on(
    supervisor: PersistenceSupervisor[State], state_path: Path, open_store: OpenStore
) -> None:
    outcomes = await asyncio.gather(
        supervisor.mutate(append("a"), reason="a"),
        supervisor.mutate(fail, reason="refused"),
        supervisor.mutate(append("b"), reason="b"),
        return_exceptions=True,
    )
    assert outcomes[0] == 0
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 1
    assert supervisor.state == ("a", "b")
    with pytest.raises(ValueError, match="refused"):
        await supervisor.mutate(fail, reason="alone")
    assert supervisor.state == ("a", "b")
    assert on_disk(state_path, open_store) == ("a", "b")


async def test_a_failing_write_rejects_its_whole_batch_and_keeps_the_durable_state(
    supervisor: PersistenceSupervisor[State], state_path: Path, open_store: OpenStore
) -> None:
    await supervisor.mutate(append("kept"), reason="kept")
    revision = supervisor.revision
    intruder, _ = open_store(state_path)  # another writer changes the file behind our back
    await intruder.save(encode(("intruder",)))
    intruder.close()
    outcomes = await asyncio.gather(
        *(supervisor.mutate(append(name), reason=name) for name in "xyz"), return_exceptions=True
    )
    assert all(isinstance(outcome, StateConflictError) for outcome in outcomes)
    assert supervisor.state == ("kept",)
    assert supervisor.revision == revision
    assert on_disk(state_path, open_store) == ("intruder",)


async def test_an_encoding_failure_is_a_failed_write(state_path: Path, open_store: OpenStore) -> None:
    store, _ = open_store(state_path)

    def picky(state: State) -> bytes:
        if "unencodable" in state:
            raise TypeError("cannot encode this")
        return encode(state)

    supervisor = PersistenceSupervisor[State](store, (), picky)
    with pytest.raises(TypeError):
        await supervisor.mutate(append("unencodable"), reason="bad")
    assert supervisor.state == ()
    assert await supervisor.mutate(append("fine"), reason="good") == 0
    await supervisor.aclose()


async def test_listeners_see_each_commit_in_order_and_a_broken_one_is_logged(
    supervisor: PersistenceSupervisor[State], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[StateChange[State]] = []
    late: list[int] = []

    def broken(change: StateChange[State]) -> None:
        raise RuntimeError("listener bug")

    supervisor.subscribe(broken)
    unsubscribe = supervisor.subscribe(seen.append)
    supervisor.subscribe(lambda change: late.append(change.revision))
    with caplog.at_level(logging.ERROR):
        await supervisor.mutate(append("a"), reason="first")
        await asyncio.gather(
            supervisor.mutate(append("b"), reason="second"), supervisor.mutate(append("c"), reason="third")
        )
    assert [change.revision for change in seen] == [1, 2]
    assert seen[0].before == () and seen[0].after == ("a",)
    assert seen[1].before == ("a",) and seen[1].after == ("a", "b", "c")
    assert seen[1].reasons == ("second", "third")
    assert late == [1, 2]
    assert caplog.text.count("state listener") == 2
    assert "listener bug" in caplog.text
    unsubscribe()
    unsubscribe()  # twice is harmless
    await supervisor.mutate(append("d"), reason="fourth")
    assert len(seen) == 2
    assert late == [1, 2, 3]


async def test_a_cancelled_caller_withdraws_a_mutation_not_yet_taken(
    supervisor: PersistenceSupervisor[State],
) -> None:
    first = asyncio.create_task(supervisor.mutate(append("a"), reason="a"))
    await asyncio.sleep(0)  # the drain task has taken "a" and is writing it
    withdrawn = asyncio.create_task(supervisor.mutate(append("withdrawn"), reason="w"))
    kept = asyncio.create_task(supervisor.mutate(append("b"), reason="b"))
    await asyncio.sleep(0)
    withdrawn.cancel()
    assert await first == 0
    assert await kept == 1
    assert supervisor.state == ("a", "b")


async def test_change_password_runs_between_writes(
    supervisor: PersistenceSupervisor[State], state_path: Path
) -> None:
    writes = [asyncio.create_task(supervisor.mutate(append(name), reason=name)) for name in "abc"]
    await supervisor.change_password("correct horse battery staple \u2713", "rotated")
    await supervisor.mutate(append("d"), reason="d")
    await asyncio.gather(*writes)
    store, payload = await SecureStateStore.unlock(state_path, "rotated")
    store.close()
    assert tuple(json.loads(payload)) == ("a", "b", "c", "d")


async def test_aclose_finishes_queued_writes_then_locks(state_path: Path, open_store: OpenStore) -> None:
    store, _ = open_store(state_path)
    supervisor = PersistenceSupervisor[State](store, (), encode)
    pending = [asyncio.create_task(supervisor.mutate(append(name), reason=name)) for name in "abcde"]
    await asyncio.sleep(0)
    await supervisor.aclose()
    assert [task.result() for task in pending] == [0, 1, 2, 3, 4]
    assert store.closed
    with pytest.raises(LockedError):
        await supervisor.mutate(append("late"), reason="late")
    with pytest.raises(LockedError):
        await supervisor.change_password("a", "b")
    assert on_disk(state_path, open_store) == ("a", "b", "c", "d", "e")
    await supervisor.aclose()  # idempotent


async def test_a_cancelled_drain_cancels_its_callers_and_the_next_mutation_starts_afresh(
    supervisor: PersistenceSupervisor[State],
) -> None:
    first = asyncio.create_task(supervisor.mutate(append("a"), reason="a"))
    await asyncio.sleep(0)
    drainer = supervisor._drainer
    assert drainer is not None
    queued = asyncio.create_task(supervisor.mutate(append("b"), reason="b"))
    await asyncio.sleep(0)  # the drain task is encoding "a"; "b" waits in the queue
    drainer.cancel()  # e.g. the event loop shutting down
    for caller in (first, queued):
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert (supervisor.state, supervisor.revision) == ((), 0)
    assert await supervisor.mutate(append("c"), reason="c") == 0
    assert supervisor.state == ("c",)
