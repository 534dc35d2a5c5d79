"""``legion telemetry`` and ``legion logs``: JSON rows that rebuild the frame, readable tables, exports."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from legion_nb.engine.observe.log_store import LogLine, LogStore
from legion_nb.engine.observe.methods import LOGS_FILENAME, TELEMETRY_FILENAME
from legion_nb.engine.observe.metrics import BASELINE, SeriesKey, metric_label
from legion_nb.engine.observe.telemetry_store import Samples, TelemetryStore
from legion_nb.engine.paths import log_dir_for

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py
NODES = ("tribes-a", "tribes-b")


def collected(state: str) -> int:
    """What a collection pass leaves beside the state: 20 minutes of every baseline series of two
    nodes at 15 s, and a journal line a minute (one of them an error). Returns now in ms."""
    now_ms = int(time.time() * 1000)
    directory = log_dir_for(Path(state))
    start = now_ms - 20 * 60_000
    rows = [
        (SeriesKey(node, spec.name, spec.devices[0]), start + i * 15_000, float(i + n))
        for n, node in enumerate(NODES)
        for spec in BASELINE
        for i in range(80)
    ]
    telemetry = TelemetryStore(directory / TELEMETRY_FILENAME)
    try:
        telemetry.ingest(Samples.from_rows(rows))
        telemetry.rollup()
    finally:
        telemetry.close()
    logs = LogStore(directory / LOGS_FILENAME)
    try:
        lines = [
            LogLine(start + i * 60_000, NODES[i % 2], "tribes", f"round {i} over", 6, i) for i in range(20)
        ]
        lines.append(LogLine(now_ms - 5_000, "tribes-b", "kernel", "oom-killer picked PENGUIN", 3, 20))
        logs.append(lines)
    finally:
        logs.close()
    return now_ms


def test_telemetry_json_rows_rebuild_the_frame_and_the_table_reads(
    legion: Legion, state: str, tmp_path: Path
) -> None:
    s = ("--state", state)
    collected(state)
    result = legion(*s, "--json", "telemetry", "--rollup", "1m")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert isinstance(rows, list) and next(iter(rows[0])) == "time" and rows[0]["time"].endswith("Z")
    assert {(r["node"], r["metric"]) for r in rows} == {(n, spec.name) for n in NODES for spec in BASELINE}
    frame = pd.DataFrame(rows)
    assert {"node", "metric", "device", "mean", "min", "max", "sum", "count"} <= set(frame.columns)

    one = json.loads(
        legion(*s, "--json", "telemetry", "--node", "tribes-a", "--metric", BASELINE[0].name).out
    )
    assert {r["node"] for r in one} == {"tribes-a"} and len(one) == 80

    human = legion(*s, "telemetry", "--since", "30m").out
    assert "LAST AT (UTC)" in human and "tribes-b" in human and BASELINE[2].name in human
    # A metric reads in words with its unit, its rule name whole in the last column (none cut).
    header, *lines = human.splitlines()[1:]
    assert header.split()[:2] == ["NODE", "METRIC"] and header.endswith("RULE")
    assert {line.split()[-1] for line in lines} == {spec.name for spec in BASELINE}
    assert metric_label(BASELINE[2].name).title in human
    cpu, load = (
        next(line for line in lines if line.startswith("tribes-b") and line.endswith(name))
        for name in (BASELINE[0].name, BASELINE[1].name)
    )
    # The last sample is 80 for every series of tribes-b: a ratio in percent reads 8000, a load 80.
    assert "CPU utilisation (%)" in cpu and cpu.split()[-6] == "8000"
    assert "Load per CPU, 1-minute average" in load and load.split()[-6] == "80"
    empty = legion(*s, "telemetry", "--node", "nobody")
    assert empty.code == 0 and "no telemetry" in empty.out

    for fmt in ("parquet", "csv"):
        out = tmp_path / f"t.{fmt}"
        done = legion(
            *s, "--json", "telemetry", "export", "--format", fmt, "--out", str(out), "--rollup", "5m"
        )
        assert done.code == 0, done.err
        assert json.loads(done.out)["rows"] > 0 and out.exists()

    bad = legion(*s, "telemetry", "--since", "a while")
    assert bad.code != 0 and "duration 'a while' is not valid" in bad.err and bad.err.count("\n") == 1


def test_logs_grep_levels_and_json_rows(legion: Legion, state: str) -> None:
    s = ("--state", state)
    collected(state)
    found = legion(*s, "--json", "logs", "--grep", "penguin")
    assert found.code == 0, found.err
    (row,) = json.loads(found.out)
    assert row["node"] == "tribes-b" and row["text"] == "oom-killer picked PENGUIN" and row["level"] == "err"
    assert next(iter(row)) == "time"

    tail = json.loads(legion(*s, "--json", "logs", "--node", "tribes-a", "--limit", "3").out)
    assert [r["text"] for r in tail] == ["round 14 over", "round 16 over", "round 18 over"]
    errors = json.loads(legion(*s, "--json", "logs", "--level", "err").out)
    assert [r["seq"] for r in errors] == [20]
    recent = json.loads(legion(*s, "--json", "logs", "--since", "1m").out)
    assert [r["seq"] for r in recent] == [20]

    human = legion(*s, "logs", "--grep", "PENGUIN").out
    assert "tribes-b          kernel        err      oom-killer picked PENGUIN" in human
    bad = legion(*s, "logs", "--level", "loud")
    assert bad.code != 0 and "unknown log level" in bad.err


async def test_logs_follow_prints_new_lines_as_they_arrive(state: str, password: str) -> None:
    collected(state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    env.update(LEGION_PASSWORD=password, PYTHONPATH=os.pathsep.join(sys.path))
    args = ("--state", state, "--json", "logs", "--follow", "--grep", "PENGUIN")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legion_nb", *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        assert first["text"] == "oom-killer picked PENGUIN"
        logs = LogStore(log_dir_for(Path(state)) / LOGS_FILENAME)
        try:
            logs.append([LogLine(int(time.time() * 1000), "tribes-a", "kernel", "another penguin", 4, 500)])
        finally:
            logs.close()
        second = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert (second["node"], second["text"]) == ("tribes-a", "another penguin")
    finally:
        proc.kill()
        await proc.wait()
