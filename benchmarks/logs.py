"""Figures for the log store: backfill rate, term and substring query latency, index size.

Run: ``.venv/bin/python benchmarks/logs.py [--lines 1000000]``. Fills a store with journal lines
from the sandbox nodes' own generator (20 nodes, pages of 1,000 lines with their cursor, as the
collector writes them), then times searches newest-first with a limit of 100. Asserts nothing.
Goals (GUIDE §5): over 1 million lines a term query p95 < 50 ms, a substring query p95 < 300 ms,
index size at most 1.0x the raw text.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from legion_nb.emulators.nodes.journal_history import JournalHistory
from legion_nb.engine.observe.log_store import LogLine, LogStore

NODES = 20
TERMS = (
    "joined",
    "rotated",
    "overrun",
    "heartbeat",
    "publickey",
    "orphan",
    "Katabatic",
    "apt",
    "synced",
    "left",
)
SUBSTRINGS = (
    "ned fr",
    "127.4",
    "Blaze4",
    "ms (bu",
    "eted",
    "ey for leg",
    "ated to Sa",
    "r 9",
    "Ion1",
    "CMD (/",
)


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    per_node = args.lines // NODES
    end = 1_764_547_200.0
    with tempfile.TemporaryDirectory() as tmp:
        store = LogStore(Path(tmp) / "logs.db")
        histories = [
            JournalHistory(f"node-{n:02d}", seed=3, end=end, hours=per_node / 180) for n in range(NODES)
        ]
        started = time.perf_counter()
        for first in range(1, per_node + 1, 1000):
            for history in histories:
                page = history.lines(after=first - 1, limit=1000)
                lines = [
                    LogLine(
                        int(line.time * 1000),
                        history.hostname,
                        line.unit,
                        line.message,
                        line.priority,
                        line.seq,
                    )
                    for line in page
                ]
                store.append(lines, cursor=(f"journal:{history.hostname}", page[-1].seq))
        backfill = time.perf_counter() - started
        total = store.count()
        started = time.perf_counter()
        store.optimize()
        print(f"index optimize                 {time.perf_counter() - started:>12.2f} s")
        print(f"backfill                       {total / backfill:>12,.0f} lines/s   ({total:,} lines)")
        ratio = store.index_bytes() / store.text_bytes()
        print(f"index size / raw text          {ratio:>12.2f} x         goal <= 1.0")
        for name, needles, goal in (("term", TERMS, 50), ("substring", SUBSTRINGS, 300)):
            timings = []
            for _ in range(5):
                for needle in needles:
                    started = time.perf_counter()
                    store.search(text=needle, limit=100)
                    timings.append(time.perf_counter() - started)
            print(f"{name + ' query p95':<30} {_p95(timings):>12.1f} ms        goal < {goal}")
        timings = []
        for needle in TERMS:
            started = time.perf_counter()
            store.search(text=needle, nodes=["node-07"], limit=100)
            timings.append(time.perf_counter() - started)
        print(f"{'term + node label p95':<30} {_p95(timings):>12.1f} ms")
        store.close()


if __name__ == "__main__":
    main()
