"""Sender streams end to end: a satellite in the sandbox runs a real sender that pushes bytes over
TCP to the sandbox's receiver; the StreamingSupervisor's probes see it live, stalled while the
sender stalls, live again once it resumes, failed when it fails, and stopped when stopped."""

from __future__ import annotations

import asyncio

import pytest
from e2ekit import fleet_of

from legion_nb.emulators.nodes.streams import SenderSession
from legion_nb.engine.runtime import Engine
from legion_nb.errors import ValidationError
from legion_nb.widgets.feed import Batch
from legion_nb.widgets.streams import StreamsPanel

pytestmark = pytest.mark.slow


async def flowing(sender: SenderSession) -> None:
    """Until the sender has pushed another chunk (so a probe after this sees progress)."""
    before = sender.bytes
    while sender.bytes == before:
        await asyncio.sleep(0.005)


async def test_a_stalled_sender_is_stalled_within_two_probes_then_live_again(satellite: Engine) -> None:
    fleet = fleet_of(satellite)
    assert fleet.receiver is not None
    started = await satellite.stream_start("sat1", "feed", fleet.receiver.url())
    assert (started["satellite"], started["state"]) == ("sat1", "starting")
    sender = fleet.by_hostname("sat1").senders.session("feed")
    await flowing(sender)

    live = (await satellite.stream_list(probe=True))[0]
    assert (live["state"], live["reason"], live["reachable"]) == ("live", None, True)
    assert live["bytes"] > 0 and live["latency_ms"] is not None

    sender.stall()
    states = [(await satellite.stream_list(probe=True))[0] for _ in range(2)]
    assert states[-1]["state"] == "stalled", states
    assert states[-1]["reason"] is not None and states[-1]["reason"].startswith("no bytes delivered for")

    sender.resume()
    await flowing(sender)
    resumed = (await satellite.stream_list(probe=True))[0]
    assert (resumed["state"], resumed["reason"]) == ("live", None)
    assert fleet.receiver.received["feed"] >= resumed["bytes"] > live["bytes"]  # real bytes arrived


async def test_a_failed_sender_is_failed_with_its_reason_and_a_stop_stops_it(satellite: Engine) -> None:
    fleet = fleet_of(satellite)
    assert fleet.receiver is not None
    await satellite.stream_start("sat1", "feed", fleet.receiver.url())
    node = fleet.by_hostname("sat1")
    await node.senders.session("feed").fail("encoder crashed")

    failed = (await satellite.stream_list(probe=True))[0]
    assert (failed["state"], failed["reason"]) == ("failed", "sender failed: encoder crashed")

    stopped = await satellite.stream_stop("feed")
    assert (stopped["state"], stopped["reason"]) == ("stopped", "stopped by the operator")
    assert "feed" not in node.senders.sessions
    assert satellite.state.scheme.streams["feed"].running is False


async def test_streams_run_only_on_satellites_to_an_endpoint_with_a_port(satellite: Engine) -> None:
    await satellite.plan_upsert_server(name="c1", provider="hetzner")
    with pytest.raises(ValidationError, match="streams run on satellites"):
        await satellite.stream_start("c1", "feed", "tcp://127.0.0.1:9")
    with pytest.raises(ValidationError, match="neither planned nor tracked"):
        await satellite.stream_start("ghost", "feed", "tcp://127.0.0.1:9")
    with pytest.raises(ValidationError, match="explicit port"):
        await satellite.stream_start("sat1", "feed", "tcp://127.0.0.1")
    with pytest.raises(ValidationError, match="is not planned"):
        await satellite.stream_stop("nothing")
    assert satellite.state.scheme.streams == {}


async def test_the_satellite_answers_node_observation_over_http_and_streams_are_snapshot_rows(
    satellite: Engine,
) -> None:
    fleet = fleet_of(satellite)
    assert fleet.receiver is not None
    await satellite.stream_start("sat1", "feed", fleet.receiver.url())

    runs = await satellite.observe_once(["nodes", "repairs"])

    assert runs["nodes"]["ok"] and runs["nodes"]["items"] == 1, runs
    assert runs["repairs"]["ok"] and runs["repairs"]["items"] == 0, runs
    snapshot = await satellite.snapshot()
    row = next(r for r in snapshot["rows"] if r["name"] == "sat1")
    assert (row["health"], row["reason"]) == ("healthy", None), row
    streams = snapshot.get("streams")
    assert isinstance(streams, list) and [(s["name"], s["satellite"]) for s in streams] == [("feed", "sat1")]
    changes = await StreamsPanel().prepare(Batch(has_snapshot=True, snapshot=snapshot))
    assert [(r["name"], r["satellite"], r["state"]) for r in changes["streams"]] == [
        ("feed", "sat1", streams[0]["state"])
    ]
