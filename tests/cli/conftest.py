from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from legion_nb.cli.main import run

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
