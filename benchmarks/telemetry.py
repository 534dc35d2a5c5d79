"""Figures for the telemetry store: ingest, rollup, bytes per sample, queries, frames.

Run: ``.venv/bin/python benchmarks/telemetry.py [--samples 10000000]``. Builds a store of
``--samples`` one-minute samples (16 nodes x 14 series, as many days as that makes), then prints
each figure next to its goal. Asserts nothing. Goals (GUIDE §5): ingest >= 200,000 samples/s,
rollup of 10 million samples < 30 s on 2 cores, <= 32 bytes a raw sample, a 30-day hourly query for
one node < 50 ms, 1 million rows to a DataFrame < 1 s. Also printed: what 100,000 rows cost to
cross the daemon in the frame's wire form (no goal: the figure says when Arrow IPC would pay).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from legion_nb.emulators.nodes.telemetry import SERIES
from legion_nb.engine.frame_wire import frame_from_wire, frame_wire
from legion_nb.engine.observe.frames import telemetry_frame
from legion_nb.engine.observe.metrics import SeriesKey
from legion_nb.engine.observe.telemetry_store import Samples, TelemetryStore

NODES = 16
STEP_MS = 60_000
T0 = 1_764_547_200_000


def _line(name: str, value: float, unit: str, goal: str) -> None:
    print(f"{name:<44} {value:>12,.2f} {unit:<10} goal {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=10_000_000)
    args = parser.parse_args()
    keys = tuple(
        SeriesKey(f"node-{n:02d}", metric, device) for n in range(NODES) for metric, device in SERIES
    )
    steps = max(1, args.samples // len(keys))
    per_batch = 120  # two hours of every series per batch, as a collector catching up sends them
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = TelemetryStore(Path(tmp) / "telemetry.db")
        ingest_seconds = 0.0
        total = 0
        for first in range(0, steps, per_batch):
            count = min(per_batch, steps - first)
            index = np.tile(np.arange(len(keys), dtype=np.int64), count)
            times = np.repeat(T0 + (first + np.arange(count, dtype=np.int64)) * STEP_MS, len(keys))
            values = rng.random(len(index))
            started = time.perf_counter()
            store.ingest(Samples(keys, index, times, values), cursor=("bench", int(times[-1])))
            ingest_seconds += time.perf_counter() - started
            total += len(index)
        _line("ingest (batched, from numpy columns)", total / ingest_seconds, "samples/s", ">= 200,000")
        with store._file.read() as db:  # the raw tier alone, pages included
            raw_bytes = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'raw'").fetchone()[0]
        _line("raw tier on disk", raw_bytes / total, "B/sample", "<= 32")

        started = time.perf_counter()
        hours = 0
        while done := store.rollup():
            hours += done
        rollup = time.perf_counter() - started
        _line(f"rollup of {total / 1e6:.1f} M samples to 1m/5m/1h", rollup, "s", "< 30 (10 M samples)")

        days = min(30, steps * STEP_MS // 86_400_000)
        end = T0 + steps * STEP_MS
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            frame = telemetry_frame(
                store.query(nodes=["node-03"], start_ms=end - days * 86_400_000, tier="1h")
            )
            timings.append(time.perf_counter() - started)
        _line(f"{days}-day hourly query for one node (p50)", statistics.median(timings) * 1000, "ms", "< 50")
        print(f"{'':<44} ({len(frame):,} rows)")

        wanted = max(1, 1_000_000 // steps)
        metrics = sorted({key.metric for key in keys})[: min(len(SERIES), wanted)]
        nodes = [f"node-{n:02d}" for n in range(max(1, wanted // len(metrics)))]
        started = time.perf_counter()
        columns = store.query(nodes=nodes, metrics=metrics)
        queried = time.perf_counter() - started
        started = time.perf_counter()
        frame = telemetry_frame(columns)
        framed = time.perf_counter() - started
        _line(f"{len(frame) / 1e6:.2f} M raw rows: query", queried, "s", "")
        _line(f"{len(frame) / 1e6:.2f} M raw rows: to a DataFrame", framed, "s", "< 1 (1 M rows)")

        # What a frame costs to cross the daemon: the wire form as JSON and back to an equal frame.
        sample = frame.iloc[:100_000]
        started = time.perf_counter()
        wire = json.dumps(frame_wire(sample))
        encoded = time.perf_counter() - started
        started = time.perf_counter()
        back = frame_from_wire(json.loads(wire))
        decoded = time.perf_counter() - started
        assert back.equals(sample)
        _line(f"{len(sample):,} rows: frame to its JSON wire form", encoded, "s", "")
        _line(f"{len(sample):,} rows: wire form back to the frame", decoded, "s", "")
        _line("wire form size", len(wire) / len(sample), "B/row", "")
        store.close()


if __name__ == "__main__":
    main()
