"""Exit codes as README's table says them.

``legion refresh``: 4 when providers could not be reached or refused (all of them or only some,
while the others are still read), 5 when Legion failed. A command naming a server Legion does not
track is the operator's input (2), whichever command it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from legion_nb import sandbox_engine
from legion_nb.cli.operations import refresh_error
from legion_nb.engine.reports import RefreshReport, RefreshResult
from legion_nb.engine.session import SessionSettings
from legion_nb.providers.broker import BrokerPolicy, RetryPolicy

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py
StoreHetzner = Callable[[str, dict[str, str]], None]  # the ``store_hetzner`` fixture of conftest.py
UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: nobody listens on loopback


@pytest.fixture(autouse=True)
def _one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's session reads each provider once: an unreachable one fails without backoff."""
    settings = SessionSettings(broker=BrokerPolicy(retry=RetryPolicy(attempts=1)))

    def linked(state_path: Path) -> SessionSettings:
        del state_path
        return settings

    monkeypatch.setattr(sandbox_engine, "linked_settings", linked)


def test_an_unreachable_provider_is_exit_4_with_its_failure_kind(
    legion: Legion, state: str, store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, {"url": UNREACHABLE, "token": "x" * 64})
    result = legion("--state", state, "--json", "refresh")
    assert result.code == 4, (result.out, result.err)
    assert len(result.err.strip().splitlines()) == 1
    (report,) = json.loads(result.out)["providers"]
    assert report["provider"] == "hetzner" and report["failure"] == "unreachable"


def test_a_partial_refresh_is_exit_4_and_lists_what_was_read(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, hetzner_block)
    secrets = json.dumps({"access_key": "SCW" + "X" * 17, "secret_key": "0" * 36, "project_id": "1" * 36})
    stored = legion(
        "--state", state, "credentials", "set", "scaleway", "--endpoint", UNREACHABLE, stdin=secrets
    )
    assert stored.code == 0, stored.err
    result = legion("--state", state, "refresh")
    assert result.code == 4, (result.out, result.err)
    lines = result.out.splitlines()
    assert lines[0] == "refresh failed for scaleway:"
    assert any(line.startswith("  hetzner: 0 servers") for line in lines), result.out


def test_a_failure_on_legions_side_is_exit_5() -> None:
    def result(*failures: str | None) -> RefreshResult:
        reports = [
            RefreshReport(f"p{i}", error=None if f is None else "boom", failure=f)  # type: ignore[arg-type]
            for i, f in enumerate(failures)
        ]
        return RefreshResult(ok=False, summary="refresh failed", providers=reports)

    assert refresh_error(result("unreachable", "refused", None)).exit_code == 4
    assert refresh_error(result("unreachable", "failed")).exit_code == 5
    assert refresh_error(result("failed")).exit_code == 5


@pytest.mark.parametrize("command", [("terminal", "ghost"), ("server", "reboot", "ghost")])
def test_a_server_legion_does_not_track_is_a_usage_error(
    legion: Legion, state: str, command: tuple[str, ...]
) -> None:
    result = legion("--state", state, *command, stdin="hostname\n")
    assert result.code == 2, (result.out, result.err)
    assert result.err.startswith("legion: server ") and "ghost" in result.err
    assert "is not tracked: materialize it" in result.err and result.err.count("\n") == 1
