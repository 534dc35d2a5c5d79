"""Powering a satellite off at the provider is seen by the engine, and so is powering it on.

The operator (or the provider) powers the satellite's server off with hcloud: the machine stops
answering, so the engine's node observation calls it unreachable and its stream failed, with
reasons that say it does not answer (not that it refused Legion's certificate). Powered on, the
same machine comes back: healthy again, and its stream live again without anyone starting it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from e2ekit import fleet_of
from hcloud import Client

from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.engine.runtime import Engine
from legion_nb.sandbox_engine import sandbox_cloud

pytestmark = pytest.mark.slow


async def eventually(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def flowing(node: SimulatedNode) -> None:
    """Until the satellite's sender has pushed another chunk (so a probe after this sees progress)."""
    sender = node.senders.session("feed")
    before = sender.bytes
    await eventually(lambda: sender.bytes > before)


async def health_of(engine: Engine, polls: int = 1) -> dict[str, Any]:
    """The satellite's snapshot row after ``polls`` node observation passes."""
    for _ in range(polls):
        runs = await engine.observe_once(["nodes"])
        assert runs["nodes"]["ok"], runs
    snapshot = await engine.snapshot()
    row: dict[str, Any] = next(r for r in snapshot["rows"] if r["name"] == "sat1")
    return row


async def test_a_satellite_powered_off_is_unreachable_and_failed_then_back_after_power_on(
    satellite: Engine,
) -> None:
    fleet = fleet_of(satellite)
    assert fleet.receiver is not None
    node = fleet.by_hostname("sat1")
    await satellite.stream_start("sat1", "feed", fleet.receiver.url())
    await flowing(node)
    assert (await satellite.stream_list(probe=True))[0]["state"] == "live"
    assert (await health_of(satellite))["health"] == "healthy"

    hz = sandbox_cloud(satellite).endpoints()["hetzner"]
    hcloud = Client(token=hz["token"], api_endpoint=hz["url"], poll_interval=0.02)
    server = await asyncio.to_thread(hcloud.servers.get_by_name, "sat1")
    assert server is not None
    await asyncio.to_thread(lambda: server.power_off().wait_until_finished())
    await eventually(lambda: not node.is_up)

    down = await health_of(satellite, polls=2)  # one missed poll keeps the verdict, two do not
    assert down["health"] == "unreachable", down
    assert "does not answer" in down["reason"] and "certificate" not in down["reason"], down
    stream = (await satellite.stream_list(probe=True))[0]
    assert stream["state"] == "failed" and "does not answer" in (stream["reason"] or ""), stream

    await asyncio.to_thread(lambda: server.power_on().wait_until_finished())
    await eventually(lambda: node.is_up)
    await flowing(node)  # the Sender service restarted the session at boot

    up = await health_of(satellite)
    assert (up["health"], up["reason"]) == ("healthy", None), up
    await flowing(node)
    stream = (await satellite.stream_list(probe=True))[0]
    assert (stream["state"], stream["reason"]) == ("live", None), stream
