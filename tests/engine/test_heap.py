"""Freezing the heap is scoped to the sessions that asked: a closed engine leaves the collector as it
found it, a second session keeps its freeze while the first logs out, and a host's own freeze is
never undone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from legion_nb.engine.heap import PROCESS_HEAP, HeapClaims, HeapFreeze
from legion_nb.engine.resources.actor import ResourceSettings
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.session import SessionSettings

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen and no session of this process holding a claim."""
    assert PROCESS_HEAP.holders == 0, "an earlier test left a session unlocked"
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_last_release_unfreezes_and_not_before() -> None:
    claims = HeapClaims()
    first, second = HeapFreeze(claims=claims), HeapFreeze(claims=claims)
    first.settle()
    assert gc.get_freeze_count() > 0
    second.settle()
    second.settle()  # settling again is no second claim
    assert claims.holders == 2
    first.release()
    first.release()  # idempotent: the second session still holds its claim
    assert claims.holders == 1
    assert gc.get_freeze_count() > 0
    second.release()
    assert claims.holders == 0
    assert gc.get_freeze_count() == 0


def test_a_host_freeze_is_left_alone() -> None:
    kept = [object() for _ in range(10)]
    gc.freeze()
    before = gc.get_freeze_count()
    made = [[i] for i in range(1000)]  # tracked objects a session's freeze would move
    session = HeapFreeze(claims=HeapClaims())
    session.settle()
    assert gc.get_freeze_count() == before  # the engine froze nothing of its own
    session.release()
    assert gc.get_freeze_count() == before  # and did not undo the host's freeze
    del kept, made


def test_a_disabled_freeze_never_touches_the_collector() -> None:
    claims = HeapClaims()
    session = HeapFreeze(enabled=False, claims=claims)
    session.settle()
    assert gc.get_freeze_count() == 0 and claims.holders == 0
    session.release()
    assert claims.holders == 0


async def test_a_closed_engine_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    first = create_engine(tmp_path / "a" / "state.legion")
    second = create_engine(tmp_path / "b" / "state.legion")
    async with first, second:
        await first.bootstrap(PASSWORD)
        await second.bootstrap(PASSWORD)
        assert PROCESS_HEAP.holders == 2
        assert gc.get_freeze_count() > 0
        await first.logout()
        assert gc.get_freeze_count() > 0  # the second engine's fleet stays out of full passes
        await second.logout()
        assert PROCESS_HEAP.holders == 0
        assert gc.get_freeze_count() == 0


async def test_an_engine_told_not_to_freeze_leaves_the_collector_alone(tmp_path: Path) -> None:
    settings = SessionSettings(resources=ResourceSettings(freeze_heap=False))
    engine = create_engine(tmp_path / "state.legion", settings)
    async with engine:
        await engine.bootstrap(PASSWORD)
        assert gc.get_freeze_count() == 0 and PROCESS_HEAP.holders == 0
        await engine.logout()
    assert gc.get_freeze_count() == 0
