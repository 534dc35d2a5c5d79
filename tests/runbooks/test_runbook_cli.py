"""``legion runbook`` through a daemon that serves a sandbox cluster, and a cell calling the daemon.

The daemon runs in the test's loop (its engine is the sandbox's); the CLI is a separate process
that reaches it with the daemon token, as an operator's shell would.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemonkit import start_daemon

import legion_nb
from legion_nb.engine.runtime import Engine

TOKEN = "5" * 64


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
async def daemon(cluster: Engine) -> AsyncIterator[Engine]:
    running = await start_daemon(cluster.state_path, cluster, TOKEN)
    try:
        yield cluster
    finally:
        await running.finish()


async def legion(engine: Engine, *args: str) -> Result:
    env = {k: v for k, v in os.environ.items() if k != "LEGION_PASSWORD"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legion_nb",
        "--state",
        str(engine.state_path),
        "--daemon-token",
        TOKEN,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_cli_runs_node_recovery_shows_the_record_and_verifies(daemon: Engine) -> None:
    listed = await legion(daemon, "--json", "runbook", "list")
    assert listed.code == 0, listed.err
    assert "node-recovery" in {r["name"] for r in json.loads(listed.out)}

    ran = await legion(daemon, "--json", "runbook", "run", "node-recovery", "-p", "node=web-2")
    assert ran.code == 0, ran.err
    run_id = json.loads(ran.out)["id"]
    shown = await legion(daemon, "--json", "runbook", "show", run_id)
    assert shown.code == 0, shown.err
    record = json.loads(shown.out)
    for field in (
        "id",
        "runbook",
        "input_sha256",
        "parameters",
        "operator",
        "host",
        "start",
        "end",
        "cells",
        "operations",
        "exit_status",
        "output_path",
        "output_sha256",
        "previous",
        "hash",
    ):
        assert field in record, field
    assert record["parameters"] == {"node": "web-2"} and record["exit_status"] == 0 and record["operations"]
    assert all(c["status"] == "completed" and c["duration"] is not None for c in record["cells"])

    failed = await legion(daemon, "runbook", "run", "node-recovery", "-p", "node=ghost")
    assert failed.code == 5
    lines = failed.err.strip().splitlines()
    assert len(lines) == 1 and "failed at In [" in lines[0] and "no server 'ghost'" in lines[0], failed.err
    assert "]: if not node: - LookupError: no server 'ghost'" in lines[0], failed.err

    runs = await legion(daemon, "--json", "runbook", "runs")
    rows = json.loads(runs.out)
    assert [r["status"] for r in rows] == ["succeeded", "failed"] and rows[1]["failed_cell"] is not None
    assert rows[1]["failed_at"].startswith("In [") and rows[1]["failed_at"].endswith("]: if not node:"), rows[
        1
    ]

    verified = await legion(daemon, "runbook", "verify")
    assert verified.code == 0 and "2 run record(s) verified" in verified.out, verified.err
    output = Path(record["output_path"])
    content = bytearray(output.read_bytes())
    content[len(content) // 2] ^= 0x01
    output.write_bytes(bytes(content))
    broken = await legion(daemon, "runbook", "verify")
    assert broken.code == 5
    assert (
        f"record 1 ({run_id}): its output notebook" in broken.err
        and len(broken.err.strip().splitlines()) == 1
    )

    usage = await legion(daemon, "runbook", "run", "node-recovery", "-p", "node")
    assert usage.code == 2 and "is not KEY=VALUE" in usage.err


async def test_a_notebook_cell_runs_a_runbook_through_the_daemon(daemon: Engine) -> None:
    remote = await legion_nb.connect(daemon.state_path, token=TOKEN)
    try:
        record = await remote.run_runbook(name="node-recovery", parameters={"node": "web-1"}, dry_run=True)
        assert record.exit_status == 0 and record.dry_run is True and record.id.startswith("run-")
        assert record == await daemon.runbook_show(record.id)  # the same record through the daemon
        assert (await remote.runbook_verify())["ok"]
    finally:
        await remote.aclose()
