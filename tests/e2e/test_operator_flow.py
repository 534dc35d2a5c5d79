"""The operator's path exactly as the README writes it, each command a separate ``legion`` process.

``legion sandbox serve --store-credentials`` in one process (the providers' endpoints and
credentials go into the state, and the state is linked to the simulated nodes); then
``legion plan server add web-1 --provider hetzner``, ``legion materialize --yes`` and
``echo 'echo hi' | legion terminal web-1`` with no other flag, which prints ``hi``. The same
terminal and the GUIDE §2 command lines with their options after the command work through the
daemon too.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import ok, run_legion

pytestmark = pytest.mark.slow

PASSWORD = "operator path password"
TIMEOUT = 120


def legion(
    state: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LEGION_STATE": str(state), "LEGION_PASSWORD": PASSWORD, **(env or {})}
    return run_legion(*args, stdin=stdin, env=environment, timeout=TIMEOUT)


@contextlib.contextmanager
def serving(state: Path, *, daemon_token: str | None = None) -> Iterator[None]:
    """``legion sandbox serve --store-credentials`` on ``state`` in another process, until the block
    ends (credentials stored with the password, or through the daemon with its token)."""
    options = ["--daemon-token", daemon_token] if daemon_token else ["--password-stdin"]
    process = subprocess.Popen(
        [sys.executable, "-m", "legion_nb", "sandbox", "serve", "--store-credentials", *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LEGION_STATE": str(state), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("" if daemon_token else PASSWORD + "\n")
        process.stdin.close()
        line = process.stdout.readline()
        assert "credentials stored" in line, (
            line,
            process.stderr.read() if process.poll() is not None else "",
        )
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert not state.with_name(state.name + ".sandbox.json").exists(), "the sandbox link outlived the sandbox"


def init(state: Path) -> None:
    ok(legion(state, "init", "--password-stdin", stdin=PASSWORD + "\n", env={"LEGION_PASSWORD": ""}))


@pytest.fixture
def served_state(tmp_path: Path) -> Iterator[Path]:
    """A new state, and ``legion sandbox serve --store-credentials`` serving it from another process."""
    state = tmp_path / "ops.legion"
    init(state)
    with serving(state):
        yield state


def test_serve_plan_materialize_and_a_terminal_by_name(served_state: Path) -> None:
    state = served_state
    providers = json.loads(ok(legion(state, "status", "--json")).stdout)["providers"]
    assert providers == ["hetzner", "ovh", "scaleway"]
    ok(legion(state, "plan", "server", "add", "web-1", "--provider", "hetzner"))
    ok(legion(state, "materialize", "--yes"))
    shell = ok(legion(state, "terminal", "web-1", stdin="echo hi\n"))
    assert shell.stdout == "hi\n"
    failed = legion(state, "terminal", "web-1", stdin="hi\n")
    assert failed.returncode == 127 and "hi: command not found" in failed.stderr
    everyday = ok(
        legion(state, "terminal", "web-1", stdin="uname -a\nip addr\nsystemctl status tribes\nps\n")
    )
    assert "Linux web-1" in everyday.stdout and "inet 127." in everyday.stdout
    assert "Active: active (running)" in everyday.stdout and "tribes" in everyday.stdout
    assert ok(legion(state, "terminal", "web-1", stdin="journalctl -u tribes -n 2\n")).stdout.strip()
    disks = ok(legion(state, "terminal", "web-1", stdin="df -h\nfree -m\nls /\n")).stdout
    assert "Mounted on" in disks and "Mem:" in disks and "etc" in disks.split()

    # the same through the daemon, options after the command as GUIDE §2 writes them
    started = ok(legion(state, "daemon", "start", "--password-stdin", "--json", stdin=PASSWORD + "\n"))
    token = json.loads(started.stdout.strip().splitlines()[-1])["token"]
    try:
        via = {"LEGION_PASSWORD": ""}
        shown = json.loads(
            ok(legion(state, "plan", "show", "--json", "--daemon-token", token, env=via)).stdout
        )
        assert "web-1" in shown["clusters"]["default"]["servers"]
        remote = ok(legion(state, "terminal", "web-1", "--daemon-token", token, stdin="echo hi\n", env=via))
        assert remote.stdout == "hi\n"
        status = json.loads(ok(legion(state, "status", "--daemon-token", token, "--json", env=via)).stdout)
        diff = json.loads(ok(legion(state, "diff", "--json", "--daemon-token", token, env=via)).stdout)
        assert status["actions"] == diff["counts"] == {"unchanged": 2}
    finally:
        legion(state, "daemon", "stop", "--daemon-token", token)


def test_a_daemon_started_before_the_sandbox_reaches_its_nodes(tmp_path: Path) -> None:
    """The daemon reads the sandbox link when a call next needs it, not only at its start: served
    after the daemon started, and again after a restart on new ports, the nodes are installed and
    reached through the daemon."""
    state = tmp_path / "ops.legion"
    init(state)
    started = ok(legion(state, "daemon", "start", "--password-stdin", "--json", stdin=PASSWORD + "\n"))
    token = json.loads(started.stdout.strip().splitlines()[-1])["token"]
    via = {"LEGION_PASSWORD": "", "LEGION_DAEMON_TOKEN": token}
    try:
        assert json.loads(ok(legion(state, "status", "--json", env=via)).stdout)["providers"] == []
        with serving(state, daemon_token=token):
            ok(legion(state, "plan", "server", "add", "web-1", "--provider", "hetzner", env=via))
            ok(legion(state, "materialize", "--yes", env=via))
            shell = ok(legion(state, "terminal", "web-1", stdin="echo hi\n", env=via))
            assert shell.stdout == "hi\n"
        with serving(state, daemon_token=token):  # a new sandbox: new ports, web-1 is gone there
            again = legion(state, "materialize", "--yes", env=via)
            # the new web-1 answers on the new ports, with a host key Legion never pinned: refused
            assert again.returncode == 5 and "now presents another" in again.stderr, again.stderr
            ok(legion(state, "server", "repin", "web-1", env=via))
            ok(legion(state, "server", "resume", "web-1", env=via))
            shell = ok(legion(state, "terminal", "web-1", stdin="echo again\n", env=via))
            assert shell.stdout == "again\n"
    finally:
        legion(state, "daemon", "stop", "--daemon-token", token)


def test_passwd_takes_its_options_after_the_command(tmp_path: Path) -> None:
    state = tmp_path / "p.legion"
    init(state)
    new = "another long password"
    ok(legion(state, "passwd", "--password-stdin", stdin=f"{PASSWORD}\n{new}\n", env={"LEGION_PASSWORD": ""}))
    assert ok(legion(state, "plan", "show", "--json", env={"LEGION_PASSWORD": new})).stdout.startswith("{")
