"""Backfill survives kill -9: a collector process killed at random moments leaves no gap and no duplicate.

Three simulated nodes serve their admin API (metrics and a back-dated journal by cursor) from this
process. A child process runs the collectors the observation scheduler runs (``collect_telemetry``,
``collect_journal``) into the stores, in small pages so that the backfill takes a while, and is
killed with SIGKILL twenty times at random moments. A last, unkilled pass then catches up. Every
node's journal lines must be there exactly once (as many lines as the cursor's sequence number,
each sequence number once) and telemetry must hold no (node, metric, device, time) twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from legion_nb.emulators.httpkit import serve_app
from legion_nb.emulators.nodes.admin_api import TangKeys, create_admin_app
from legion_nb.emulators.nodes.system import NodeSystem
from legion_nb.engine.observe.collectors import collect_journal, collect_telemetry, journal_cursor
from legion_nb.engine.observe.log_store import LogStore
from legion_nb.engine.observe.methods import LOGS_FILENAME, TELEMETRY_FILENAME
from legion_nb.engine.observe.telemetry_store import TelemetryStore
from legion_nb.providers.node_admin import NodeAdminClient

pytestmark = pytest.mark.slow

NODES = ("kill-1", "kill-2", "kill-3")
KILLS = 20

COLLECTOR = """
import asyncio, json, ssl, sys
from pathlib import Path
from legion_nb.engine.observe.collectors import collect_journal, collect_telemetry
from legion_nb.engine.observe.log_store import LogStore
from legion_nb.engine.observe.telemetry_store import TelemetryStore
from legion_nb.providers.node_admin import NodeAdminClient

async def main():
    directory, urls = Path(sys.argv[1]), json.loads(sys.argv[2])
    telemetry = TelemetryStore(directory / sys.argv[3])
    logs = LogStore(directory / sys.argv[4])
    clients = {n: NodeAdminClient(n, url, ssl.create_default_context()) for n, url in urls.items()}
    print("collecting", flush=True)
    while True:
        for node, client in clients.items():
            await collect_telemetry(telemetry, node, client, page_limit=300, max_pages=1)
            await collect_journal(logs, node, client, page_limit=10, max_pages=1)

asyncio.run(main())
"""


@pytest.fixture
async def nodes() -> AsyncIterator[dict[str, str]]:
    served = []
    try:
        for n, name in enumerate(NODES):
            system = NodeSystem(hostname=name, cloud_host_key="unused", seed=40 + n, history_hours=12)
            served.append(await serve_app(create_admin_app(system, TangKeys()), "127.0.0.1"))
        yield {name: app.base_url() for name, app in zip(NODES, served, strict=True)}
    finally:
        for app in served:
            await app.aclose()


async def test_killed_backfills_leave_every_line_once_and_no_duplicate_sample(
    tmp_path: Path, nodes: dict[str, str]
) -> None:
    directory = tmp_path / "state.logs"
    directory.mkdir(mode=0o700)
    rng = random.Random(14)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    progress = []
    for _ in range(KILLS):
        child = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", COLLECTOR, str(directory), json.dumps(nodes)),
            *(TELEMETRY_FILENAME, LOGS_FILENAME),
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"collecting"
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        os.kill(child.pid, signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        logs = LogStore(directory / LOGS_FILENAME)
        try:
            progress.append(logs.count())
        finally:
            logs.close()

    telemetry = TelemetryStore(directory / TELEMETRY_FILENAME)
    logs = LogStore(directory / LOGS_FILENAME)
    clients = {n: NodeAdminClient(n, url, ssl.create_default_context()) for n, url in nodes.items()}
    try:
        for node, client in clients.items():  # the pass nobody kills catches up
            while (await collect_telemetry(telemetry, node, client)).stored:
                pass
            while (await collect_journal(logs, node, client)).stored:
                pass
        for node in NODES:
            rows = logs.search(nodes=[node], limit=1_000_000)
            cursor = logs.cursor(journal_cursor(node))
            assert cursor is not None and cursor > 0
            assert len(rows) == cursor == len(set(rows.seq)), (node, len(rows), cursor)
            assert sorted(s for s in rows.seq if s is not None) == list(range(1, cursor + 1))
        total = logs.count()
        interrupted = sum(seen < total for seen in progress)
        assert interrupted >= KILLS // 2, progress  # most kills landed in the middle of the backfill
        assert progress == sorted(progress)  # what a killed pass committed stays
        columns = telemetry.query()
        keys = [
            (columns.series[code].node, columns.series[code].metric, columns.series[code].device, at)
            for code, at in zip(columns.codes.tolist(), columns.time_ms.tolist(), strict=True)
        ]
        assert len(keys) == len(set(keys)) > 0
        assert {key.node for key in columns.series} == set(NODES)
    finally:
        for client in clients.values():
            await client.aclose()
        telemetry.close()
        logs.close()
