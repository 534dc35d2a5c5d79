from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from legion_nb.cli.main import run
from legion_nb.emulators import hetzner
from legion_nb.emulators.httpkit import serve_in_thread
from legion_nb.emulators.world import SandboxWorld, Timing

PASSWORD = "cli password 1"


@dataclass
class Result:
    code: int
    out: str
    err: str


Legion = Callable[..., Result]


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def legion(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Legion:
    """Run ``legion ARGS`` in process; ``stdin`` text is what the command reads."""

    def invoke(*args: str, stdin: str = "", password: str | None = PASSWORD) -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        if password is None:
            monkeypatch.delenv("LEGION_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("LEGION_PASSWORD", password)
        monkeypatch.delenv("LEGION_DAEMON_TOKEN", raising=False)
        capsys.readouterr()
        try:
            code = run(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def state(tmp_path: Path, legion: Legion) -> str:
    """A fresh initialized state path (one Argon2 derivation)."""
    path = str(tmp_path / "s.legion")
    result = legion("--state", path, "init")
    assert result.code == 0, result.err
    return path


@pytest.fixture
def hetzner_block() -> Iterator[dict[str, str]]:
    """A Hetzner emulator on loopback: its ``url`` and the credentials it accepts."""
    world = SandboxWorld(seed=4, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with serve_in_thread(hetzner.create_app, world) as served:
        yield {"url": served.url, **served.emulator.credentials}


StoreHetzner = Callable[[str, dict[str, str]], None]


@pytest.fixture
def store_hetzner(legion: Legion) -> StoreHetzner:
    """Store Hetzner credentials into a state: the endpoint ``block["url"]``, the rest as secrets."""

    def store(state: str, block: dict[str, str]) -> None:
        secrets = {k: v for k, v in block.items() if k != "url"}
        stored = legion(
            "--state",
            state,
            "credentials",
            "set",
            "hetzner",
            "--endpoint",
            block["url"],
            stdin=json.dumps(secrets),
        )
        assert stored.code == 0, stored.err

    return store
