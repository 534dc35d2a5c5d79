"""The operator's path through the CLI against a sandbox served by another process.

``legion credentials set hetzner --endpoint ...``, ``legion plan ...`` with type/location omitted
(the catalog policy picks them), ``legion materialize --yes``; then the provider goes away and
materialize exits non-zero with one summary line, keeping everything tracked.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from legion_nb.cli.main import run
from legion_nb.engine.cluster.firewall_plan import OPEN_WARNING

PASSWORD = "cli e2e password"
FIREWALL = "legion-default-hetzner"
OPEN_MESSAGE = OPEN_WARNING.message
TIMEOUT = 60


@dataclass
class Result:
    code: int
    out: str
    err: str


Legion = Callable[..., Result]


@pytest.fixture
def legion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Legion:
    state = str(tmp_path / "cli.legion")
    monkeypatch.setenv("LEGION_PASSWORD", PASSWORD)
    monkeypatch.delenv("LEGION_DAEMON_TOKEN", raising=False)

    def invoke(*args: str, stdin: str = "") -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            code = run(["--state", state, *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


@pytest.mark.slow  # the unreachable provider is retried with the real-cloud backoff (~30 s)
def test_cli_materializes_a_cluster_and_fails_cleanly_when_the_provider_is_gone(
    served: tuple[subprocess.Popen[str], dict[str, dict[str, str]]], legion: Legion
) -> None:
    process, endpoints = served
    block = endpoints["hetzner"]
    _ok(legion("init"))
    secrets = json.dumps({"token": block["token"]})
    _ok(legion("credentials", "set", "hetzner", "--endpoint", block["url"], stdin=secrets))
    for name in ("web-1", "web-2", "web-3"):
        _ok(legion("plan", "server", "add", name, "--provider", "hetzner"))
    _ok(legion("plan", "dns-zone", "add", "example.org", "--provider", "hetzner"))
    _ok(legion("plan", "dns-host", "add", "www", "--zone", "example.org", "--servers", "web-1,web-2,web-3"))

    done = _ok(legion("materialize", "--yes"))
    assert "materialize done" in done.out
    # No operator access planned: a warning line of its own, first, before the run's progress.
    assert done.out.splitlines()[0] == f"warning: firewall {FIREWALL}: {OPEN_MESSAGE}"
    assert "server web-1" in done.out  # live progress lines (not a terminal: plain lines)

    headers = {"Authorization": f"Bearer {block['token']}"}
    servers = httpx.get(f"{block['url']}/servers", headers=headers, timeout=TIMEOUT).json()["servers"]
    assert sorted(s["name"] for s in servers) == ["web-1", "web-2", "web-3"]
    assert {s["labels"]["legion/managed"] for s in servers} == {"true"}

    snapshot = json.loads(_ok(legion("--json", "snapshot")).out)
    states = {(r["kind"], r["name"]): r["state"] for r in snapshot["rows"]}
    firewall_row = next(r for r in snapshot["rows"] if r["name"] == FIREWALL)
    assert firewall_row["warnings"] == [{"code": "open_access", "message": OPEN_MESSAGE}]
    assert firewall_row["note"] == "derived from cluster default"
    assert f"warning: firewall {FIREWALL}: {OPEN_MESSAGE}" in _ok(legion("snapshot")).out.splitlines()
    assert {states[("server", n)] for n in ("web-1", "web-2", "web-3")} == {"running"}

    again = _ok(legion("--json", "materialize", "--yes")).out.strip().splitlines()
    report = json.loads(again[-1])
    assert report["event"] == "report" and report["ok"] is True
    assert json.loads(again[0]) == {
        "event": "warning",
        "kind": "firewall",
        "resource": FIREWALL,
        "code": "open_access",
        "message": OPEN_MESSAGE,
    }
    assert report["warnings"] == [
        {"kind": "firewall", "name": FIREWALL, "warnings": [{"code": "open_access", "message": OPEN_MESSAGE}]}
    ]

    # The provider becomes unreachable: materialize says so in one line, exits 5, loses nothing.
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=TIMEOUT)
    _ok(legion("plan", "server", "add", "web-4", "--provider", "hetzner"))
    failed = legion("materialize", "--yes")
    assert failed.code == 5
    lines = failed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("legion: materialize incomplete:")
    assert "cannot reach" in lines[0]
    progress = [line for line in failed.out.splitlines() if line.startswith("server web-4")]
    assert any("cannot reach" in line for line in progress)  # the affected row showed its error
    tracked = json.loads(_ok(legion("--json", "snapshot")).out)
    rows = {(r["kind"], r["name"]): r for r in tracked["rows"]}
    assert rows[("server", "web-4")]["action"] == "create"
    assert all(rows[("server", n)]["action"] == "unchanged" for n in ("web-1", "web-2", "web-3"))


def test_catalog_without_a_state_shows_the_embedded_snapshot(legion: Legion) -> None:
    shown = _ok(legion("catalog", "hetzner"))
    assert "hetzner catalog (embedded" in shown.out
    data = json.loads(_ok(legion("--json", "catalog", "scaleway")).out)
    assert data["source"] == "embedded" and data["server_types"] and data["locations"]
    unknown = legion("catalog", "nowhere")
    assert unknown.code == 2 and len(unknown.err.strip().splitlines()) == 1


@pytest.mark.slow  # two extra processes and their Argon2id unlocks
def test_materialize_through_the_daemon_streams_progress(
    served: tuple[subprocess.Popen[str], dict[str, dict[str, str]]], tmp_path: Path
) -> None:
    _, endpoints = served
    block = endpoints["hetzner"]
    runtime = Path(tempfile.mkdtemp(prefix="lgd-", dir="/tmp"))  # socket paths must stay short
    runtime.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    env.update(
        XDG_RUNTIME_DIR=str(runtime), LEGION_PASSWORD=PASSWORD, LEGION_STATE=str(tmp_path / "d.legion")
    )

    def legion(*args: str, stdin: str = "", token: str = "") -> subprocess.CompletedProcess[str]:
        extra = {"LEGION_DAEMON_TOKEN": token} if token else {}
        return subprocess.run(
            [sys.executable, "-m", "legion_nb", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=180,
            check=False,
        )

    token = ""
    try:
        assert legion("init").returncode == 0
        secrets = json.dumps({"token": block["token"]})
        assert (
            legion("credentials", "set", "hetzner", "--endpoint", block["url"], stdin=secrets).returncode == 0
        )
        assert legion("plan", "server", "add", "d-1", "--provider", "hetzner").returncode == 0
        started = legion("--json", "daemon", "start")
        assert started.returncode == 0, started.stderr
        token = json.loads(started.stdout)["token"]
        applied = legion("--json", "materialize", "--yes", token=token)
        assert applied.returncode == 0, applied.stderr
        lines = [json.loads(line) for line in applied.stdout.splitlines()]
        assert any(item.get("summary", "").startswith("server d-1: provisioning") for item in lines)
        assert lines[-1]["event"] == "report" and lines[-1]["ok"] is True
        assert lines[0]["event"] == "warning" and lines[0]["code"] == "open_access"
        assert lines[-1]["warnings"][0]["warnings"][0]["message"] == OPEN_MESSAGE  # through the daemon
        snapshot = json.loads(legion("--json", "snapshot", token=token).stdout)
        assert {(r["name"], r["state"]) for r in snapshot["rows"] if r["kind"] == "server"} == {
            ("d-1", "running")
        }
        stopped = legion("daemon", "stop", token=token)
        assert stopped.returncode == 0, stopped.stderr
        token = ""
    finally:
        if token:  # a failed test must not leave a daemon behind
            legion("daemon", "stop", token=token)
        shutil.rmtree(runtime, ignore_errors=True)


def test_operator_mistakes_are_one_line_errors(legion: Legion) -> None:
    _ok(legion("init"))
    _ok(legion("plan", "server", "add", "web-1", "--provider", "hetzner"))
    unconfirmed = legion("materialize")  # no terminal to ask on, no --yes
    assert unconfirmed.code == 2 and "pass --yes" in unconfirmed.err
    no_credentials = legion("refresh")
    assert no_credentials.code == 2 and "legion credentials set" in no_credentials.err
    untracked = legion("server", "reboot", "web-1")
    assert untracked.code == 2 and "not tracked" in untracked.err
    refused = legion("server", "delete", "web-1")
    assert refused.code == 2 and "pass --yes" in refused.err
    bad_timeout = legion("materialize", "--yes", "--timeout", "0")
    assert bad_timeout.code == 2
    for result in (unconfirmed, no_credentials, untracked, refused, bad_timeout):
        assert len(result.err.strip().splitlines()) == 1
    embedded = json.loads(_ok(legion("--json", "catalog", "ovh", "--embedded")).out)
    assert embedded["provider"] == "ovh" and embedded["source"] == "embedded"
    rows = json.loads(_ok(legion("--json", "snapshot")).out)["rows"]
    assert {(r["kind"], r["name"], r["action"]) for r in rows} >= {("server", "web-1", "create")}
