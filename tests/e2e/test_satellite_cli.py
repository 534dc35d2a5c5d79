"""Satellites through the CLI alone, against ``legion sandbox serve --store-credentials`` in another
process: every command below is its own ``legion`` process, as an operator runs them.

* The link the served sandbox leaves beside the state carries what the in-process
  ``legion_nb.sandbox(nodes=True)`` knows: the satellites' Sender port and the stream receiver as
  well as the SSH and admin ports. So a satellite is set up by ``legion materialize`` and its
  stream goes live through ``legion stream start|list`` exactly as in a notebook.
* A ``legion materialize`` SIGKILLed while the satellite's setup phase runs leaves that phase on
  the durable record; the next engine reads it ``interrupted, retryable``, and a second
  ``legion materialize`` (or ``legion server resume``) resumes from that phase (provision and
  bootstrap are not run again) to completion, on the same server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import ok, run_legion

from legion_nb.engine.deployment.phases import execution_of
from legion_nb.engine.state.model import LegionState, NodeExecution, decode_state
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.sandbox_engine import STREAM_PROBE_SECONDS, linked_settings, read_sandbox_link

pytestmark = pytest.mark.slow

PASSWORD = "satellite cli password"
TIMEOUT = 120


def environment(state: Path) -> dict[str, str]:
    return {**os.environ, "LEGION_STATE": str(state), "LEGION_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}


def legion(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_legion(*args, env=environment(state), timeout=TIMEOUT)


def serve(state: Path, node_seconds: float) -> Iterator[Path]:
    """A new state served by ``legion sandbox serve --store-credentials`` until the generator ends."""
    ok(legion(state, "init"))
    command = ["sandbox", "serve", "--store-credentials", "--node-seconds", str(node_seconds)]
    process = subprocess.Popen(
        [sys.executable, "-m", "legion_nb", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(state),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        ended = process.poll() is not None
        assert "credentials stored" in line, (line, process.stderr.read() if ended else "")
        yield state
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    yield from serve(tmp_path / "sat.legion", node_seconds=0.05)


@pytest.fixture
def served_slowly(tmp_path: Path) -> Iterator[Path]:
    """Each simulated install step (the satellite's Sender install among them) takes 5 s, so a
    process can be killed while it sits inside the setup phase."""
    yield from serve(tmp_path / "slow.legion", node_seconds=5.0)


def durable_state(path: Path) -> LegionState:
    """The state as the last process left it on disk (read only: no engine, no session)."""
    import asyncio  # noqa: PLC0415

    store, payload = asyncio.run(SecureStateStore.unlock(path, PASSWORD))
    store.close()
    return decode_state(payload)


def execution(path: Path, node: str) -> NodeExecution:
    found = execution_of(durable_state(path), node)
    assert found is not None, f"{node} has no execution record"
    return found


def phase_events(output: str, node: str) -> list[tuple[str, str, str]]:
    """``(operation, phase, status)`` of the node's phase items in a ``--json`` materialize."""
    items = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [
        (item["operation"], item["phase"], item["status"])
        for item in items
        if item.get("event") == "phase" and item.get("node") == node
    ]


def live_stream(state: Path, name: str) -> dict[str, Any]:
    """Probe (each a new process) until the stream reads live; its view. The sender pushes a chunk
    every 20 ms, so a probe after the first finds bytes; a few probes allow for a slow start."""
    view: dict[str, Any] = {}
    for _ in range(20):
        views = json.loads(ok(legion(state, "--json", "stream", "list", "--probe")).stdout)
        view = next(v for v in views if v["name"] == name)
        if view["state"] == "live":
            return view
        time.sleep(STREAM_PROBE_SECONDS)
    raise AssertionError(f"stream {name} never went live: {view}")


def test_the_link_carries_the_sender_port_and_a_cli_stream_goes_live(served: Path) -> None:
    state = served
    link = read_sandbox_link(state)
    assert link is not None and link.sender_port > 0 and link.receiver.startswith("tcp://127.")
    settings = linked_settings(state)
    assert settings is not None and settings.deployment is not None
    # What the CLI's engines get is what the in-process sandbox gets (NodeLink.settings).
    assert settings.deployment.access.sender_port == settings.streams.sender_port == link.sender_port
    assert settings.streams.probe_interval == STREAM_PROBE_SECONDS

    ok(legion(state, "plan", "server", "add", "sat1", "--provider", "hetzner", "--role", "satellite"))
    ok(legion(state, "materialize", "--yes"))
    done = execution(state, "sat1")
    assert (done.operation, done.status, done.phase) == ("satellite_add", "succeeded", "satellite_health")

    started = json.loads(ok(legion(state, "--json", "stream", "start", "sat1", "feed", link.receiver)).stdout)
    assert started["state"] in ("starting", "live"), started  # the session runs on the satellite now
    view = live_stream(state, "feed")
    assert view["bytes"] > 0 and view["reachable"] is True and view["reason"] is None


@pytest.mark.parametrize("retry", ["materialize", "server resume"])
def test_a_materialize_killed_inside_the_satellite_setup_resumes_from_it(
    served_slowly: Path, retry: str
) -> None:
    state = served_slowly
    ok(legion(state, "plan", "server", "add", "sat1", "--provider", "hetzner", "--role", "satellite"))
    process = subprocess.Popen(
        [sys.executable, "-m", "legion_nb", "--json", "materialize", "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(state),
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if ("satellite_add", "satellite_setup", "started") in phase_events(line, "sat1"):
            break
    else:
        raise AssertionError(f"materialize ended before the setup phase:\n{''.join(seen)}")
    os.kill(process.pid, signal.SIGKILL)  # inside the 5 s Sender install
    assert process.wait(timeout=60) == -signal.SIGKILL
    first = phase_events("".join(seen), "sat1")
    assert [p for _, p, s in first if s == "ended"] == ["provision", "satellite_bootstrap"]

    # The killed process left the phase it was in on the durable record, unfinished.
    left = execution(state, "sat1")
    assert (left.operation, left.phase, left.status, left.phase_done) == (
        "satellite_add",
        "satellite_setup",
        "running",
        False,
    )
    server = durable_state(state).tracked.servers["sat1"]

    # The next engine (any legion command) reads it interrupted and retryable, at that phase.
    ok(legion(state, "status"))
    interrupted = execution(state, "sat1")
    assert (interrupted.phase, interrupted.status, interrupted.retryable, interrupted.phase_done) == (
        "satellite_setup",
        "interrupted",
        True,
        False,
    )
    assert interrupted.started == left.started

    if retry == "materialize":
        applied = ok(legion(state, "--json", "materialize", "--yes"))
        events = phase_events(applied.stdout, "sat1")
        assert ("satellite_add", "satellite_health", "succeeded") in events, events
        assert not [e for e in events if e[1] in ("provision", "satellite_bootstrap")], events  # not redone
        report = json.loads(applied.stdout.splitlines()[-1])
        assert report["ok"] is True and [r["identity"] for r in report["resources"]] == ["sat1"]
    else:  # nothing resumed it at unlock: the operator's resume runs it from the recorded phase
        resumed = json.loads(ok(legion(state, "--json", "server", "resume", "sat1")).stdout)
        assert (resumed["server"], resumed["command"], resumed["status"]) == ("sat1", "resume", "succeeded")
    done = execution(state, "sat1")
    assert (done.operation, done.status, done.phase) == ("satellite_add", "succeeded", "satellite_health")
    assert done.started == left.started  # the same operation, resumed
    after = durable_state(state).tracked.servers["sat1"]
    assert after.provider_id == server.provider_id  # the same server: nothing was created twice
