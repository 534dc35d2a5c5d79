"""``legion observe --once``: one pass of each concern, for cron and tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import legion_nb

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py
StoreHetzner = Callable[[str, dict[str, str]], None]  # the ``store_hetzner`` fixture of conftest.py


def test_observe_once_runs_the_selected_concerns_and_reports_them(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: StoreHetzner
) -> None:
    s = ("--state", state)
    store_hetzner(state, hetzner_block)

    result = legion(*s, "--json", "observe", "--once", "--only", "providers,catalogs,nodes")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {"providers", "catalogs", "nodes"}
    assert {name: (r["ok"], r["error"]) for name, r in report.items()} == dict.fromkeys(report, (True, None))
    assert report["catalogs"]["items"] == 1 and report["nodes"]["items"] == 0
    assert all(set(r) == {"ok", "seconds", "items", "error"} for r in report.values())

    human = legion(*s, "observe", "--once", "--only", "catalogs")
    assert human.code == 0 and "catalogs" in human.out and "ok" in human.out


def test_observe_once_collects_the_billing_ledger(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: StoreHetzner
) -> None:
    s = ("--state", state)
    store_hetzner(state, hetzner_block)
    server = {"name": "billed-1", "server_type": "cx22", "image": "debian-12", "location": "fsn1"}
    headers = {"Authorization": f"Bearer {hetzner_block['token']}"}
    made = httpx.post(f"{hetzner_block['url']}/servers", json=server, headers=headers, timeout=10)
    assert made.status_code == 201, made.text
    before = legion(*s, "--json", "billing", "--no-collect")
    assert before.code == 0 and json.loads(before.out) == []

    result = legion(*s, "--json", "observe", "--once", "--only", "billing")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {"billing"} and set(report["billing"]) == {"ok", "seconds", "items", "error"}
    assert report["billing"]["ok"] is True and report["billing"]["error"] is None
    assert report["billing"]["items"] >= 1

    ledger = legion(*s, "--json", "billing", "--no-collect")
    assert ledger.code == 0, ledger.err
    rows = json.loads(ledger.out)
    assert len(rows) == report["billing"]["items"]
    assert {row["resource_name"] for row in rows} == {"billed-1"}


def test_billing_concern_fails_with_the_provider_named(
    legion: Legion, state: str, store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, {"url": "http://127.0.0.1:9/v1", "token": "x" * 64})  # nobody listens
    result = legion("--state", state, "--json", "observe", "--once", "--only", "billing")
    assert result.code == 5
    report = json.loads(result.out)
    assert report["billing"]["ok"] is False and report["billing"]["items"] == 0
    assert report["billing"]["error"].startswith("billing collection failed - hetzner: ")
    assert len(result.err.strip().splitlines()) == 1


def test_observe_once_names_an_unknown_concern(legion: Legion, state: str) -> None:
    result = legion("--state", state, "observe", "--once", "--only", "nodes,bogus")
    assert result.code == 2
    runs = "this engine runs: providers, catalogs, nodes, telemetry, logs, billing, repairs"
    assert result.err.strip().endswith(runs)
    assert "bogus" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_failed_concern_exits_5_after_printing_every_result(
    legion: Legion, state: str, store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, {"url": "http://127.0.0.1:9/v1", "token": "x" * 64})  # nobody listens
    result = legion("--state", state, "--json", "observe", "--once", "--only", "catalogs,nodes")
    assert result.code == 5
    report = json.loads(result.out)
    assert report["catalogs"]["ok"] is False and report["nodes"]["ok"] is True
    assert result.err.startswith("legion: observation failed for 1 concern(s) - catalogs:")


def test_foreground_observe_shows_a_pass_and_stops_cleanly_on_sigint(
    legion: Legion, state: str, hetzner_block: dict[str, str], password: str, store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, hetzner_block)
    env = {k: v for k, v in os.environ.items() if k != "LEGION_DAEMON_TOKEN"}
    env["LEGION_PASSWORD"] = password
    env["PYTHONPATH"] = os.pathsep.join([str(Path(legion_nb.__file__).parents[1]), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "legion_nb", "--state", state, "observe", "--only", "catalogs"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    shown: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the text table of the scheduler's section, once per change
            shown.append(line)
            cells = line.split()
            if cells[:2] == ["catalogs", "ok"]:
                break
        assert any(line.split()[:2] == ["catalogs", "ok"] for line in shown), "".join(shown)
        # Printed again at each change, the table keeps its columns: the second starts at 12 in every line.
        printed = [line.rstrip("\n") for line in shown if line.strip()]
        assert all(line[10:12] == "  " and line[12] != " " for line in printed), "".join(shown)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert err.splitlines() == ["legion: observation stopped"]
    assert "Traceback" not in "".join(shown) + out + err
