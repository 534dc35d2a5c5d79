"""How close materialize comes to the best possible schedule (prints numbers, asserts nothing).

Run: ``.venv/bin/python benchmarks/materialize.py [--servers 10 50] [--provision-s 2] [--latency-ms 20]``.

Setup: an in-process sandbox (``legion_nb.emulators``) whose Hetzner emulator takes ``T`` seconds to
provision a server (create action + boot) and adds ``L`` ms to every request. The plan is one
cluster of N servers (type/location/image from the catalog policy), a DNS zone and one DNS host
pointing at every server, so the firewall set and the A records depend on all N endpoints.

For each N it prints the wall time of one ``materialize`` and compares it with:

* the **lower bound** ``T + serialized x L``: every server must provision once (overlapping
  perfectly), and the provider's request lane is serial, so the state-changing calls (one create per
  server, the firewall and record writes) cost at least ``L`` each one after another. Reads and
  polls are left out: they can overlap provisioning, so counting them would overstate the bound;
* the **calibrated bound** ``T + serialized x (L + c0)``, where ``c0`` is the measured cost of one
  request round trip with no added latency on this machine (client, emulator and their HTTP stacks
  share this process and its CPU, so a request costs more than ``L``);
* a **parallelism-10 schedule**: servers in batches of ten, ``ceil(N/10) x T + serialized x L``,
  which is what a worker pool of ten would need with the same calls.

The goal (GUIDE §5) is wall time within 1.3x of the lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.runtime import Engine
from legion_nb.sandbox_engine import sandbox, sandbox_cloud

CLUSTER_ZONE = "bench.example.org"


async def run_one(servers: int, provision_s: float, latency_ms: float) -> dict[str, float]:
    engine = await sandbox(
        seed=servers,
        latency_ms=latency_ms,
        action_seconds=provision_s * 0.75,
        boot_seconds=provision_s * 0.25,
        providers=("hetzner",),
    )
    try:
        world = sandbox_cloud(engine).world
        names = [f"node-{i:03d}" for i in range(servers)]
        for name in names:
            await engine.plan_upsert_server(name=name, provider="hetzner")
        await engine.plan_upsert_dns_zone(zone=CLUSTER_ZONE, provider="hetzner")
        await engine.plan_upsert_dns_host(host="www", zone=CLUSTER_ZONE, servers=names)
        c0 = await request_cost(engine, world)
        calls_before = world.counters.total("hetzner")
        mutations_before = world.counters.mutations("hetzner")
        start = time.perf_counter()
        report = await engine.materialize(yes=True)
        wall = time.perf_counter() - start
        if not report.ok:
            raise SystemExit(f"materialize failed: {report.summary}")
        calls = world.counters.total("hetzner") - calls_before
        mutations = world.counters.mutations("hetzner") - mutations_before
        noop_start = time.perf_counter()
        await engine.materialize(yes=True)
        noop = time.perf_counter() - noop_start
    finally:
        await engine.aclose()
    serial = mutations * latency_ms / 1000
    bound = provision_s + serial
    pool10 = math.ceil(servers / 10) * provision_s + serial
    return {
        "servers": servers,
        "c0": c0,
        "calibrated": bound + mutations * c0,
        "wall": wall,
        "calls": calls,
        "mutations": mutations,
        "bound": bound,
        "pool10": pool10,
        "noop": noop,
    }


async def request_cost(engine: Engine, world: SandboxWorld, requests: int = 40) -> float:
    """Seconds per sequential request through the broker with no added latency (best of 3 runs)."""
    latency, world.timing.latency_ms = world.timing.latency_ms, 0.0
    broker = engine.core.providers.broker
    best = float("inf")
    try:
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(requests):
                await broker.read("hetzner", "calibrate", lambda a: a.list_servers())
            best = min(best, (time.perf_counter() - start) / requests)
    finally:
        world.timing.latency_ms = latency
    return best


async def main(args: argparse.Namespace) -> None:
    print(f"T = {args.provision_s:g} s provisioning, L = {args.latency_ms:g} ms per request")
    header = (
        f"{'N':>4} {'wall s':>8} {'calls':>6} {'serial':>6} {'calls/srv':>9} {'bound s':>8} "
        f"{'wall/bound':>10} {'c0 ms':>6} {'cal. s':>7} {'wall/cal.':>9} {'pool10 s':>9} "
        f"{'wall/pool10':>11} {'no-op s':>8}"
    )
    print(header)
    for n in args.servers:
        r = await run_one(n, args.provision_s, args.latency_ms)
        print(
            f"{n:>4} {r['wall']:>8.2f} {r['calls']:>6.0f} {r['mutations']:>6.0f} "
            f"{r['calls'] / n:>9.2f} {r['bound']:>8.2f} {r['wall'] / r['bound']:>10.2f} "
            f"{r['c0'] * 1000:>6.1f} {r['calibrated']:>7.2f} {r['wall'] / r['calibrated']:>9.2f} "
            f"{r['pool10']:>9.2f} {r['wall'] / r['pool10']:>11.2f} {r['noop']:>8.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--provision-s", type=float, default=2.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    asyncio.run(main(parser.parse_args()))
