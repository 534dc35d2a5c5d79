"""``legion daemon start|run|stop|status`` as an operator runs them: real processes, real sockets.

Each test pays for at least one Argon2id unlock in a child process, so the flows are grouped: one
test walks start -> use -> refuse a second -> stop, the others cover ``run`` under SIGTERM and the
failure paths.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import run_legion

from legion_nb.engine.daemon.endpoint import endpoint_for
from legion_nb.engine.daemon.metadata import pid_alive

PASSWORD = "correct horse battery staple"


@pytest.fixture
def env(runtime_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    clean["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return clean


@pytest.fixture
def state(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    path = tmp_path / "state.legion"
    created = legion(env, path, "--password-stdin", "init", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    yield path
    metadata = endpoint_for(path).metadata_path
    if metadata.exists():  # a failed test must not leave a daemon behind
        pid = json.loads(metadata.read_text())["pid"]
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)


def legion(env: dict[str, str], state: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_legion("--state", str(state), *args, env=env, stdin=stdin, timeout=180)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("legion: ")
    return lines[0]


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_start_use_refuse_a_second_and_stop(env: dict[str, str], state: Path, runtime_dir: Path) -> None:
    started = legion(env, state, "--password-stdin", "daemon", "start", stdin=PASSWORD + "\n")
    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert len(lines) == 1
    ready: dict[str, Any] = json.loads(lines[0])
    assert set(ready) == {"endpoint", "pid", "token"}
    token = ready["token"]
    assert len(token) == 64
    endpoint = endpoint_for(state)
    assert ready["endpoint"] == endpoint.address
    assert pid_alive(ready["pid"])

    assert mode(endpoint.directory) == 0o700
    assert mode(endpoint.address) == 0o600
    assert mode(endpoint.metadata_path) == 0o600
    for path in endpoint.directory.iterdir():
        if path.is_file():
            assert token not in path.read_text(), path  # metadata, lock and log alike
    with open(f"/proc/{ready['pid']}/cmdline", "rb") as cmdline:
        arguments = cmdline.read()
    assert token.encode() not in arguments
    assert PASSWORD.encode() not in arguments
    with open(f"/proc/{ready['pid']}/environ", "rb") as environ:
        assert token.encode() not in environ.read()

    warm = legion(env, state, "--daemon-token", token, "--json", "status")
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout)["unlocked"] is True
    added = legion(
        env, state, "--daemon-token", token, "plan", "dns-zone", "add", "example.org", "--provider", "hetzner"
    )
    assert added.returncode == 0, added.stderr
    env_token = {**env, "LEGION_DAEMON_TOKEN": token}
    shown = legion(env_token, state, "--json", "plan", "show")
    assert "example.org" in json.loads(shown.stdout)["dns_zones"]
    server = legion(
        env_token,
        state,
        "--json",
        "plan",
        "server",
        "add",
        "web-1",
        "--provider",
        "hetzner",
        "--server-type",
        "cx999",
    )  # the daemon's diff row names what its catalog lacks
    assert server.returncode == 0, server.stderr
    assert [w["code"] for w in json.loads(server.stdout)["warnings"]] == ["not_in_catalog"]

    status = legion(env_token, state, "--json", "daemon", "status")
    report = json.loads(status.stdout)
    assert report["running"] is True
    assert report["pid"] == ready["pid"]
    assert report["unlocked"] is True
    assert token not in status.stdout

    wrong = legion(env, state, "--daemon-token", "f" * 64, "status")
    assert wrong.returncode == 6
    assert "wrong daemon token" in one_line_error(wrong)

    second = legion(env, state, "--password-stdin", "daemon", "start", stdin=PASSWORD + "\n")
    assert second.returncode == 6
    assert f"pid {ready['pid']}" in one_line_error(second)

    stopped = legion(env, state, "--daemon-token", token, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(ready["pid"])
    assert not os.path.lexists(endpoint.address)
    assert not endpoint.metadata_path.exists()
    assert not endpoint.lock_path.exists()
    assert [p.name for p in endpoint.directory.iterdir()] == ["daemon.log"]  # kept for a post-mortem
    assert token not in endpoint.log_path.read_text()
    assert json.loads(legion(env, state, "--json", "daemon", "status").stdout)["running"] is False
    again = legion(env, state, "daemon", "stop")
    assert again.returncode == 6
    assert "no daemon is running" in one_line_error(again)


def test_run_serves_in_the_foreground_until_sigterm(env: dict[str, str], state: Path) -> None:
    token = "0123456789abcdef" * 4
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "legion_nb",
            "--state",
            str(state),
            "--password-stdin",
            "daemon",
            "run",
            "--token-stdin",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{PASSWORD}\n{token}\n")
    child.stdin.close()
    ready = json.loads(child.stdout.readline())
    assert set(ready) == {"endpoint", "pid"}  # a supplied token is never echoed
    assert ready["pid"] == child.pid
    warm = legion(env, state, "--daemon-token", token, "--json", "status")
    assert json.loads(warm.stdout)["unlocked"] is True

    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 0
    assert child.stderr is not None
    stderr = child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    assert token not in stderr
    assert not endpoint_for(state).metadata_path.exists()
    assert not os.path.lexists(endpoint_for(state).address)


def test_stop_without_a_token_signals_the_owner_daemon(env: dict[str, str], state: Path) -> None:
    started = legion(env, state, "--password-stdin", "daemon", "start", stdin=PASSWORD + "\n")
    pid = json.loads(started.stdout)["pid"]
    stopped = legion(env, state, "--json", "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout) == {"stopped": True, "pid": pid}
    assert not pid_alive(pid)


def test_a_wrong_password_fails_the_start_with_the_state_exit_code(env: dict[str, str], state: Path) -> None:
    failed = legion(env, state, "--password-stdin", "daemon", "start", stdin="not the password\n")
    assert failed.returncode == 3
    assert "wrong password" in one_line_error(failed)
    assert not endpoint_for(state).metadata_path.exists()


def test_a_weak_supplied_token_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    failed = legion(
        env,
        tmp_path / "s.legion",
        "--password-stdin",
        "--daemon-token",
        "short",
        "daemon",
        "start",
        stdin=PASSWORD + "\n",
    )
    assert failed.returncode == 6
    assert "daemon token must be" in one_line_error(failed)


def test_two_thousand_silent_connections_do_not_starve_an_authenticated_status(
    env: dict[str, str], state: Path
) -> None:
    """A leaking client holds 2,000 connections open and never speaks; the operator still gets in."""
    wanted = 2_000 + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    started = legion(env, state, "--password-stdin", "daemon", "start", stdin=PASSWORD + "\n")
    assert started.returncode == 0, started.stderr
    token = json.loads(started.stdout)["token"]
    address = endpoint_for(state).address
    silent: list[socket.socket] = []
    try:
        for _ in range(2_000):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.append(connection)
            connection.connect(address)
        warm = legion(env, state, "--daemon-token", token, "--json", "status")
        assert warm.returncode == 0, warm.stderr
        assert json.loads(warm.stdout)["unlocked"] is True
        report = json.loads(legion(env, state, "--daemon-token", token, "--json", "daemon", "status").stdout)
        assert report["connections"] <= 64 + 1  # the pending cap, and the asking client
    finally:
        for connection in silent:
            connection.close()
    stopped = legion(env, state, "--daemon-token", token, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr


def test_a_write_without_the_token_never_leaves_the_daemon_stale(env: dict[str, str], state: Path) -> None:
    # Before: the token-less write landed behind the daemon's back, and every later daemon write
    # failed with "StateConflictError ... unlock it again" while its reads stayed stale.
    started = legion(env, state, "--password-stdin", "daemon", "start", stdin=PASSWORD + "\n")
    assert started.returncode == 0, started.stderr
    token = json.loads(started.stdout)["token"]
    try:
        bypass = legion(
            {**env, "LEGION_PASSWORD": PASSWORD},
            state,
            "--lock-timeout",
            "600",
            "plan",
            "dns-zone",
            "add",
            "bypass.example",
            "--provider",
            "hetzner",
        )
        assert bypass.returncode == 3
        line = one_line_error(bypass)
        assert "daemon" in line and f"pid {json.loads(started.stdout)['pid']}" in line
        assert "LEGION_DAEMON_TOKEN" in line
        through = legion(
            env,
            state,
            "--daemon-token",
            token,
            "plan",
            "dns-zone",
            "add",
            "through.example",
            "--provider",
            "hetzner",
        )
        assert through.returncode == 0, through.stderr
        again = legion(
            env,
            state,
            "--daemon-token",
            token,
            "plan",
            "dns-zone",
            "add",
            "again.example",
            "--provider",
            "hetzner",
        )
        assert again.returncode == 0, again.stderr
        served = json.loads(legion(env, state, "--daemon-token", token, "--json", "plan", "show").stdout)
        assert sorted(served["dns_zones"]) == ["again.example", "through.example"]
        on_disk = legion({**env, "LEGION_PASSWORD": PASSWORD}, state, "--json", "plan", "show")
        assert on_disk.returncode == 0, on_disk.stderr  # reading without the token still works
        assert json.loads(on_disk.stdout)["dns_zones"] == served["dns_zones"]
    finally:
        stopped = legion(env, state, "--daemon-token", token, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    after = legion(
        {**env, "LEGION_PASSWORD": PASSWORD},
        state,
        "plan",
        "dns-zone",
        "add",
        "later.example",
        "--provider",
        "hetzner",
    )
    assert after.returncode == 0, after.stderr  # the daemon's claim ended with it
