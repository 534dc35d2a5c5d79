"""Legion's own operations and actor changes land in the log store, redacted, beside the journals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd

import legion_nb
from legion_nb.engine import redaction
from legion_nb.engine.events import EventHub
from legion_nb.engine.observe.legion_log import LegionLog, legion_lines
from legion_nb.engine.observe.log_store import LogStore

SECRET = "s3cr3t-canary-token-1234"


def test_items_become_labelled_lines() -> None:
    lines = legion_lines(
        [
            {
                "event": "begin",
                "operation": "op-1",
                "time": "2026-12-05T10:00:00+00:00",
                "summary": "materialize started",
            },
            {
                "event": "resource",
                "operation": "op-1",
                "time": "2026-12-05T10:00:01+00:00",
                "summary": "server web-1: failed - quota",
                "resource": {"error": "quota"},
            },
            {
                "event": "end",
                "operation": "op-1",
                "time": "2026-12-05T10:00:02+00:00",
                "summary": "1 failed",
                "status": "failed",
            },
            {"event": "other", "summary": "ignored"},
            {"event": "end", "summary": None},
        ]
    )
    assert [(x.node, x.source, x.level, x.text) for x in lines] == [
        ("legion", "operation", 6, "[op-1] materialize started"),
        ("legion", "actor", 3, "[op-1] server web-1: failed - quota"),
        ("legion", "operation", 3, "[op-1] 1 failed"),
    ]
    assert lines[0].time_ms == 1_796_464_800_000 and lines[0].seq is None


async def test_the_hubs_activity_is_stored_without_secrets(tmp_path: Path) -> None:
    hub = EventHub()
    path = tmp_path / "logs" / "logs.sqlite"
    owner = object()
    redaction.publish(owner, redaction.Redactor([SECRET]))
    try:
        async with LegionLog(hub, path) as legion_log:
            hub.publish("activity", {"event": "begin", "operation": "op-7", "summary": "refresh started"})
            hub.publish(
                "activity",
                {
                    "event": "end",
                    "operation": "op-7",
                    "status": "failed",
                    "summary": f"token {SECRET} refused",
                },
            )
            for _ in range(50):  # the hub flushes at the end of the tick, the write runs in a thread
                if legion_log.written == 2:
                    break
                await asyncio.sleep(0.02)
    finally:
        redaction.withdraw(owner)
    store = LogStore(path)
    try:
        rows = store.search(nodes=["legion"])
        assert rows.source == ["operation", "operation"]
        assert rows.text[0] == "[op-7] refresh started"
        assert SECRET not in rows.text[1] and "refused" in rows.text[1]
        assert store.search(text=SECRET[:12]).text == []
    finally:
        store.close()


async def test_an_engines_operations_are_searchable_as_legion_lines() -> None:
    engine = await legion_nb.sandbox(seed=21, providers=("hetzner",))
    try:
        await engine.plan_upsert_server(name="web-1", provider="hetzner")
        await engine.materialize()
        await engine.refresh()
        frame = pd.DataFrame()
        for _ in range(100):  # the activity lands in a thread after the operation's last tick
            frame = await engine.logs(nodes="legion")
            if (frame["source"] == "operation").sum() >= 4:
                break
            await asyncio.sleep(0.02)
        operations = frame[frame["source"] == "operation"]["text"].tolist()
        assert any("materialize started" in t for t in operations)
        assert any("refresh hetzner started" in t for t in operations)
        assert any("web-1" in t for t in frame[frame["source"] == "actor"]["text"])
        assert set(frame["node"]) == {"legion"} and frame["seq"].isna().all()
    finally:
        await engine.aclose()
