"""The telemetry store: raw samples and their 1m/5m/1h rollups in one SQLite file.

Layout, and why:

- A *series* is one (node, metric, device); it gets a small integer id and remembers the newest
  sample time it holds (``last_ms``), so a sample at or before that time is a duplicate and is
  dropped. Collectors fetch by cursor and commit the cursor in the same transaction as the samples,
  so a killed collector neither loses nor repeats samples; ``last_ms`` is the second line of defence
  when two processes collect the same node.
- Raw samples are packed per series and hour into one blob of 12-byte records (milliseconds into
  the hour as ``uint32``, value as ``float64``). One row per series-hour keeps a raw sample at about
  12.5 bytes on disk (a row per sample costs twice that), makes ingest one upsert per series-hour
  instead of one per sample, and decodes with one ``numpy.frombuffer``.
- Rollups hold ``count``, ``sum``, ``min`` and ``max`` per bucket, never an average, so any coarser
  view (or a mean over a window) is exact arithmetic on them. Every bucket of every tier lies inside
  one hour, so an hour that received samples is simply recomputed from its raw blob: rollups are
  idempotent and never drift from the raw data. Ingest marks such hours dirty; :meth:`rollup`
  recomputes them in bounded batches (one transaction each).
- Retention is per tier, whole hours at a time.

All methods block; the collectors call them from a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from legion_nb.engine.observe.metrics import SeriesKey
from legion_nb.engine.sqlite_file import SqliteFile
from legion_nb.errors import UsageError

__all__ = [
    "TIERS",
    "IngestReport",
    "Retention",
    "Samples",
    "TelemetryColumns",
    "TelemetryStore",
    "Tier",
]

Tier = Literal["raw", "1m", "5m", "1h"]
TIERS: dict[Tier, int] = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}
"""Bucket width of each rollup tier, in milliseconds."""

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RAW_RECORD = np.dtype([("off", "<u4"), ("value", "<f8")])
AGG_RECORD = np.dtype([("off", "<u4"), ("count", "<u4"), ("sum", "<f8"), ("min", "<f8"), ("max", "<f8")])

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_TABLES: dict[Tier, str] = {"raw": "raw", "1m": "agg_1m", "5m": "agg_5m", "1h": "agg_1h"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    metric TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
    last_ms INTEGER NOT NULL DEFAULT -9223372036854775808,
    UNIQUE (node, metric, device)
);
CREATE TABLE IF NOT EXISTS raw (
    series INTEGER NOT NULL, hour INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (series, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_1m (
    series INTEGER NOT NULL, hour INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (series, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_5m (
    series INTEGER NOT NULL, hour INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (series, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_1h (
    series INTEGER NOT NULL, hour INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (series, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dirty (
    series INTEGER NOT NULL, hour INTEGER NOT NULL, PRIMARY KEY (series, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, position INTEGER NOT NULL)
"""

_APPEND = (
    "INSERT INTO raw (series, hour, data) VALUES (?, ?, ?) "
    "ON CONFLICT (series, hour) DO UPDATE SET data = CAST(raw.data || excluded.data AS BLOB)"
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each tier is kept, in days (whole hours are dropped)."""

    raw_days: float = 8
    m1_days: float = 35
    m5_days: float = 190
    h1_days: float = 800

    def days(self, tier: Tier) -> float:
        return {"raw": self.raw_days, "1m": self.m1_days, "5m": self.m5_days, "1h": self.h1_days}[tier]


@dataclass(frozen=True, slots=True)
class Samples:
    """A columnar batch of samples: sample ``i`` belongs to ``series[index[i]]`` and was taken at
    ``time_ms[i]`` (milliseconds since the Unix epoch, UTC)."""

    series: tuple[SeriesKey, ...]
    index: Int64s
    time_ms: Int64s
    value: Floats

    def __post_init__(self) -> None:
        if not len(self.index) == len(self.time_ms) == len(self.value):
            raise UsageError("a sample batch needs as many series indexes and times as values")

    def __len__(self) -> int:
        return len(self.value)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[SeriesKey, int, float]]) -> Samples:
        """A batch from ``(series, time_ms, value)`` rows (the convenient, slower way in)."""
        positions: dict[SeriesKey, int] = {}
        index: list[int] = []
        times: list[int] = []
        values: list[float] = []
        for key, at, value in rows:
            index.append(positions.setdefault(key, len(positions)))
            times.append(at)
            values.append(value)
        return cls(
            tuple(positions),
            np.asarray(index, dtype=np.int64),
            np.asarray(times, dtype=np.int64),
            np.asarray(values, dtype=np.float64),
        )


@dataclass(frozen=True, slots=True)
class IngestReport:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class TelemetryColumns:
    """A query result as columns: ``codes[i]`` indexes ``series``; ``values`` holds ``value`` for
    the raw tier and ``count``/``sum``/``min``/``max`` for rollups."""

    tier: Tier
    series: tuple[SeriesKey, ...]
    codes: Int64s
    time_ms: Int64s
    values: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.time_ms)


class TelemetryStore:
    """Raw samples and rollups for every observed node, in ``path`` (created 0600 in a 0700 dir)."""

    def __init__(self, path: Path, *, retention: Retention | None = None) -> None:
        self._file = SqliteFile(path, SCHEMA)
        self.retention = retention or Retention()
        self._ids: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._fresh: dict[SeriesKey, int] = {}  # ids created by the open transaction
        with self._file.read() as db:
            for sid, node, metric, device in db.execute("SELECT id, node, metric, device FROM series"):
                self._remember(SeriesKey(node, metric, device), sid)

    @property
    def path(self) -> Path:
        return self._file.path

    def close(self) -> None:
        self._file.close()

    def size_bytes(self) -> int:
        return self._file.size_bytes()

    # -- writing -------------------------------------------------------------------------------

    def ingest(self, samples: Samples, *, cursor: tuple[str, int] | None = None) -> IngestReport:
        """Store ``samples`` and, in the same transaction, move ``cursor`` (source, position).

        Samples at or before the newest stored time of their series, and repeats within the batch,
        are dropped and counted as duplicates.
        """
        if len(samples) == 0:
            if cursor is not None:
                with self._file.write() as db:
                    _set_cursor(db, *cursor)
            return IngestReport(0, 0)
        with self._file.write() as db:
            ids = self._series_ids(db, samples.series)
            sid = ids[samples.index]
            at = samples.time_ms.astype(np.int64, copy=False)
            value = samples.value.astype(np.float64, copy=False)
            order = np.lexsort((at, sid))
            sid, at, value = sid[order], at[order], value[order]
            keep = np.ones(len(sid), dtype=bool)
            keep[:-1] = (sid[1:] != sid[:-1]) | (at[1:] != at[:-1])  # the last of equal times wins
            last = self._last_ms(db, np.unique(sid))
            keep &= at > last[np.searchsorted(last["id"], sid)]["last"]
            sid, at, value = sid[keep], at[keep], value[keep]
            if len(sid):
                self._append(db, sid, at, value)
            if cursor is not None:
                _set_cursor(db, *cursor)
        self._ids_committed()
        return IngestReport(len(sid), int(len(samples) - len(sid)))

    def _append(self, db: Any, sid: Int64s, at: Int64s, value: Floats) -> None:
        hour = at // HOUR_MS
        records = np.empty(len(sid), dtype=RAW_RECORD)
        records["off"] = at - hour * HOUR_MS
        records["value"] = value
        starts = _run_starts(sid, hour)
        ends = [*starts[1:].tolist(), len(sid)]
        run_sid = sid[starts].tolist()
        run_hour = hour[starts].tolist()
        payload = records.tobytes()
        size = RAW_RECORD.itemsize
        rows = [
            (s, h, payload[a * size : b * size])
            for s, h, a, b in zip(run_sid, run_hour, starts.tolist(), ends, strict=True)
        ]
        db.executemany(_APPEND, rows)
        db.executemany("INSERT OR IGNORE INTO dirty (series, hour) VALUES (?, ?)", [r[:2] for r in rows])
        series_ends = [*np.flatnonzero(np.diff(sid)).tolist(), len(sid) - 1]
        db.executemany(
            "UPDATE series SET last_ms = max(last_ms, ?) WHERE id = ?",
            [(int(at[i]), int(sid[i])) for i in series_ends],
        )

    def rollup(self, *, max_hours: int = 20_000) -> int:
        """Recompute the rollups of up to ``max_hours`` series-hours that received samples; returns
        how many it did (call until 0 to catch up)."""
        with self._file.write() as db:
            rows = db.execute(
                "SELECT r.series, r.hour, r.data FROM dirty d JOIN raw r "
                "ON r.series = d.series AND r.hour = d.hour ORDER BY d.series, d.hour LIMIT ?",
                (max_hours,),
            ).fetchall()
            stale = db.execute(
                "SELECT count(*) FROM dirty d WHERE NOT EXISTS "
                "(SELECT 1 FROM raw r WHERE r.series = d.series AND r.hour = d.hour)"
            ).fetchone()[0]
            if stale:  # raw hours dropped by retention before they were rolled up
                db.execute(
                    "DELETE FROM dirty WHERE NOT EXISTS "
                    "(SELECT 1 FROM raw r WHERE r.series = dirty.series AND r.hour = dirty.hour)"
                )
            if not rows:
                return 0
            sid, hour, records = _decode(rows, RAW_RECORD)
            order = np.lexsort((records["off"], hour, sid))
            sid, hour, records = sid[order], hour[order], records[order]
            for tier, width in TIERS.items():
                bucket = records["off"] // width * width
                starts = _run_starts(sid, hour, bucket)
                agg = np.empty(len(starts), dtype=AGG_RECORD)
                agg["off"] = bucket[starts]
                agg["count"] = np.diff(np.append(starts, len(sid)))
                agg["sum"] = np.add.reduceat(records["value"], starts)
                agg["min"] = np.minimum.reduceat(records["value"], starts)
                agg["max"] = np.maximum.reduceat(records["value"], starts)
                self._write_buckets(db, _TABLES[tier], sid[starts], hour[starts], agg)
            db.executemany(
                "DELETE FROM dirty WHERE series = ? AND hour = ?", [(row[0], row[1]) for row in rows]
            )
        return len(rows)

    @staticmethod
    def _write_buckets(db: Any, table: str, sid: Int64s, hour: Int64s, agg: npt.NDArray[Any]) -> None:
        starts = _run_starts(sid, hour)
        ends = [*starts[1:].tolist(), len(sid)]
        payload = agg.tobytes()
        size = AGG_RECORD.itemsize
        db.executemany(
            f"INSERT OR REPLACE INTO {table} (series, hour, data) VALUES (?, ?, ?)",  # noqa: S608 - fixed names
            [
                (s, h, payload[a * size : b * size])
                for s, h, a, b in zip(
                    sid[starts].tolist(), hour[starts].tolist(), starts.tolist(), ends, strict=True
                )
            ],
        )

    def apply_retention(self, *, now_ms: int | None = None) -> int:
        """Drop the hours each tier keeps no longer; returns the series-hours removed."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        removed = 0
        with self._file.write() as db:
            for tier, table in _TABLES.items():
                cutoff = int((now - self.retention.days(tier) * DAY_MS) // HOUR_MS)
                removed += db.execute(f"DELETE FROM {table} WHERE hour < ?", (cutoff,)).rowcount  # noqa: S608
        return removed

    def set_cursor(self, source: str, position: int) -> None:
        with self._file.write() as db:
            _set_cursor(db, source, position)

    # -- reading -------------------------------------------------------------------------------

    def cursor(self, source: str) -> int | None:
        """Where collection from ``source`` stopped (its own position value), or None."""
        with self._file.read() as db:
            row = db.execute("SELECT position FROM cursors WHERE source = ?", (source,)).fetchone()
        return None if row is None else int(row[0])

    def series(self) -> tuple[SeriesKey, ...]:
        """Every stored series, sorted."""
        with self._file.read() as db:
            rows = db.execute("SELECT node, metric, device FROM series").fetchall()
        return tuple(sorted(SeriesKey(*row) for row in rows))

    def pending_rollup(self) -> int:
        with self._file.read() as db:
            return int(db.execute("SELECT count(*) FROM dirty").fetchone()[0])

    def query(
        self,
        *,
        nodes: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        tier: Tier = "raw",
    ) -> TelemetryColumns:
        """Samples (``tier="raw"``) or rollup buckets of the matching series with ``start_ms <= time
        < end_ms``, ordered by series then time."""
        if tier not in _TABLES:
            raise UsageError(f"unknown telemetry tier {tier!r}: use raw, 1m, 5m or 1h")
        wanted = [
            (key, sid)
            for key, sid in sorted(self._ids.items())
            if (nodes is None or key.node in nodes) and (metrics is None or key.metric in metrics)
        ]
        keys = tuple(key for key, _ in wanted)
        record = RAW_RECORD if tier == "raw" else AGG_RECORD
        if not wanted:
            return _empty(tier, keys, record)
        low = -(2**62) if start_ms is None else start_ms // HOUR_MS
        high = 2**62 if end_ms is None else end_ms // HOUR_MS
        position = {sid: i for i, (_, sid) in enumerate(wanted)}
        marks = ",".join("?" * len(position))
        with self._file.read() as db:
            rows = db.execute(
                f"SELECT series, hour, data FROM {_TABLES[tier]} "  # noqa: S608 - fixed names, bound values
                f"WHERE series IN ({marks}) AND hour BETWEEN ? AND ? ORDER BY series, hour",
                (*position, low, high),
            ).fetchall()
        if not rows:
            return _empty(tier, keys, record)
        sid, hour, records = _decode(rows, record)
        at = hour * HOUR_MS + records["off"].astype(np.int64)
        order = np.lexsort((at, sid))
        sid, at, records = sid[order], at[order], records[order]
        keep = np.ones(len(at), dtype=bool)
        if start_ms is not None:
            keep &= at >= start_ms
        if end_ms is not None:
            keep &= at < end_ms
        lookup = np.zeros(max(position) + 1, dtype=np.int64)
        lookup[list(position)] = list(position.values())
        codes = lookup[sid[keep]]
        names = ("value",) if tier == "raw" else ("count", "sum", "min", "max")
        return TelemetryColumns(
            tier, keys, codes, at[keep], {name: np.ascontiguousarray(records[name][keep]) for name in names}
        )

    # -- series ids ----------------------------------------------------------------------------

    def _remember(self, key: SeriesKey, sid: int) -> None:
        self._ids[key] = sid
        self._keys[sid] = key

    def _series_ids(self, db: Any, keys: Sequence[SeriesKey]) -> Int64s:
        self._fresh = {}
        ids = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            sid = self._ids.get(key)
            if sid is None:
                db.execute(
                    "INSERT INTO series (node, metric, device) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (key.node, key.metric, key.device),
                )
                sid = int(
                    db.execute(
                        "SELECT id FROM series WHERE node = ? AND metric = ? AND device = ?",
                        (key.node, key.metric, key.device),
                    ).fetchone()[0]
                )
                self._fresh[key] = sid
            ids[i] = sid
        return ids

    def _ids_committed(self) -> None:
        for key, sid in self._fresh.items():
            self._remember(key, sid)
        self._fresh = {}

    @staticmethod
    def _last_ms(db: Any, sids: Int64s) -> npt.NDArray[Any]:
        marks = ",".join("?" * len(sids))
        rows = db.execute(
            f"SELECT id, last_ms FROM series WHERE id IN ({marks}) ORDER BY id",  # noqa: S608 - bound values
            sids.tolist(),
        ).fetchall()
        return np.array(rows, dtype=[("id", np.int64), ("last", np.int64)])


def _set_cursor(db: Any, source: str, position: int) -> None:
    db.execute(
        "INSERT INTO cursors (source, position) VALUES (?, ?) "
        "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
        (source, int(position)),
    )


def _run_starts(*keys: npt.NDArray[Any]) -> Int64s:
    """Indexes where any of the (sorted) key columns changes value, starting with 0."""
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change).astype(np.int64)


def _decode(rows: list[Any], record: np.dtype[Any]) -> tuple[Int64s, Int64s, npt.NDArray[Any]]:
    counts = np.fromiter((len(row[2]) // record.itemsize for row in rows), dtype=np.int64, count=len(rows))
    sid = np.repeat(np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)), counts)
    hour = np.repeat(np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows)), counts)
    records = np.frombuffer(b"".join(row[2] for row in rows), dtype=record)
    return sid, hour, records


def _empty(tier: Tier, keys: tuple[SeriesKey, ...], record: np.dtype[Any]) -> TelemetryColumns:
    names = ("value",) if tier == "raw" else ("count", "sum", "min", "max")
    empty = np.empty(0, dtype=record)
    return TelemetryColumns(
        tier, keys, np.empty(0, np.int64), np.empty(0, np.int64), {n: empty[n].copy() for n in names}
    )
