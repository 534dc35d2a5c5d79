"""The same panels over the daemon: a real engine served on a real Unix socket, read by RemoteEngine.

The socket sits where the daemon always puts it (derived from the state path, which is unique to the
test's temporary directory), so the test exercises the real endpoint rules too.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from widgetkit import until

from legion_nb.engine.daemon.client import RemoteEngine, connect
from legion_nb.engine.daemon.endpoint import endpoint_for
from legion_nb.engine.daemon.host import DaemonReady, serve
from legion_nb.engine.runtime import Engine
from legion_nb.widgets import PlanDiffPanel, ResourcesPanel


@dataclass
class Served:
    remote: RemoteEngine
    stop: asyncio.Event
    task: asyncio.Task[None]


@pytest.fixture
async def served(engine: Engine) -> AsyncIterator[Served]:
    token = secrets.token_hex(32)
    ready, stop = asyncio.Event(), asyncio.Event()

    async def open_engine() -> Engine:
        return engine

    def on_ready(_: DaemonReady) -> None:
        ready.set()

    task = asyncio.create_task(
        serve(endpoint_for(engine.state_path), open_engine, token, on_ready=on_ready, stop=stop)
    )
    await until(lambda: ready.is_set() or task.done())
    if task.done():
        task.result()  # raises what serve raised
    remote = await connect(engine.state_path, token=token)
    try:
        yield Served(remote, stop, task)
    finally:
        await remote.aclose()
        stop.set()
        await task


async def test_panels_follow_a_daemon_engine(served: Served) -> None:
    remote = served.remote
    resources = ResourcesPanel(remote, min_interval=0)
    plan_diff = PlanDiffPanel(remote, min_interval=0)
    await remote.plan_upsert_server(name="edge-1", provider="scaleway")
    await remote.plan_upsert_dns_zone(zone="example.com", provider="ovh")
    await until(lambda: {"edge-1", "example.com"} <= {r["name"] for r in resources.rows})
    await until(lambda: {"edge-1", "example.com"} <= {r["name"] for r in plan_diff.resources})
    edge = next(r for r in resources.rows if r["name"] == "edge-1")
    assert edge["provider"] == "scaleway" and edge["action"] == "create" and edge["state"]
    diff_row = next(r for r in plan_diff.resources if r["name"] == "edge-1")
    fields = {f["field"]: f for f in diff_row["fields"]}
    assert fields["provider"]["planned"] == "scaleway" and fields["provider"]["tracked"] is None
    assert plan_diff.counts["create"] >= 2
    resources.close()
    plan_diff.close()


async def test_a_stopping_daemon_ends_the_feed_cleanly(served: Served) -> None:
    panel = ResourcesPanel(served.remote, min_interval=0)
    await until(lambda: panel.feed_status == "live")
    served.stop.set()
    await served.task
    await until(lambda: panel.feed_status == "closed")
    assert panel.feed is not None and not panel.feed.running
    panel.close()
