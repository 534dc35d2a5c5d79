"""The supervisor as the engine runs it: started at unlock through ``legion_nb.sandbox()``, tracing
into the log directory beside the state when LEGION_TRACE_ACTORS=1, stopped at logout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import legion_nb
from legion_nb.engine.paths import log_dir_for
from legion_nb.engine.resources.tracing import TRACE_ENV
from legion_nb.errors import LockedError


async def test_the_engine_starts_traces_and_stops_the_actors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRACE_ENV, "1")
    engine = await legion_nb.sandbox(seed=3, providers=("hetzner",), state_dir=tmp_path / "state")
    try:
        await engine.plan_upsert_server(name="web-1", provider="hetzner")
        report = await engine.materialize(yes=True)
        assert report.ok, report.summary
        resources = engine.core.resources
        assert {s.key.identity for s in resources.snapshots()} >= {"web-1"}
        await engine.logout()
        assert resources.snapshots() == []
        with pytest.raises(LockedError):
            await resources.sync_wave()
    finally:
        await engine.aclose()

    trace = log_dir_for(engine.state_path) / "actors.jsonl"
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    events = {(r["actor"], r["event"], r["target"]) for r in lines}
    assert ("server:web-1", "done.invoke.provisioning", "running") in events
    assert ("server:web-1", "stop", "stopped") in events
