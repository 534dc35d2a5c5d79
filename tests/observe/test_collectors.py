"""Collectors against a simulated node's admin API over real HTTP: paging by cursor, no repeats."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from legion_nb.emulators.httpkit import serve_app
from legion_nb.emulators.nodes.admin_api import TangKeys, create_admin_app
from legion_nb.emulators.nodes.system import NodeSystem
from legion_nb.emulators.nodes.telemetry import SERIES
from legion_nb.engine.observe.collectors import MalformedPageError, collect_journal, collect_telemetry
from legion_nb.engine.observe.log_store import LogStore
from legion_nb.engine.observe.telemetry_store import TelemetryStore
from legion_nb.providers.node_admin import NodeAdminClient


@pytest.fixture
async def node() -> AsyncIterator[tuple[NodeSystem, NodeAdminClient]]:
    system = NodeSystem(hostname="web-1", cloud_host_key="unused", seed=7, history_hours=2)
    served = await serve_app(create_admin_app(system, TangKeys()), "127.0.0.1")
    client = NodeAdminClient("web-1", served.base_url(), ssl.create_default_context())
    try:
        yield system, client
    finally:
        await client.aclose()
        await served.aclose()


async def test_telemetry_backfills_history_then_only_new_samples(
    tmp_path: Path, node: tuple[NodeSystem, NodeAdminClient]
) -> None:
    system, client = node
    store = TelemetryStore(tmp_path / "t.db")
    try:
        first = await collect_telemetry(store, "web-1", client, page_limit=2000)
        steps = 2 * 3600 * 1000 // system.telemetry.interval_ms
        assert first.pages > 1 and first.duplicates == 0
        assert first.stored >= steps * len(SERIES)
        again = await collect_telemetry(store, "web-1", client)
        assert again.stored <= 2 * len(SERIES)  # at most the steps that passed meanwhile
        columns = store.query(metrics=["tribes_up"])
        assert len(set(columns.time_ms.tolist())) == len(columns)
        assert {key.metric for key in store.series()} == {metric for metric, _ in SERIES}
    finally:
        store.close()


async def test_same_seed_same_history(tmp_path: Path) -> None:
    a = NodeSystem(hostname="web-1", cloud_host_key="x", seed=1, history_hours=1)
    b = NodeSystem(hostname="web-1", cloud_host_key="x", seed=1, history_hours=1)
    c = NodeSystem(hostname="web-2", cloud_host_key="x", seed=1, history_hours=1)
    at = a.telemetry.history_start_ms
    page_a = a.telemetry.page(after_ms=at, limit=500, now_ms=at + 3_600_000)
    page_b = b.telemetry.page(after_ms=at, limit=500, now_ms=at + 3_600_000)
    page_c = c.telemetry.page(after_ms=at, limit=500, now_ms=at + 3_600_000)
    assert page_a.value.tolist() == page_b.value.tolist()
    assert page_a.value.tolist() != page_c.value.tolist()
    assert a.journal_after(0, 5)[0].message == b.journal_after(0, 5)[0].message


async def test_journal_backfill_resumes_by_cursor(
    tmp_path: Path, node: tuple[NodeSystem, NodeAdminClient]
) -> None:
    system, client = node
    store = LogStore(tmp_path / "l.db")
    try:
        system.log("tribes", "live line after the history")
        partial = await collect_journal(store, "web-1", client, page_limit=100, max_pages=2)
        assert partial.stored == 200 and store.cursor("journal:web-1") == 200
        rest = await collect_journal(store, "web-1", client, page_limit=100)
        assert store.count() == system.history.count + 1
        assert rest.duplicates == 0
        assert store.search(text="live line").seq == [system.history.count + 1]
        assert (await collect_journal(store, "web-1", client)).stored == 0
    finally:
        store.close()


class _Broken:
    async def telemetry(self, *, after: int | None = None, limit: int = 0) -> dict[str, Any]:
        return {
            "series": [{"metric": "m"}],
            "samples": {"index": [4], "time_ms": [1], "value": [1.0]},
            "next": 1,
        }


async def test_a_malformed_page_is_named_and_stores_nothing(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.db")
    try:
        with pytest.raises(MalformedPageError, match="web-1"):
            await collect_telemetry(store, "web-1", _Broken())
        assert store.cursor("telemetry:web-1") is None
    finally:
        store.close()


async def test_a_node_serving_smaller_pages_than_asked_is_caught_up_in_one_pass(
    tmp_path: Path, node: tuple[NodeSystem, NodeAdminClient]
) -> None:
    system, client = node
    system.page_limit = 30  # a node capping its pages below the collectors' 1,000 lines and 20,000 samples
    logs, telemetry = LogStore(tmp_path / "l.db"), TelemetryStore(tmp_path / "t.db")
    try:
        journal = await collect_journal(logs, "web-1", client)
        assert journal.pages > 1 and journal.stored == system.history.count == logs.cursor("journal:web-1")
        samples = await collect_telemetry(telemetry, "web-1", client)
        steps = 2 * 3600 * 1000 // system.telemetry.interval_ms
        assert samples.pages >= steps // 30 and samples.stored >= steps * len(SERIES)
    finally:
        logs.close()
        telemetry.close()


class _NodeWithoutMore:
    """A journal source whose pages do not say whether more follows: a full page means maybe."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def logs(self, *, since: int = 0, limit: int = 200) -> dict[str, Any]:
        seqs = range(since + 1, min(self.count, since + limit) + 1)
        entries = [{"seq": s, "time": 1.0 + s, "unit": "tribes", "message": f"line {s}"} for s in seqs]
        return {"entries": entries, "next": seqs[-1] if seqs else since}


async def test_a_page_without_more_is_followed_while_full(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "l.db")
    try:
        report = await collect_journal(store, "web-1", _NodeWithoutMore(25), page_limit=10)
        assert (report.pages, report.stored, report.cursor) == (3, 25, 25)
    finally:
        store.close()
