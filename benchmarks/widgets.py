"""Panel throttling and redraw cost: how many redraws and comm messages a flood of snapshots costs.

Publishes a new snapshot on every loop tick for a few seconds through the engine's real event hub,
with a ResourcesPanel following it at the default throttle, and prints publications, redraws per
second, comm messages per redraw, and the cost of one redraw for snapshots of different sizes.

    .venv/bin/python benchmarks/widgets.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import comm
from comm.base_comm import BaseComm

from legion_nb.engine.events import EventHub
from legion_nb.widgets import ResourcesPanel
from legion_nb.widgets.feed import Batch

FLOOD_SECONDS = 3.0


class CountingComm(BaseComm):
    """Counts the state updates a widget sends (what would travel to the browser)."""

    def __init__(self, **kwargs: Any) -> None:
        self.updates = 0
        super().__init__(**kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        if msg_type == "comm_msg" and isinstance(data, dict) and data.get("method") == "update":
            self.updates += 1


def snapshot(rows: int, revision: int) -> dict[str, Any]:
    return {
        "locked": False,
        "revision": revision,
        "rows": [
            {
                "kind": "server",
                "name": f"node-{i}",
                "provider": "hetzner",
                "action": "create",
                "state": "provisioning" if (i + revision) % 3 else "running",
                "operation": "create",
                "substage": "kexec",
                "waiting": "",
                "error": "",
                "settled": False,
                "note": "",
            }
            for i in range(rows)
        ],
    }


async def flood(rows: int) -> None:
    comms: list[CountingComm] = []

    def create(*args: Any, **kwargs: Any) -> BaseComm:
        made = CountingComm(**kwargs)
        comms.append(made)
        return made

    comm.create_comm = create
    hub = EventHub()
    panel = ResourcesPanel(hub)
    channel = next(c for c in comms if c.comm_id == panel.model_id)
    frames = [snapshot(rows, n) for n in range(8)]  # built up front: measure the panel, not the producer
    published = 0
    start = time.perf_counter()
    while time.perf_counter() - start < FLOOD_SECONDS:
        hub.publish("snapshot", frames[published % len(frames)])
        published += 1
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    feed = panel.feed
    assert feed is not None
    print(
        f"{rows:>5} rows: {published} snapshots published in {elapsed:.1f} s "
        f"({published / elapsed:,.0f}/s) -> {feed.redraws} redraws ({feed.redraws / elapsed:.1f}/s), "
        f"{channel.updates} comm updates ({channel.updates / max(feed.redraws, 1):.2f} per redraw)"
    )
    panel.close()
    hub.close()


async def redraw_cost(rows: int, rounds: int = 30) -> None:
    panel = ResourcesPanel()
    times = []
    for n in range(rounds):
        batch = Batch(has_snapshot=True, snapshot=snapshot(rows, n))
        start = time.perf_counter()
        await panel._apply(batch)  # the feed's drawing step, without the throttle
        times.append(time.perf_counter() - start)
    median_ms = statistics.median(times) * 1e3
    print(f"{rows:>5} rows: one redraw (parse + traits + state message) median {median_ms:.2f} ms")
    panel.close()


async def main() -> None:
    print(f"snapshot flood for {FLOOD_SECONDS:.0f} s per size, default throttle (at most ~10 redraws/s):")
    for rows in (10, 100, 1000):
        await flood(rows)
    print("redraw cost:")
    for rows in (10, 100, 1000):
        await redraw_cost(rows)


if __name__ == "__main__":
    asyncio.run(main())
