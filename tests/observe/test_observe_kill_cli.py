"""``legion observe`` killed with SIGKILL during the backfill, twenty times: no gap, no duplicate.

The operator's setup, each step its own ``legion`` process: ``legion sandbox serve
--store-credentials`` serves the providers and simulated nodes whose admin APIs hold twelve hours of
back-dated metrics and journal (``--node-history-hours``), served in small pages
(``--node-page-limit``) so that the backfill is hundreds of page commits long; three servers are
planned and materialized, and their nodes deployed. Then a foreground ``legion observe --only
telemetry,logs`` is started and killed with SIGKILL twenty times at seeded random moments: each
time as soon as the run is seen to have committed a seeded random number of pages (read from the
stores' cursors every few milliseconds, so the kill falls anywhere in the collectors' work on the
next page) - a moment measured in pages rather than seconds, so that a fast machine kills as early
in the backfill as a slow one. Every other run names the concerns the other way round (``--only
logs,telemetry``, which runs the journal first), so that both collectors are killed mid-backfill.
Between kills the stores are read read-only, as another process would: committed progress never
goes backwards, and most kills leave some of the nodes' history still to collect.

A last, unkilled ``legion observe --once --only telemetry,logs``, repeated until a pass brings less
than one page, catches up. Every node's journal lines are then present exactly once (as many
lines as its cursor's sequence number, each sequence number 1..cursor once), telemetry holds no
(node, metric, device, time) twice and no missing step up to its cursor, every materialized node is
in both stores, both stores pass SQLite's integrity check after the kills, and the text index finds
exactly the lines the table holds; the 1-minute rollups count exactly the raw samples.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import ok, run_legion

from legion_nb.emulators.nodes.telemetry import SERIES, NodeTelemetry
from legion_nb.engine.observe.collectors import journal_cursor, telemetry_cursor
from legion_nb.engine.observe.log_store import LogStore
from legion_nb.engine.observe.methods import LOGS_FILENAME, TELEMETRY_FILENAME
from legion_nb.engine.observe.telemetry_store import TelemetryStore
from legion_nb.engine.paths import log_dir_for

pytestmark = pytest.mark.slow

PASSWORD = "observe kill password"
NODES = ("obs-1", "obs-2", "obs-3")
KILLS = 20
HISTORY_HOURS = 12
PAGE_LIMIT = 20
"""Journal lines or sampling steps a node's admin API page carries: twelve hours of history are
some 110 journal pages and 140 telemetry pages a node, each its own commit."""
MAX_PAGES = 16
"""The most pages (over every node and both collectors) a run is seen to commit before its kill."""
TIMEOUT = 120
NODE_PACE = ("--node-history-hours", str(HISTORY_HOURS), "--node-page-limit", str(PAGE_LIMIT))


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    env.update(
        LEGION_STATE=str(state),
        LEGION_PASSWORD=PASSWORD,
        PYTHONPATH=os.pathsep.join(sys.path),
        PYTHONUNBUFFERED="1",
    )
    return env


def legion(state: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_legion(*args, stdin=stdin, env=_env(state), timeout=TIMEOUT)


def _stop(process: subprocess.Popen[str], how: signal.Signals) -> int:
    """Signal ``process`` (when it still runs) and reap it; SIGKILL when it ignores ``how``."""
    if process.poll() is None:
        process.send_signal(how)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=60)


@pytest.fixture
def served_state(tmp_path: Path) -> Iterator[Path]:
    """A new state linked to ``legion sandbox serve --store-credentials`` running in another process."""
    state = tmp_path / "kill.legion"
    ok(legion(state, "init", "--password-stdin", stdin=PASSWORD + "\n"))
    serve = ("sandbox", "serve", "--store-credentials", "--seed", "14", *NODE_PACE)
    server = subprocess.Popen(
        [sys.executable, "-m", "legion_nb", *serve],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(state),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "credentials stored" in line, (line, server.stderr.read() if server.poll() is not None else "")
        yield state
    finally:
        assert _stop(server, signal.SIGTERM) == 0
    assert not state.with_name(state.name + ".sandbox.json").exists(), "the link outlived the sandbox"


def reading(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A read-only connection to one of the stores, as another process would open it."""
    return contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


def committed(directory: Path) -> dict[str, int]:
    """Every collection cursor both stores have committed, read as another process would (read-only);
    empty while a store is not there yet."""
    cursors: dict[str, int] = {}
    for name in (TELEMETRY_FILENAME, LOGS_FILENAME):
        with (
            contextlib.suppress(sqlite3.OperationalError),  # not created yet, or its schema half-made
            reading(directory / name) as db,
        ):
            cursors.update(db.execute("SELECT source, position FROM cursors").fetchall())
    return cursors


def backfilled_lines(directory: Path, before_ms: int) -> int:
    """Journal lines stored that the nodes logged before ``before_ms`` (their backfill)."""
    with reading(directory / LOGS_FILENAME) as db:
        return int(db.execute("SELECT count(*) FROM lines WHERE time_ms < ?", (before_ms,)).fetchone()[0])


def pass_over(output: bytes) -> bool:
    """Whether the foreground observer's status lines show both concerns ran once (this run's
    share of the backfill is over: there was nothing left, or it collected a pass's worth)."""
    for line in output.splitlines()[:-1] if not output.endswith(b"\n") else output.splitlines():
        runs = {c["concern"]: c["runs"] for c in json.loads(line).get("concerns", [])}
        if runs.get("telemetry", 0) >= 1 and runs.get("logs", 0) >= 1:
            return True
    return False


def pages_since(baseline: dict[str, int], now: dict[str, int]) -> float:
    """How many pages the nodes' cursors moved by from ``baseline`` to ``now``; a cursor seen for
    the first time joins ``baseline`` one page behind where it stands."""
    step = PAGE_LIMIT * NodeTelemetry.interval_ms  # the time one telemetry page spans
    moved = 0.0
    for node in NODES:
        for name, width in ((journal_cursor(node), PAGE_LIMIT), (telemetry_cursor(node), step)):
            if name in now:
                moved += (now[name] - baseline.setdefault(name, now[name] - width)) / width
    return moved


def kill_one_run(state: Path, directory: Path, rng: random.Random, concerns: str) -> bool:
    """Start ``legion observe`` in the foreground, wait until it has committed a seeded random
    number of pages (or its pass is over with less to commit), and SIGKILL it. Whether it had
    committed something."""
    before = committed(directory)
    baseline = dict(before)
    target = rng.uniform(0.5, MAX_PAGES)
    errors = directory.parent / "observe.err"
    with errors.open("ab") as stderr:
        observer = subprocess.Popen(
            [sys.executable, "-m", "legion_nb", "--json", "observe", "--only", concerns],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_env(state),
        )
    try:
        assert observer.stdout is not None
        os.set_blocking(observer.stdout.fileno(), False)
        output = b""
        deadline = time.monotonic() + TIMEOUT
        while pages_since(baseline, committed(directory)) < target:
            with contextlib.suppress(BlockingIOError):  # nothing printed since the last look
                output += os.read(observer.stdout.fileno(), 1 << 16)
            if pass_over(output):
                break
            assert observer.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "legion observe neither committed nor finished a pass"
            time.sleep(0.005)
    finally:
        assert _stop(observer, signal.SIGKILL) == -signal.SIGKILL
        if observer.stdout is not None:
            observer.stdout.close()
    return committed(directory) != before


def test_observe_killed_twenty_times_during_backfill_leaves_every_line_once_and_no_duplicate_sample(
    served_state: Path,
) -> None:
    state = served_state
    directory = log_dir_for(state)
    for name in NODES:
        ok(legion(state, "plan", "server", "add", name, "--provider", "hetzner"))
    ok(legion(state, "materialize", "--yes"))
    rows = {r["name"]: r for r in json.loads(ok(legion(state, "--json", "snapshot")).stdout)["rows"]}
    assert all(rows[name]["system"] == "deployed" for name in NODES), rows

    started_ms = int(time.time() * 1000)  # every line before this moment is the backfill's
    rng = random.Random(14)
    progress: list[tuple[dict[str, int], int]] = []
    committing_runs = 0
    for kill in range(KILLS):
        concerns = "telemetry,logs" if kill % 2 == 0 else "logs,telemetry"
        committing_runs += kill_one_run(state, directory, rng, concerns)
        progress.append((committed(directory), backfilled_lines(directory, started_ms)))

    for name in (TELEMETRY_FILENAME, LOGS_FILENAME):  # twenty kills left no store corrupt
        with reading(directory / name) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], name

    page = PAGE_LIMIT * len(SERIES)  # the samples in one full telemetry page
    while True:  # the pass nobody kills, until a pass brings less than one page from every node
        report = json.loads(
            ok(legion(state, "--json", "observe", "--once", "--only", "telemetry,logs")).stdout
        )
        assert report["telemetry"]["ok"] and report["logs"]["ok"], report
        if report["logs"]["items"] < PAGE_LIMIT and report["telemetry"]["items"] < page:
            break

    final_lines = backfilled_lines(directory, started_ms)

    def history_left(cursors: dict[str, int], lines: int) -> bool:
        """Whether some node's history was still to collect: journal lines logged before the kills
        began, or a sample step (15 s) older than that moment beyond a telemetry cursor."""
        last_step = started_ms - NodeTelemetry.interval_ms
        return lines < final_lines or any(cursors.get(telemetry_cursor(n), 0) < last_step for n in NODES)

    interrupted = sum(history_left(cursors, lines) for cursors, lines in progress)
    assert interrupted >= KILLS // 2, progress  # most kills landed mid-backfill
    assert committing_runs >= KILLS // 2
    for (earlier, lines), (later, more_lines) in itertools.pairwise(progress):
        assert lines <= more_lines  # what a killed run committed stays
        assert all(later.get(name, -1) >= position for name, position in earlier.items()), (earlier, later)

    telemetry = TelemetryStore(directory / TELEMETRY_FILENAME)
    logs = LogStore(directory / LOGS_FILENAME)
    try:
        for node in NODES:  # every journal line once: as many as the cursor, each number once
            lines_of_node = logs.search(nodes=[node], limit=1_000_000)
            cursor = logs.cursor(journal_cursor(node))
            assert cursor is not None and cursor > 0
            count = len(lines_of_node)
            assert count == cursor == len(set(lines_of_node.seq)), (node, count, cursor)
            assert sorted(s for s in lines_of_node.seq if s is not None) == list(range(1, cursor + 1))
        columns = telemetry.query()
        keys = [
            (columns.series[code].node, columns.series[code].metric, columns.series[code].device, at)
            for code, at in zip(columns.codes.tolist(), columns.time_ms.tolist(), strict=True)
        ]
        assert len(keys) == len(set(keys)) > 0  # no (node, metric, device, time) twice
        assert {key.node for key in columns.series} == set(NODES)
        step = NodeTelemetry.interval_ms
        for node in NODES:  # and no gap: every step from the start of history to the cursor
            cursor = telemetry.cursor(telemetry_cursor(node))
            times = sorted(at for n, metric, _, at in keys if (n, metric) == (node, "tribes_up"))
            assert cursor is not None and times == list(range(times[0], cursor + 1, step)), node
        minutes = telemetry.query(tier="1m")  # rollups neither missed nor doubled a killed page
        counts = minutes.values["count"].tolist()
        rolled = {
            (minutes.series[code], at): count
            for code, at, count in zip(minutes.codes.tolist(), minutes.time_ms.tolist(), counts, strict=True)
        }
        raw = Counter(
            (columns.series[code], at - at % 60_000)
            for code, at in zip(columns.codes.tolist(), columns.time_ms.tolist(), strict=True)
        )
        assert rolled == dict(raw)
        assert set(logs.search(limit=1_000_000).node) >= set(NODES)
        with reading(directory / LOGS_FILENAME) as db:
            joined = db.execute("SELECT count(*) FROM lines WHERE text LIKE '%player%'").fetchone()[0]
        assert len(logs.search(text="player", limit=1_000_000)) == joined > 0  # the text index kept up
    finally:
        telemetry.close()
        logs.close()
    journal_left = sum(lines < final_lines for _, lines in progress)
    print(f"\n{interrupted} of {KILLS} kills left history to collect ({journal_left} of them journal lines)")
