"""Status, diff and the snapshot count the same actions, and nothing at the provider is called gone.

Random plan / materialize / refresh sequences run against one sandbox (an emulated Hetzner over
real HTTP). After every step the three views of the state must agree action for action (the
cluster's derived firewall included), and no tracked resource the provider still holds may be
reported "gone": a resource created after the last refresh was not there to be seen by it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from e2ekit import hetzner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legion_nb
from legion_nb.engine.runtime import Engine
from legion_nb.sandbox_engine import sandbox_cloud

pytestmark = pytest.mark.slow

NAMES = ("web-1", "web-2", "web-3")
STEPS = st.one_of(
    st.tuples(st.just("plan"), st.sampled_from(NAMES)),
    st.tuples(st.just("unplan"), st.sampled_from(NAMES)),
    st.tuples(st.just("materialize"), st.just("")),
    st.tuples(st.just("refresh"), st.just("")),
)


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[asyncio.AbstractEventLoop, Engine]]:
    loop = asyncio.new_event_loop()
    engine = loop.run_until_complete(legion_nb.sandbox(action_seconds=0.0, boot_seconds=0.0))
    yield loop, engine
    loop.run_until_complete(engine.aclose())
    loop.close()


async def _step(engine: Engine, kind: str, name: str) -> None:
    if kind == "plan":
        await engine.plan_upsert_server(name=name, provider="hetzner")
    elif kind == "unplan":
        if name in {s for c in engine.state.scheme.clusters.values() for s in c.servers}:
            await engine.plan_remove_server(name)
    elif kind == "materialize":
        await engine.materialize(yes=True)
    else:
        await engine.refresh()


async def _check(engine: Engine, history: list[tuple[str, str]]) -> None:
    diff = await engine.diff()
    status = await engine.status()
    snapshot = await engine.snapshot()
    counts = diff.counts()
    assert status["actions"] == counts, history
    assert dict(Counter(str(r["action"]) for r in snapshot["rows"])) == counts, history
    assert sorted((r["kind"], r["name"]) for r in snapshot["rows"]) == sorted(
        (r.kind, r.name) for r in diff.resources
    ), history
    at_provider = {str(s.id) for s in hetzner(sandbox_cloud(engine)).servers.values()}
    tracked = engine.state.tracked.servers
    for row in diff.resources:
        track = tracked.get(row.name) if row.kind == "server" else None
        if track is not None and track.provider_id in at_provider:
            assert "gone" not in row.note, (row, track.created, history)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEPS, min_size=1, max_size=5))
def test_status_diff_and_snapshot_agree_and_nothing_existing_is_gone(
    world: tuple[asyncio.AbstractEventLoop, Engine], steps: list[tuple[str, str]]
) -> None:
    loop, engine = world

    async def run() -> None:
        history: list[tuple[str, str]] = []
        for kind, name in steps:
            await _step(engine, kind, name)
            history.append((kind, name))
            await _check(engine, history)

    loop.run_until_complete(run())
