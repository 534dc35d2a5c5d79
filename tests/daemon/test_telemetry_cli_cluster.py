"""Telemetry and logs from the shell, on a sandbox cluster of deployed nodes served by a daemon.

After ``legion observe --once``, ``legion --json telemetry --rollup 1m`` has rows for every node and
every baseline metric; a word written on a node with ``legion terminal NODE`` (``logger WORD`` piped
to it) is found by ``legion --json logs --grep WORD`` after one more log-collection pass (one
log-poll interval). The CLI runs as real subprocesses reaching the daemon, which serves an
in-process sandbox engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

import pandas as pd
import pytest
from daemonkit import TOKEN, start_daemon

import legion_nb
from legion_nb.engine.observe.metrics import BASELINE
from legion_nb.engine.observe.scheduler import ObservationSettings

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


async def test_observe_once_then_telemetry_rows_for_every_node_and_a_logged_word_found(
    runtime_dir: Path,
) -> None:
    engine = await legion_nb.sandbox(
        seed=31,
        nodes=True,
        providers=("hetzner",),
        action_seconds=0.02,
        boot_seconds=0.02,
        observation=ObservationSettings(run=False),
    )
    try:
        for name in NODES:
            await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
        report = await engine.materialize()
        assert report.ok, report.summary
        running = await start_daemon(engine.state_path, engine)
        state = engine.state_path
        try:
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
            code, out, err = await legion(
                runtime_dir, state, "terminal", "ms-2", stdin=f"logger -t ops {word}\n"
            )
            assert code == 0, err

            code, out, err = await legion(runtime_dir, state, "--json", "observe", "--once", "--only", "logs")
            assert code == 0, err  # one log-collection pass: one log-poll interval
            code, out, err = await legion(runtime_dir, state, "--json", "logs", "--grep", word)
            assert code == 0, err
            (row,) = json.loads(out)
            assert (row["node"], row["source"]) == ("ms-2", "ops") and word in row["text"]
        finally:
            await running.finish()
    finally:
        await engine.aclose()
