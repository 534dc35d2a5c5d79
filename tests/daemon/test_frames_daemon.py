"""The analyst's frames: telemetry, logs and the engine's views, equal in process and through the daemon."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from daemonkit import TOKEN, start_daemon

import legion_nb
from legion_nb.engine.daemon.client import connect_if_alive
from legion_nb.engine.observe.log_store import LogLine, LogStore
from legion_nb.engine.observe.methods import LOGS_FILENAME, TELEMETRY_FILENAME
from legion_nb.engine.observe.metrics import SeriesKey
from legion_nb.engine.observe.telemetry_store import Samples, TelemetryStore
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError

CPU = "instance:node_cpu_utilisation:rate5m"
DISK = "node_filesystem_avail_bytes"


def fill_stores(engine: Engine, now_ms: int) -> None:
    """Two nodes' hour of 15-second samples and a few journal lines, as collection leaves them."""
    start = now_ms - 3_600_000
    rows = []
    for node in ("web-1", "web-2"):
        for i in range(240):
            rows.append((SeriesKey(node, CPU), start + i * 15_000, (i % 20) / 20))
            rows.append((SeriesKey(node, DISK, "/"), start + i * 15_000, 1e9 - i * 1000.0))
    telemetry = TelemetryStore(engine.observation_dir / TELEMETRY_FILENAME)
    try:
        telemetry.ingest(Samples.from_rows(rows))
        telemetry.rollup()
    finally:
        telemetry.close()
    logs = LogStore(engine.observation_dir / LOGS_FILENAME)
    try:
        lines = [
            LogLine(start + i * 60_000, f"web-{1 + i % 2}", "tribes", f"tick {i} players {i * 3}", 6, i)
            for i in range(50)
        ]
        lines.append(LogLine(now_ms - 1000, "web-1", "kernel", "disk almost FULL on /", 3, 99))
        logs.append(lines)
    finally:
        logs.close()


async def reported_frame(engine: Engine) -> pd.DataFrame:
    """The snapshot frame once every resource's actor has reported a state (none ``unknown``), so
    the frame holds still while the daemon's copy of it is read."""
    for _ in range(400):
        frame = await engine.snapshot_frame()
        if "unknown" not in set(frame["state"]):
            return frame
        await asyncio.sleep(0.005)
    raise AssertionError(f"an actor never reported: {frame['state'].tolist()}")


async def test_frames_through_the_daemon_equal_the_in_process_ones(runtime_dir: Path, tmp_path: Path) -> None:
    engine = await legion_nb.sandbox(seed=3, providers=("hetzner",))
    try:
        fill_stores(engine, int(time.time() * 1000))
        running = await start_daemon(engine.state_path, engine)
        remote = await connect_if_alive(engine.state_path, TOKEN)
        assert remote is not None
        try:
            for args in ({"tier": "raw"}, {"tier": "1m", "since": "2h"}, {"tier": "5m", "nodes": "web-2"}):
                local = await engine.telemetry(**args)
                assert not local.empty
                pd.testing.assert_frame_equal(await remote.telemetry(**args), local)
            for args in ({}, {"text": "full"}, {"nodes": ["web-2"], "limit": 5}, {"level": "err"}):
                local = await engine.logs(**args)
                assert not local.empty
                pd.testing.assert_frame_equal(await remote.logs(**args), local)
            # A planned server brings the cluster's derived firewall and its warning: the warnings
            # column (text, <NA> where there is none) is equal on both sides too.
            await engine.plan_upsert_server(name="web-1", provider="hetzner")
            snapshot = await reported_frame(engine)
            assert snapshot["warnings"].notna().any() and snapshot["warnings"].isna().any()
            pd.testing.assert_frame_equal(await remote.snapshot_frame(), snapshot)
            fields = await engine.diff_frame()
            assert fields["warnings"].notna().any()
            pd.testing.assert_frame_equal(await remote.diff_frame(), fields)
            pd.testing.assert_frame_equal(
                await remote.catalog_frame("hetzner"), await engine.catalog_frame("hetzner")
            )
            out = tmp_path / "remote.parquet"
            written = await remote.telemetry_export(out, tier="1m", since=dt.timedelta(hours=2))
            assert written["rows"] == len(pd.read_parquet(out))
        finally:
            await remote.aclose()
            await running.finish()
    finally:
        await engine.aclose()


async def test_telemetry_and_log_frames_have_the_analysts_dtypes(tmp_path: Path) -> None:
    engine = await legion_nb.sandbox(seed=4, providers=("hetzner",))
    try:
        now_ms = int(time.time() * 1000)
        fill_stores(engine, now_ms)
        raw = await engine.telemetry(metrics=[CPU])
        assert isinstance(raw.index, pd.DatetimeIndex) and str(raw.index.tz) == "UTC"
        assert {str(raw[c].dtype) for c in ("node", "metric", "device")} == {"category"}
        assert set(raw["node"]) == {"web-1", "web-2"} and len(raw) == 480
        assert raw.index.is_monotonic_increasing
        minute = await engine.telemetry(tier="1m", metrics=CPU, nodes="web-1")
        resampled = raw[raw["node"] == "web-1"]["value"].resample("1min").agg(["count", "sum", "min", "max"])
        resampled = resampled[resampled["count"] > 0]
        assert minute["count"].tolist() == resampled["count"].tolist()
        assert minute["sum"].tolist() == pytest.approx(resampled["sum"].tolist(), abs=0)
        assert minute["max"].tolist() == resampled["max"].tolist()
        assert len(minute.groupby("node", observed=True)["mean"].mean()) == 1

        logs = await engine.logs(text="FULL")
        assert logs["text"].tolist() == ["disk almost FULL on /"]
        assert str(logs["level"].dtype) == "category" and logs["level"].cat.ordered
        assert logs["level"].iloc[0] == "err" and logs["seq"].iloc[0] == 99
        tail = await engine.logs(after_id=int((await engine.logs(limit=3))["id"].iloc[0]) - 1, limit=2)
        assert len(tail) == 2 and tail["id"].is_monotonic_increasing
        recent = await engine.logs(since="10m")
        assert recent["text"].tolist() == ["disk almost FULL on /"]

        csv = tmp_path / "cpu.csv"
        written = await engine.telemetry_export(str(csv), format="csv", metrics=[CPU], tier="5m")
        assert written == {"path": str(csv), "format": "csv", "rows": len(pd.read_csv(csv))}
        parquet = tmp_path / "all.parquet"
        await engine.telemetry_export(str(parquet))
        back = pd.read_parquet(parquet)
        assert len(back) == 960 and str(back["node"].dtype) == "category"

        catalog = await engine.catalog_frame("hetzner")
        assert isinstance(catalog["monthly"].iloc[0], Decimal) and set(catalog["currency"]) == {"EUR"}
        assert list(catalog.index.names) == ["server_type", "location"]
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"tier": "2m"}, "unknown telemetry tier"),
        ({"since": "yesterday"}, "duration 'yesterday' is not valid"),
        ({"since": "1h", "start": "2026-01-01T00:00:00Z"}, "either since"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "start must lie before"),
        ({"start": "noon"}, "not an ISO 8601 time"),
        ({"nodes": []}, "nodes must be a name"),
    ],
)
async def test_bad_telemetry_arguments_are_one_line_usage_errors(
    args: dict[str, object], message: str
) -> None:
    engine = await legion_nb.sandbox(seed=5, providers=("hetzner",))
    try:
        with pytest.raises(UsageError, match=message):
            await engine.telemetry(**args)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="unknown export format"):
            await engine.telemetry_export("/tmp/x.json", format="json")
        with pytest.raises(UsageError, match="must be absolute"):
            await engine.telemetry_export("x.parquet")
        with pytest.raises(UsageError, match="log limit 0"):
            await engine.logs(limit=0)
        with pytest.raises(UsageError, match="unknown log level"):
            await engine.logs(level="loud")
    finally:
        await engine.aclose()
