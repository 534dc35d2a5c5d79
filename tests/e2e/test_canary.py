"""Canary credentials, valid and invalid, never reach any output channel.

The sandbox's own credentials are the valid canaries (a materialize really uses them); the
invalid ones carry what the HTTP stack refuses (a trailing space, a tab, CR/LF, a non-ASCII
character) around a unique marker. Invalid values are first offered to ``credentials set``
(refused, without an echo) and then planted in the state directly, as an older legion-nb or a
hand-edited state would hold them. Every command's stdout and stderr, the JSON outputs, the
snapshot and activity, the daemon's replies and log, the actor traces, the log store (Legion's own
operation and actor lines, read back by ``legion logs``), the panels' widget state,
formatted tracebacks and every file the run leaves behind are then searched: zero hits.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from legion_nb.cli.main import run
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.engine.state.model import LegionState, StoredCredentials
from legion_nb.errors import LegionError
from legion_nb.sandbox_engine import sandbox_policy
from legion_nb.widgets import show

PASSWORD = "canary e2e password"


@dataclass(frozen=True)
class Canary:
    provider: str
    field: str
    value: str
    marker: str  # what must never appear: the value itself, or its unique part

    def forms(self) -> set[str]:
        value = self.value
        return {self.marker, value.strip(), repr(value)[1:-1], json.dumps(value)[1:-1]} - {""}


def invalid_canaries(endpoints: dict[str, dict[str, str]]) -> list[Canary]:
    def marker() -> str:
        return f"CANARY{secrets.token_hex(12)}"

    hetzner, scaleway = endpoints["hetzner"]["token"], endpoints["scaleway"]["secret_key"]
    crlf, accent = marker(), marker()
    return [
        Canary("hetzner", "token", f"{hetzner} ", hetzner),
        Canary("scaleway", "secret_key", f"{scaleway}\t", scaleway),
        Canary("hetzner", "token", f"{crlf}\r\n", crlf),
        Canary("ovh", "application_key", f"{accent}é", accent),
    ]


def valid_canaries(endpoints: dict[str, dict[str, str]]) -> list[Canary]:
    fields = {
        "hetzner": ("token",),
        "scaleway": ("access_key", "secret_key"),
        "ovh": ("application_key", "application_secret", "consumer_key"),
    }
    return [
        Canary(provider, name, endpoints[provider][name], endpoints[provider][name])
        for provider, names in fields.items()
        for name in names
    ]


class Recorder:
    """Runs ``legion`` in this process and keeps every output, labelled."""

    def __init__(
        self, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.state = state
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.outputs: list[tuple[str, str]] = []

    def __call__(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        with self.monkeypatch.context() as patch:
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            self.capsys.readouterr()
            try:
                code = run(["--state", str(self.state), *args])
            except SystemExit as exc:
                code = int(exc.code or 0)
            captured = self.capsys.readouterr()
        self.outputs.append((" ".join(args), captured.out + captured.err))
        return code, captured.out, captured.err

    def ok(self, *args: str, **kwargs: Any) -> str:
        code, out, err = self(*args, **kwargs)
        assert code == 0, err
        return out

    def keep(self, label: str, text: str) -> None:
        self.outputs.append((label, text))


async def plant(state: Path, canaries: list[Canary], recorder: Recorder) -> None:
    """Store invalid values bypassing validation; then use them in process: errors, widgets, traces."""
    engine = create_engine(state, SessionSettings(broker=sandbox_policy()))
    try:
        await engine.unlock(PASSWORD)

        def with_invalid(current: LegionState) -> tuple[LegionState, None]:
            stored = dict(current.credentials)
            for canary in canaries:
                record = stored[canary.provider]
                stored[canary.provider] = StoredCredentials(
                    provider=record.provider,
                    endpoint=record.endpoint,
                    secrets={**record.secrets, canary.field: canary.value},
                )
            return replace(current, credentials=stored), None

        await engine.assert_unlocked().mutate(with_invalid, reason="plant canaries")
        dashboard = show(engine, min_interval=0)
        refreshed = await engine.refresh()
        recorder.keep("engine.refresh", repr(refreshed))
        for provider in ("hetzner", "scaleway", "ovh"):
            try:
                await engine.catalog(provider, live=True)
            except LegionError as exc:
                recorder.keep(f"traceback catalog {provider}", "".join(traceback.format_exception(exc)))
        for _ in range(50):
            await asyncio.sleep(0.01)  # let the panels take the last publications
        recorder.keep("engine.snapshot", json.dumps(await engine.snapshot(), default=str))
        recorder.keep("engine.activity", json.dumps(await engine.activity(), default=str))
        for panel in dashboard.panels:
            recorder.keep(f"widget {type(panel).__name__}", json.dumps(panel.get_state(), default=str))
        dashboard.close()
    finally:
        await engine.aclose()


def daemon_outputs(state: Path, recorder: Recorder, runtime: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    env.update(XDG_RUNTIME_DIR=str(runtime), LEGION_PASSWORD=PASSWORD, LEGION_TRACE_ACTORS="1")
    started = subprocess.run(
        [sys.executable, "-m", "legion_nb", "--state", str(state), "--json", "daemon", "start"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    token = json.loads(started.stdout)["token"]
    through = {"LEGION_DAEMON_TOKEN": token, "XDG_RUNTIME_DIR": str(runtime)}
    try:
        for args in (
            ("--json", "refresh"),
            ("--json", "snapshot"),
            ("--json", "status"),
            ("--json", "materialize", "--yes"),
            ("materialize", "--yes"),
            ("refresh",),
            ("--json", "catalog", "scaleway"),
            ("--json", "daemon", "status"),
        ):
            recorder(*args, env=through)
    finally:
        recorder("daemon", "stop", env=through)


def test_no_canary_reaches_any_output(
    served: tuple[subprocess.Popen[str], dict[str, dict[str, str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, endpoints = served
    invalid, valid = invalid_canaries(endpoints), valid_canaries(endpoints)
    state = tmp_path / "canary.legion"
    monkeypatch.setenv("LEGION_PASSWORD", PASSWORD)
    monkeypatch.setenv("LEGION_TRACE_ACTORS", "1")
    monkeypatch.delenv("LEGION_DAEMON_TOKEN", raising=False)
    legion = Recorder(state, monkeypatch, capsys)

    legion.ok("init")
    for canary in invalid:  # refused at the door, by field name
        others = {k: v for k, v in endpoints[canary.provider].items() if k != "url"}
        offered = json.dumps({**others, canary.field: canary.value})
        code, _, err = legion("credentials", "set", canary.provider, stdin=offered)
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and f"'{canary.field}'" in err
    for provider, block in endpoints.items():
        fields = json.dumps({k: v for k, v in block.items() if k != "url"})
        legion.ok("credentials", "set", provider, "--endpoint", block["url"], stdin=fields)
    legion.ok("plan", "server", "add", "web-1", "--provider", "hetzner")
    legion.ok("plan", "dns-zone", "add", "example.org", "--provider", "hetzner")
    for args in (
        ("--json", "materialize", "--yes"),
        ("--json", "snapshot"),
        ("--json", "status"),
        ("--json", "diff"),
        ("--json", "refresh"),
        ("--json", "credentials", "show"),
        ("credentials", "show"),
        ("status",),
        ("--json", "plan", "show"),
    ):
        legion.ok(*args)

    asyncio.run(plant(state, invalid, legion))
    legion.ok("plan", "server", "add", "web-2", "--provider", "scaleway")
    for args in (
        ("--json", "refresh"),
        ("refresh",),
        ("--json", "materialize", "--yes"),
        ("materialize", "--yes"),
        ("--json", "snapshot"),
        ("snapshot",),
        ("--json", "status"),
        ("--json", "catalog", "hetzner"),
        ("catalog", "ovh"),
        ("--json", "diff"),
        ("--json", "logs", "--limit", "1000"),
        ("logs", "--grep", "refresh"),
        ("--json", "telemetry"),
    ):
        legion(*args)
        legion(*args, env={"LEGION_DEBUG": "1"})

    runtime = Path(tempfile.mkdtemp(prefix="lcn-", dir="/tmp"))  # socket paths must stay short
    runtime.chmod(0o700)
    try:
        daemon_outputs(state, legion, runtime)
        files = [path for root in (tmp_path, runtime) for path in root.rglob("*") if path.is_file()]
        assert any(path.name == "actors.jsonl" for path in files)
        assert any(path.name == "daemon.log" for path in files)
        assert any(path.name == "logs.sqlite" for path in files)  # Legion's own log, failures quoted
        for path in files:
            legion.keep(f"file {path}", path.read_bytes().decode("utf-8", "replace"))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)

    failing = [label for label, text in legion.outputs if "HTTP headers cannot carry" in text]
    assert failing, "the planted credentials were never used"
    hits = [
        (label, canary.provider, canary.field)
        for label, text in legion.outputs
        for canary in [*invalid, *valid]
        if any(form in text for form in canary.forms())
    ]
    assert hits == []
