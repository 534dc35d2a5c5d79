"""``legion init|passwd|status`` in process, and the acceptance path through real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clikit import run_legion

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_init_refuses_to_overwrite(legion: Legion, state: str) -> None:
    before = Path(state).read_bytes()
    result = legion("--state", state, "init")
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert "already exists" in result.err and "refusing to overwrite" in result.err
    assert Path(state).read_bytes() == before


def test_init_refuses_a_short_password(legion: Legion, tmp_path: Path) -> None:
    path = tmp_path / "s.legion"
    result = legion("--state", str(path), "init", password="short")
    assert result.code == 2
    assert result.err == "legion: the password must have at least 8 characters\n"
    assert not path.exists()


def test_status_locked_unlocked_and_missing(legion: Legion, state: str, tmp_path: Path) -> None:
    missing = legion("--state", str(tmp_path / "none.legion"), "--json", "status", password=None)
    assert missing.code == 0
    assert json.loads(missing.out)["exists"] is False
    locked = legion("--state", state, "status", password=None)
    assert locked.code == 0
    assert "unlocked   no" in locked.out and "daemon     not running" in locked.out
    unlocked = legion("--state", state, "--json", "status")
    report = json.loads(unlocked.out)
    assert report["unlocked"] is True and report["daemon"] == "not running"
    assert report["counts"]["servers"] == 0


def test_wrong_password_is_one_line_exit_3(legion: Legion, state: str) -> None:
    result = legion("--state", state, "plan", "show", password="not the password")
    assert result.code == 3
    assert result.err.startswith("legion: wrong password") and result.err.count("\n") == 1
    assert "Traceback" not in result.err


def test_missing_state_is_one_line_exit_3(legion: Legion, tmp_path: Path) -> None:
    result = legion("--state", str(tmp_path / "none.legion"), "plan", "show")
    assert result.code == 3
    assert "legion init" in result.err and result.err.count("\n") == 1


def test_passwd_reads_current_then_new_from_stdin(legion: Legion, state: str, password: str) -> None:
    result = legion(
        "--state", state, "--password-stdin", "passwd", stdin=f"{password}\nbrand new pass\n", password=None
    )
    assert result.code == 0, result.err
    assert legion("--state", state, "plan", "show").code == 3  # the old password no longer opens it
    assert legion("--state", state, "plan", "show", password="brand new pass").code == 0
    bad = legion(
        "--state", state, "--password-stdin", "passwd", stdin="wrong password\nx y z w v u\n", password=None
    )
    assert bad.code == 3 and "wrong password" in bad.err


def _legion(*args: str, stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_legion(*args, stdin=stdin, env=env)


@pytest.mark.slow
def test_acceptance_through_real_processes(tmp_path: Path) -> None:
    """The brief's "must show": init, a DNS zone, ``--json plan show`` and diff, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    state = str(tmp_path / "x" / "s.legion")
    pw = "acceptance pw\n"
    init = _legion("--state", state, "--password-stdin", "init", stdin=pw, env=env)
    assert (init.returncode, init.stderr) == (0, "")
    zone = _legion(
        "--state",
        state,
        "--password-stdin",
        "plan",
        "dns-zone",
        "add",
        "example.org",
        "--provider",
        "hetzner",
        stdin=pw,
        env=env,
    )
    assert zone.returncode == 0, zone.stderr
    show = _legion("--state", state, "--password-stdin", "--json", "plan", "show", stdin=pw, env=env)
    assert json.loads(show.stdout)["dns_zones"] == {
        "example.org": {"zone": "example.org", "provider": "hetzner"}
    }
    diff = _legion("--state", state, "--password-stdin", "--json", "diff", stdin=pw, env=env)
    data = json.loads(diff.stdout)
    assert data["counts"] == {"create": 1}
    again = _legion("--state", state, "--password-stdin", "init", stdin=pw, env=env)
    assert again.returncode == 3 and again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
