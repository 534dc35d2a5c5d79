"""The telemetry store: samples in, duplicates out, rollups that equal a resample of the raw data."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legion_nb.engine.frame_wire import frame_from_rows, frame_rows
from legion_nb.engine.observe.frames import telemetry_frame
from legion_nb.engine.observe.metrics import SeriesKey
from legion_nb.engine.observe.telemetry_store import HOUR_MS, Retention, Samples, TelemetryStore
from legion_nb.errors import UsageError

T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
CPU = SeriesKey("web-1", "instance:node_cpu_utilisation:rate5m")
DISK = SeriesKey("web-1", "node_filesystem_avail_bytes", "/")
OTHER = SeriesKey("web-2", "instance:node_cpu_utilisation:rate5m")


@pytest.fixture
def store(tmp_path: Path) -> TelemetryStore:
    opened = TelemetryStore(tmp_path / "state.logs" / "telemetry.db")
    yield opened  # type: ignore[misc]
    opened.close()


def test_files_are_private(store: TelemetryStore) -> None:
    store.ingest(Samples.from_rows([(CPU, T0, 0.5)]))
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    for path in store.path.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_ingest_then_query_raw(store: TelemetryStore) -> None:
    rows = [(CPU, T0 + i * 15_000, i / 10) for i in range(8)] + [(DISK, T0, 1e9), (OTHER, T0, 0.9)]
    report = store.ingest(Samples.from_rows(rows))
    assert (report.accepted, report.duplicates) == (10, 0)
    columns = store.query(nodes=["web-1"], metrics=[CPU.metric])
    assert columns.time_ms.tolist() == [T0 + i * 15_000 for i in range(8)]
    assert columns.values["value"].tolist() == [i / 10 for i in range(8)]
    assert store.series() == (CPU, DISK, OTHER)
    window = store.query(start_ms=T0 + 15_000, end_ms=T0 + 45_000, metrics=[CPU.metric])
    assert window.time_ms.tolist() == [T0 + 15_000, T0 + 30_000]


def test_repeats_and_older_samples_are_duplicates(store: TelemetryStore) -> None:
    store.ingest(Samples.from_rows([(CPU, T0 + i * 1000, float(i)) for i in range(5)]))
    again = store.ingest(Samples.from_rows([(CPU, T0 + i * 1000, 9.0) for i in range(7)]))
    assert (again.accepted, again.duplicates) == (2, 5)
    inside = store.ingest(Samples.from_rows([(CPU, T0 + 10_000, 1.0), (CPU, T0 + 10_000, 2.0)]))
    assert (inside.accepted, inside.duplicates) == (1, 1)
    columns = store.query()
    assert len(columns) == 8
    assert len(set(columns.time_ms.tolist())) == 8
    assert columns.values["value"][-1] == 2.0  # the last of equal times wins


def test_cursor_moves_with_the_samples(store: TelemetryStore) -> None:
    assert store.cursor("telemetry:web-1") is None
    store.ingest(Samples.from_rows([(CPU, T0, 1.0)]), cursor=("telemetry:web-1", T0))
    assert store.cursor("telemetry:web-1") == T0
    store.ingest(Samples.from_rows([]), cursor=("telemetry:web-1", T0 + 5))
    assert store.cursor("telemetry:web-1") == T0 + 5


def test_a_failed_batch_keeps_neither_samples_nor_cursor(store: TelemetryStore) -> None:
    bad = Samples((CPU,), np.array([0, 3]), np.array([T0, T0 + 1]), np.array([1.0, 2.0]))
    with pytest.raises(IndexError):
        store.ingest(bad, cursor=("telemetry:web-1", T0 + 1))
    assert store.cursor("telemetry:web-1") is None
    assert len(store.query()) == 0


def test_mismatched_columns_are_refused() -> None:
    with pytest.raises(UsageError, match="as many"):
        Samples((CPU,), np.array([0]), np.array([T0, T0]), np.array([1.0]))


def test_rollup_tiers_and_unknown_tier(store: TelemetryStore) -> None:
    store.ingest(Samples.from_rows([(CPU, T0 + i * 15_000, float(i % 4)) for i in range(8 * 60)]))
    assert store.pending_rollup() == 2
    assert store.rollup() == 2
    assert store.rollup() == 0
    hourly = store.query(tier="1h")
    assert hourly.time_ms.tolist() == [T0, T0 + HOUR_MS]
    assert hourly.values["count"].tolist() == [240, 240]
    assert hourly.values["min"].tolist() == [0.0, 0.0]
    assert hourly.values["max"].tolist() == [3.0, 3.0]
    assert hourly.values["sum"].tolist() == [360.0, 360.0]
    assert len(store.query(tier="1m")) == 120
    assert len(store.query(tier="5m")) == 24
    with pytest.raises(UsageError, match="tier"):
        store.query(tier="2m")  # type: ignore[arg-type]


def test_late_samples_of_an_hour_are_rolled_up_again(store: TelemetryStore) -> None:
    store.ingest(Samples.from_rows([(CPU, T0, 1.0)]))
    store.rollup()
    store.ingest(Samples.from_rows([(CPU, T0 + 60_000, 3.0)]))
    store.rollup()
    hourly = store.query(tier="1h")
    assert hourly.values["count"].tolist() == [2]
    assert hourly.values["sum"].tolist() == [4.0]


def test_retention_drops_whole_old_hours(store: TelemetryStore, tmp_path: Path) -> None:
    store.retention = Retention(raw_days=1, m1_days=1, m5_days=1, h1_days=10)
    store.ingest(Samples.from_rows([(CPU, T0, 1.0), (CPU, T0 + 3 * 86_400_000, 2.0)]))
    store.rollup()
    removed = store.apply_retention(now_ms=T0 + 3 * 86_400_000)
    assert removed == 3  # the old hour in raw, 1m and 5m; 1h keeps ten days
    assert store.query().values["value"].tolist() == [2.0]
    assert len(store.query(tier="1h")) == 2


def test_reopened_store_keeps_series_and_data(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "telemetry.db"
    first = TelemetryStore(path)
    first.ingest(Samples.from_rows([(CPU, T0, 1.0)]), cursor=("c", 1))
    first.close()
    second = TelemetryStore(path)
    try:
        assert second.ingest(Samples.from_rows([(CPU, T0, 5.0), (CPU, T0 + 1, 2.0)])).accepted == 1
        assert second.cursor("c") == 1
    finally:
        second.close()


def test_frames_are_tidy_and_survive_json(store: TelemetryStore) -> None:
    store.ingest(
        Samples.from_rows([(CPU, T0 + i * 60_000, 0.25 * i) for i in range(10)] + [(OTHER, T0, 0.5)])
    )
    store.rollup()
    raw = telemetry_frame(store.query())
    assert isinstance(raw.index, pd.DatetimeIndex) and str(raw.index.tz) == "UTC"
    assert raw.index.name == "time"
    assert list(raw.columns) == ["node", "metric", "device", "value"]
    assert raw["node"].dtype == "category"
    assert raw.index.is_monotonic_increasing
    assert raw.resample("5min")["value"].sum().iloc[0] == 0.25 * (0 + 1 + 2 + 3 + 4) + 0.5
    tier = telemetry_frame(store.query(tier="5m", nodes=["web-1"]))
    assert list(tier.columns) == ["node", "metric", "device", "mean", "min", "max", "sum", "count"]
    assert tier["count"].dtype == "int64"
    assert tier["mean"].iloc[0] == pytest.approx(0.5)
    rows = frame_rows(tier)
    assert rows[0]["time"] == "2025-12-01T00:00:00Z"
    back = frame_from_rows(rows, categories=["node", "metric", "device"], integers=["count"])
    pd.testing.assert_frame_equal(back, tier, check_categorical=False, check_freq=False)


# Values on a 1/64 grid below 2**20 add exactly in float64 whatever the order, so the property
# holds to the bit for sums as well as for count, min and max.
_values = st.integers(min_value=-(2**16), max_value=2**16).map(lambda n: n / 64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=3 * 3600), _values
        ),
        min_size=1,
        max_size=300,
    ),
    split=st.integers(min_value=0, max_value=300),
)
def test_rollups_equal_a_pandas_resample_of_the_raw_samples(
    tmp_path_factory: pytest.TempPathFactory, data: list[tuple[int, int, float]], split: int
) -> None:
    store = TelemetryStore(tmp_path_factory.mktemp("prop") / "telemetry.db")
    try:
        keys = [SeriesKey(f"n{i}", "m") for i in range(4)]
        rows = sorted({(s, T0 + sec * 1000): v for s, sec, v in data}.items())
        first, second = rows[:split], rows[split:]
        for part in (first, second):  # two batches: the second may land in hours already rolled up
            store.ingest(Samples.from_rows([(keys[s], at, v) for (s, at), v in part]))
            store.rollup()
        raw = pd.DataFrame(
            {"series": [s for (s, _), _ in rows], "value": [v for _, v in rows]},
            index=pd.to_datetime([at for (_, at), _ in rows], unit="ms", utc=True),
        )
        for tier, rule in (("1m", "1min"), ("5m", "5min"), ("1h", "1h")):
            got = telemetry_frame(store.query(tier=tier))  # type: ignore[arg-type]
            for s, key in enumerate(keys):
                mine = got[got["node"] == key.node]
                expected = raw[raw["series"] == s]["value"].resample(rule).agg(["sum", "count", "min", "max"])
                expected = expected[expected["count"] > 0]
                assert mine.index.tolist() == expected.index.tolist()
                for column in ("sum", "count", "min", "max"):
                    assert mine[column].tolist() == expected[column].tolist(), (tier, column)
    finally:
        store.close()
