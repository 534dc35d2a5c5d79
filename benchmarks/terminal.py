"""What a node terminal costs: opening one, and a command's round trip through each layer.

Against a simulated node on loopback (a real asyncssh server with a PTY shell), recorded in a fresh
engine's state the way deployment records it (``tests/terminal/nodekit.py``):

* ``terminal_open`` until the shell prompt arrives (key exchange, login, PTY, shell);
* one command's round trip (``echo`` typed, its output read back) through the engine API in process,
  through the notebook ``TerminalPanel`` (keystroke message -> engine -> node -> scrollback trait),
  and through the panel over the daemon's ``RemoteEngine`` (Unix socket, JSON lines);
* a burst of commands typed at once into the panel: how many scrollback updates (comm messages)
  carried their output, i.e. what the ``min_interval`` throttle saves.

    .venv/bin/python benchmarks/terminal.py [--runs 50] [--burst 200]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "terminal"))

from nodekit import node_engine, record_node

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.daemon.client import connect
from legion_nb.engine.daemon.endpoint import endpoint_for
from legion_nb.engine.daemon.host import serve
from legion_nb.engine.runtime import Engine
from legion_nb.widgets.terminal import TerminalPanel


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{label:<48} p50 {statistics.median(ordered) * 1000:8.2f} ms   p99 {p99 * 1000:8.2f} ms")


async def read_until(engine: Any, terminal: str, marker: str) -> None:
    seen = ""
    while marker not in seen:
        seen += (await engine.terminal_read(terminal, wait=10))["data"]


async def panel_until(panel: TerminalPanel, marker: str) -> None:
    """Wait until ``marker`` is in the panel's scrollback, woken by each update of it."""
    changed = asyncio.Event()

    def wake(_: Any) -> None:
        changed.set()

    panel.observe(wake, names="produced")
    try:
        while marker not in panel.output:
            await changed.wait()
            changed.clear()
    finally:
        panel.unobserve(wake, names="produced")


async def engine_figures(engine: Engine, runs: int) -> None:
    opens: list[float] = []
    for _ in range(max(runs // 5, 3)):
        start = time.perf_counter()
        opened = await engine.terminal_open("t1")
        await read_until(engine, opened["id"], "# ")
        opens.append(time.perf_counter() - start)
        await engine.terminal_close(opened["id"])
    report("terminal_open until the prompt", opens)
    opened = await engine.terminal_open("t1")
    await read_until(engine, opened["id"], "# ")
    trips: list[float] = []
    for i in range(runs):
        start = time.perf_counter()
        await engine.terminal_write(opened["id"], f"echo m{i}\r")
        await read_until(engine, opened["id"], f"\r\nm{i}\r\n")
        trips.append(time.perf_counter() - start)
    report("command round trip, engine API in process", trips)
    await engine.terminal_close(opened["id"])


async def panel_figures(label: str, engine: Any, runs: int, burst: int) -> None:
    panel = TerminalPanel(engine, "t1")
    await panel.wait_open()
    await panel_until(panel, "# ")
    trips: list[float] = []
    for i in range(runs):
        start = time.perf_counter()
        panel.send(f"echo p{i}\r")
        await panel_until(panel, f"\r\np{i}\r\n")
        trips.append(time.perf_counter() - start)
    report(f"command round trip, {label}", trips)
    updates = 0

    def count(_: Any) -> None:
        nonlocal updates
        updates += 1

    panel.observe(count, names="produced")
    start = time.perf_counter()
    for i in range(burst):
        panel.send(f"echo b{i}\r")
    await panel_until(panel, f"b{burst - 1}\r\nlegion-admin@t1:~# ")  # the last output, then a prompt
    elapsed = time.perf_counter() - start
    print(f"{burst} commands typed at once, {label}: {elapsed * 1000:.0f} ms, {updates} scrollback updates")
    await panel.aclose()


async def main(runs: int, burst: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with (
            SimulatedNode("127.78.0.9", hostname="t1") as node,
            node_engine(Path(directory) / "bench.legion", node, "benchmark password") as engine,
        ):
            await record_node(engine, node, "t1")
            await engine_figures(engine, runs)
            await panel_figures("TerminalPanel in process", engine, runs, burst)
            token = secrets.token_hex(32)
            ready, stop = asyncio.Event(), asyncio.Event()

            async def open_engine() -> Engine:
                return engine

            endpoint = endpoint_for(engine.state_path)
            task = asyncio.create_task(
                serve(endpoint, open_engine, token, on_ready=lambda _: ready.set(), stop=stop)
            )
            await ready.wait()
            remote = await connect(engine.state_path, token=token)
            try:
                await panel_figures("TerminalPanel over the daemon", remote, runs, burst)
            finally:
                await remote.aclose()
                stop.set()
                await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.burst))
