"""Figures for the engine's pure parts and its snapshot publication (prints numbers, asserts nothing).

Run: ``.venv/bin/python benchmarks/engine.py``. CPU times (``time.process_time``, best of N) so that a
busy shared machine disturbs them less than wall-clock times would.

* codec: encode/decode of a synthetic N-server state, against the goal "decode far below 10% of an
  Argon2id derivation" (the derivation is measured here too, with the state file's parameters);
* diff and one planning action on that state;
* snapshot coalescing: M concurrent plan changes on a real unlocked engine, and how many snapshot
  publications they caused.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from argon2.low_level import Type, hash_secret_raw

from legion_nb.engine import planning
from legion_nb.engine.diff import diff
from legion_nb.engine.runtime import create_engine, snapshot_of
from legion_nb.engine.state.model import decode_state, encode_state, synthetic_state


def cpu_ms(fn: Callable[[], object], repeat: int = 9) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1000


def wall_median_ms(fn: Callable[[], object], repeat: int = 9) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def argon2_ms() -> float:
    def derive() -> None:
        hash_secret_raw(
            b"benchmark",
            b"0123456789abcdef",
            time_cost=3,
            memory_cost=65536,
            parallelism=4,
            hash_len=32,
            type=Type.ID,
        )

    return wall_median_ms(derive, repeat=5)


async def coalescing(changes: int) -> tuple[int, int, float]:
    """``changes`` concurrent plan changes: how many snapshots were published until the engine fell
    quiet (the commits and the actors they started, paced at ten a second), and how long the
    changes took to be durable."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(Path(tmp) / "bench.legion")
        await engine.bootstrap("benchmark password")
        stream = engine.subscribe(["snapshot"])
        await stream.__anext__()
        start = time.perf_counter()
        await asyncio.gather(
            *(engine.plan_upsert_server(name=f"s{i}", provider="hetzner") for i in range(changes))
        )
        elapsed = time.perf_counter() - start
        published = 0
        while True:  # until the actors the plan called for are started and it falls quiet
            try:
                await asyncio.wait_for(stream.__anext__(), 0.3)
            except TimeoutError:
                break
            published += 1
        await stream.aclose()
        await engine.aclose()
        return changes, published, elapsed


def main() -> None:
    servers = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    state = synthetic_state(servers)
    payload = encode_state(state)
    kdf = argon2_ms()
    decode = cpu_ms(lambda: decode_state(payload))
    parse = cpu_ms(lambda: orjson.loads(payload))
    print(f"state: {servers} servers, payload {len(payload) / 1e6:.2f} MB")
    print(f"argon2id m=64MiB t=3 p=4 derivation (wall, median of 5): {kdf:.0f} ms")
    decode_wall = wall_median_ms(lambda: decode_state(payload))
    print(f"decode_state: {decode:.1f} ms cpu (best of 9), {decode_wall:.1f} ms wall (median of 9)")
    print(f"  = {100 * decode_wall / kdf:.1f}% of the derivation, wall to wall (goal: far below 10%)")
    print(f"  of which JSON parsing (orjson): {parse:.1f} ms cpu")
    print(f"encode_state: {cpu_ms(lambda: encode_state(state)):.1f} ms")
    diff_ms, rows_ms = cpu_ms(lambda: diff(state)), cpu_ms(lambda: snapshot_of(state, 1))
    print(f"diff: {diff_ms:.1f} ms; snapshot rows (diff included): {rows_ms:.1f} ms")
    upsert = cpu_ms(lambda: planning.upsert_server(state, name="node-00007", provider="ovh"), repeat=50)
    zone = cpu_ms(
        lambda: planning.upsert_dns_zone(state, zone="bench.example.org", provider="ovh"), repeat=50
    )
    print(f"planning on {servers} servers: upsert_server {upsert * 1000:.0f} us, ", end="")
    print(f"upsert_dns_zone {zone * 1000:.0f} us")
    changes, published, elapsed = asyncio.run(coalescing(200))
    print(
        f"coalescing: {changes} concurrent durable plan changes in {elapsed * 1000:.0f} ms "
        f"({changes / elapsed:.0f} changes/s) -> {published} snapshot publication(s) until quiet"
    )


if __name__ == "__main__":
    main()
