"""What observation costs: CPU, provider calls, and its effect on a materialize (prints, asserts nothing).

Run: ``.venv/bin/python benchmarks/observation.py [--nodes 100] [--servers 20]``.

1. **CPU share for N observed nodes.** N admin APIs (the sandbox nodes' own aiohttp app over a
   ``NodeSystem`` each, on 127.78.x.y) run in a *separate process*, so only the engine side is
   measured: the node observation pass (health, readiness, metrics per node, classification, the
   verdicts handed on) plus the steady-state telemetry and journal collection into the SQLite stores
   (after a first catch-up pass). The process CPU time of one pass of each, divided by its interval
   (nodes 30 s, telemetry 60 s, logs 30 s), is the share of one core the scheduler keeps busy. The
   admin APIs speak plain HTTP here (kept-alive connections, as the client pool keeps them on real
   nodes, where TLS adds only record encryption after the first handshake). Goal: under 5 %.
2. **Provider calls per minute.** A sandbox Hetzner project with the servers of a materialized
   cluster: one provider refresh and one catalog refresh (the provider-heavy concerns), counted in
   requests at the emulator, scaled to their default intervals (5 min, 1 h) and compared with the
   configured share of Hetzner's 3,600 requests an hour.
3. **Materialize with and without the scheduler.** The same materialize of S servers, once with the
   scheduler off and once with it running at short intervals (refresh every 0.5 s, catalogs every
   1 s, so it tries to run throughout); wall times, their ratio (goal: within 10 %) and the 429s
   that background calls met (goal: none).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from legion_nb.engine.observe.collection import NodeCollection
from legion_nb.engine.observe.node_observation import AdminClientPool, NodeObservation, ObservedNode
from legion_nb.engine.observe.scheduler import ObservationSettings
from legion_nb.engine.runtime import Engine
from legion_nb.providers.node_admin import NodeAdminClient
from legion_nb.sandbox_engine import sandbox, sandbox_cloud

INTERVALS = {"nodes": 30.0, "telemetry": 60.0, "logs": 30.0}


def _address(i: int) -> str:
    return f"127.78.{i // 250}.{i % 250 + 1}"


def _serve_nodes(count: int, port: int, ready: Connection) -> None:
    """The N admin APIs, in their own process until it is terminated."""
    from aiohttp import web  # noqa: PLC0415

    from legion_nb.emulators.nodes.admin_api import TangKeys, create_admin_app  # noqa: PLC0415
    from legion_nb.emulators.nodes.system import NodeSystem  # noqa: PLC0415

    async def main() -> None:
        tang = TangKeys()
        runners = []
        for i in range(count):
            system = NodeSystem(hostname=f"n{i:03d}", cloud_host_key="", seed=i, history_hours=0.0)
            system.phase = "installed"
            system.installed_host_key = "k"
            system.admin_api_active = True
            system.sync_listening = True
            system.tribes_config = {"peers": []}
            system.tribes_active_since = 0.0
            runner = web.AppRunner(create_admin_app(system, tang), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, _address(i), port).start()
            runners.append(runner)
        ready.send("up")
        await asyncio.Event().wait()

    asyncio.run(main())


class _PlainClients:
    def __init__(self, port: int) -> None:
        self._port = port

    def admin_client(self, node: str) -> NodeAdminClient:
        import ssl  # noqa: PLC0415

        i = int(node[1:])
        return NodeAdminClient(node, f"http://{_address(i)}:{self._port}", ssl.create_default_context())


async def cpu_share(nodes: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve_nodes, args=(nodes, port, child))
    server.start()
    try:
        parent.recv()
        targets = [ObservedNode(f"n{i:03d}", "cluster", _address(i)) for i in range(nodes)]
        pool = AdminClientPool(_PlainClients(port))
        observation = NodeObservation(pool, lambda: targets, interval=INTERVALS["nodes"])
        with tempfile.TemporaryDirectory() as directory:
            async with NodeCollection(Path(directory), pool, lambda: targets) as collection:
                await observation.poll()  # connections opened, like any pass after the first
                await collection.collect_telemetry()  # catch-up
                await collection.collect_logs()
                costs: dict[str, list[float]] = {"nodes": [], "telemetry": [], "logs": []}
                for _ in range(5):
                    await asyncio.sleep(1.0)  # let the nodes sample and log something new
                    for name, run in (
                        ("nodes", observation.poll),
                        ("telemetry", collection.collect_telemetry),
                        ("logs", collection.collect_logs),
                    ):
                        before = time.process_time()
                        await run()
                        costs[name].append(time.process_time() - before)
        await pool.aclose()
    finally:
        server.terminate()
        server.join()
    total = 0.0
    print(f"CPU for {nodes} observed nodes (process time of one pass, median of 5):")
    for name, samples in costs.items():
        per_pass = statistics.median(samples)
        share = per_pass / INTERVALS[name]
        total += share
        every = INTERVALS[name]
        print(f"  {name:<10} {per_pass * 1000:8.1f} ms a pass, every {every:4.0f} s -> {share:.2%} of a core")
    print(f"  scheduler total: {total:.2%} of one core (goal < 5%)")


async def _cluster(servers: int, observation: ObservationSettings) -> Engine:
    return await sandbox(
        seed=servers,
        providers=("hetzner",),
        action_seconds=0.3,
        boot_seconds=0.1,
        latency_ms=5.0,
        observation=observation,
    )


async def provider_calls(servers: int) -> None:
    engine = await _cluster(servers, ObservationSettings(run=False))
    try:
        for i in range(servers):
            await engine.plan_upsert_server(name=f"obs-{i:03d}", provider="hetzner", cluster="bench")
        report = await engine.materialize(yes=True)
        assert report.ok, report.summary
        world = sandbox_cloud(engine).world
        settings = engine.settings.observation
        per_minute = 0.0
        print(f"\nProvider calls (Hetzner, {servers} servers):")
        for concern in ("providers", "catalogs"):
            before = world.counters.total("hetzner")
            result = await engine.observe_once([concern])
            calls = world.counters.total("hetzner") - before
            interval = settings.interval(concern)
            per_minute += calls * 60.0 / interval
            ok = result[concern]["ok"]
            print(f"  {concern:<10} {calls:4d} requests a run, every {interval:6.0f} s (ok={ok})")
        budget = settings.share * 3600 / 60
        print(
            f"  observation spends {per_minute:.2f} requests/min; its share ({settings.share:.0%} of "
            f"3,600/h) is {budget:.1f}/min -> {per_minute / budget:.0%} of the share"
        )
    finally:
        await engine.aclose()


async def materialize_wall(servers: int, observation: ObservationSettings) -> tuple[float, int, int]:
    engine = await _cluster(servers, observation)
    try:
        for i in range(servers):
            await engine.plan_upsert_server(name=f"m-{i:03d}", provider="hetzner", cluster="bench")
        start = time.perf_counter()
        report = await engine.materialize(yes=True)
        wall = time.perf_counter() - start
        assert report.ok, report.summary
        status = engine.core.providers.broker.status("hetzner")
        return wall, status.background_calls, status.background_rate_limited
    finally:
        await engine.aclose()


async def materialize_effect(servers: int, rounds: int) -> None:
    busy = ObservationSettings(intervals={"providers": 0.5, "catalogs": 1.0}, jitter=0.0, defer_seconds=0.2)
    quiet = ObservationSettings(run=False)
    off: list[float] = []
    on: list[float] = []
    background = limited = 0
    for _ in range(rounds):
        off.append((await materialize_wall(servers, quiet))[0])
        wall, calls, hits = await materialize_wall(servers, busy)
        on.append(wall)
        background += calls
        limited += hits
    a, b = statistics.median(off), statistics.median(on)
    print(f"\nMaterialize of {servers} servers (median of {rounds}):")
    print(f"  scheduler off {a:.2f} s, on {b:.2f} s -> ratio {b / a:.3f} (goal <= 1.10)")
    print(f"  background calls during the runs: {background}; 429s they met: {limited} (goal 0)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    await cpu_share(args.nodes)
    await provider_calls(args.servers)
    await materialize_effect(args.servers, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
