"""``legion observe --once``: one pass of each concern, for cron and tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from legion_nb.emulators import hetzner
from legion_nb.emulators.httpkit import serve_in_thread
from legion_nb.emulators.world import SandboxWorld, Timing

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


@pytest.fixture
def hetzner_block() -> Iterator[dict[str, str]]:
    world = SandboxWorld(seed=4, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with serve_in_thread(hetzner.create_app, world) as served:
        yield {"url": served.url, **served.emulator.credentials}


def test_observe_once_runs_the_selected_concerns_and_reports_them(
    legion: Legion, state: str, hetzner_block: dict[str, str]
) -> None:
    s = ("--state", state)
    secrets = {k: v for k, v in hetzner_block.items() if k != "url"}
    stored = legion(
        *s, "credentials", "set", "hetzner", "--endpoint", hetzner_block["url"], stdin=json.dumps(secrets)
    )
    assert stored.code == 0, stored.err

    result = legion(*s, "--json", "observe", "--once", "--only", "providers,catalogs,nodes")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {"providers", "catalogs", "nodes"}
    assert {name: (r["ok"], r["error"]) for name, r in report.items()} == dict.fromkeys(report, (True, None))
    assert report["catalogs"]["items"] == 1 and report["nodes"]["items"] == 0
    assert all(set(r) == {"ok", "seconds", "items", "error"} for r in report.values())

    human = legion(*s, "observe", "--once", "--only", "catalogs")
    assert human.code == 0 and "catalogs" in human.out and "ok" in human.out


def test_observe_once_names_an_unknown_concern(legion: Legion, state: str) -> None:
    result = legion("--state", state, "observe", "--once", "--only", "nodes,bogus")
    assert result.code == 2
    runs = "this engine runs: providers, catalogs, nodes, telemetry, logs, repairs"
    assert result.err.strip().endswith(runs)
    assert "bogus" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_failed_concern_exits_5_after_printing_every_result(legion: Legion, state: str) -> None:
    stored = legion(
        "--state",
        state,
        "credentials",
        "set",
        "hetzner",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        stdin=json.dumps({"token": "x" * 64}),
    )
    assert stored.code == 0, stored.err
    result = legion("--state", state, "--json", "observe", "--once", "--only", "catalogs,nodes")
    assert result.code == 5
    report = json.loads(result.out)
    assert report["catalogs"]["ok"] is False and report["nodes"]["ok"] is True
    assert result.err.startswith("legion: observation failed for 1 concern(s) - catalogs:")
