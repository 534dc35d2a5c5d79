"""Telemetry and logs from the shell, on a sandbox cluster of deployed nodes served by a daemon.

After ``legion observe --once``, ``legion --json telemetry --rollup 1m`` has rows for every node and
every baseline metric; a word written on a node with ``legion terminal NODE`` (``logger WORD`` piped
to it) is found by ``legion --json logs --grep WORD`` after one more log-collection pass (one
log-poll interval). The CLI runs as real subprocesses reaching the daemon, which serves an
in-process sandbox engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from daemonkit import TOKEN, start_daemon

import legion_nb
from legion_nb.engine.observe.metrics import BASELINE
from legion_nb.engine.observe.scheduler import ObservationSettings
from legion_nb.engine.runtime import Engine

pytestmark = pytest.mark.slow

NODES = ("ms-1", "ms-2", "ms-3")


async def legion(runtime_dir: Path, state: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    env.update(
        XDG_RUNTIME_DIR=str(runtime_dir), LEGION_DAEMON_TOKEN=TOKEN, PYTHONPATH=os.pathsep.join(sys.path)
    )
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "legion_nb", "--state", str(state), *args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate(stdin.encode())
    return proc.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def served_cluster(seed: int, observation: ObservationSettings) -> AsyncIterator[Engine]:
    """A sandbox engine whose NODES are materialized (deployed, in one cluster), served by a daemon."""
    engine = await legion_nb.sandbox(
        seed=seed,
        nodes=True,
        providers=("hetzner",),
        action_seconds=0.02,
        boot_seconds=0.02,
        observation=observation,
    )
    try:
        for name in NODES:
            await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
        report = await engine.materialize()
        assert report.ok, report.summary
        running = await start_daemon(engine.state_path, engine)
        try:
            yield engine
        finally:
            await running.finish()
    finally:
        await engine.aclose()


async def test_observe_once_then_telemetry_rows_for_every_node_and_a_logged_word_found(
    runtime_dir: Path,
) -> None:
    async with served_cluster(31, ObservationSettings(run=False)) as engine:
        state = engine.state_path
        code, out, err = await legion(runtime_dir, state, "--json", "observe", "--once")
        assert code == 0, err
        assert all(r["ok"] for r in json.loads(out).values()), out

        code, out, err = await legion(runtime_dir, state, "--json", "telemetry", "--rollup", "1m")
        assert code == 0, err
        frame = pd.DataFrame(json.loads(out))
        assert set(frame["node"]) == set(NODES)
        for node in NODES:
            metrics = set(frame.loc[frame["node"] == node, "metric"])
            assert {spec.name for spec in BASELINE} <= metrics, (node, metrics)
        assert frame.columns[0] == "time" and (frame["count"] > 0).all()

        word = f"needle{secrets.token_hex(6)}"
        code, out, err = await legion(runtime_dir, state, "terminal", "ms-2", stdin=f"logger -t ops {word}\n")
        assert code == 0, err

        code, out, err = await legion(runtime_dir, state, "--json", "observe", "--once", "--only", "logs")
        assert code == 0, err  # one log-collection pass: one log-poll interval
        code, out, err = await legion(runtime_dir, state, "--json", "logs", "--grep", word)
        assert code == 0, err
        (row,) = json.loads(out)
        assert (row["node"], row["source"]) == ("ms-2", "ops") and word in row["text"]


LOG_POLL = 2.0
"""The logs concern's interval in the scheduled test: short, so a few passes fit in a test."""


def _logs_record(section: Any) -> dict[str, Any]:
    record: dict[str, Any] = next(c for c in section["concerns"] if c["concern"] == "logs")
    return record


async def test_a_word_logged_on_a_node_is_found_by_the_first_scheduled_log_pass_begun_after_it(
    runtime_dir: Path,
) -> None:
    """ "Within one log-poll interval", shown on the data rather than the clock.

    The daemon's engine runs its scheduler (``ObservationSettings(run=True)``, the logs concern every
    ``LOG_POLL`` seconds); nobody calls ``observe --once``. Right after ``legion terminal ms-2`` ran
    ``logger -t ops WORD``, the logs concern's record says ``runs`` passes have ended and whether one
    is under way: those began before the write. The first pass begun after the write is therefore
    number ``runs + running + 1``, and it begins at most one interval after the pass before it ended.
    The test then polls - each time reading the concern's record first, then ``legion --json logs
    --grep WORD`` - and holds that whenever the word is still missing, that pass has not ended yet:
    the word is in the store by the end of the first log pass begun after it was written, i.e.
    within one log-poll interval plus that pass's own time. It is absent before the write, and it is
    found exactly once, by the scheduler's own passes.
    """
    settings = ObservationSettings(run=True, intervals={"logs": LOG_POLL}, enabled=frozenset({"logs"}))
    async with served_cluster(32, settings) as engine:
        state = engine.state_path
        word = f"needle{secrets.token_hex(6)}"
        code, out, err = await legion(runtime_dir, state, "--json", "logs", "--grep", word)
        assert (code, json.loads(out)) == (0, []), err
        code, out, err = await legion(runtime_dir, state, "terminal", "ms-3", stdin=f"logger -t ops {word}\n")
        assert code == 0, err
        written = _logs_record(await engine.observation())
        first_after = written["runs"] + int(written["running"]) + 1
        async with asyncio.timeout(120):  # liveness only: the scheduler must get there at all
            while True:
                record = _logs_record(await engine.observation())
                code, out, err = await legion(runtime_dir, state, "--json", "logs", "--grep", word)
                assert code == 0, err
                rows = json.loads(out)
                if rows:
                    break
                assert record["runs"] < first_after, (written, record)  # that pass ended without it
        (row,) = rows
        assert (row["node"], row["source"]) == ("ms-3", "ops") and word in row["text"]
        found = _logs_record(await engine.observation())  # the scheduler's own pass brought it
        assert found["ok"] and found["runs"] + int(found["running"]) > written["runs"], (written, found)
