"""The blocking daemon client and the CLI's loop-free fast path for one-shot commands.

The client is driven from a worker thread while the daemon serves in the test's loop; the fast
path is checked on real ``legion`` processes against a real daemon, down to what they import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemonkit import TOKEN, Running

from legion_nb.cli.context import is_one_shot, one_shot
from legion_nb.cli.main import build_parser, run
from legion_nb.engine.daemon.endpoint import endpoint_for
from legion_nb.engine.daemon.metadata import DaemonMetadata, pid_alive, write_metadata
from legion_nb.engine.daemon.syncclient import BlockingRemote, connect_blocking
from legion_nb.errors import DaemonAuthError, DaemonNotRunningError, UsageError, ValidationError

PASSWORD = "correct horse battery staple"


async def test_the_blocking_client_speaks_the_engine_surface(daemon: Running, state_path: Path) -> None:
    remote = await asyncio.to_thread(connect_blocking, state_path, TOKEN)
    assert isinstance(remote, BlockingRemote)
    try:
        assert await asyncio.to_thread(_step, remote.call("echo", value={"a": [1, "b"]})) == {"a": [1, "b"]}
        path = await asyncio.to_thread(_step, remote.call("echo", value=Path("/srv/x")))
        assert path == "/srv/x"  # converted like the asyncio client converts it
        renamed = await asyncio.to_thread(_step, remote.call("rename", name="a", to="b"))
        assert renamed == {"from": "a", "to": "b"}
        with pytest.raises(ValidationError, match="RFC 1123"):  # the same error type as in process
            await asyncio.to_thread(_step, remote.call("refuse"))
        with pytest.raises(UsageError, match="cannot be sent as JSON"):
            await asyncio.to_thread(_step, remote.call("echo", value=float("nan")))
        facts = await asyncio.to_thread(remote.daemon_status)
        assert "echo" in facts["methods"]
        assert TOKEN not in repr(remote)
    finally:
        remote.close()


async def test_a_wrong_token_is_an_auth_error_and_no_daemon_is_none(
    daemon: Running, state_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(DaemonAuthError, match="wrong daemon token"):
        await asyncio.to_thread(connect_blocking, state_path, "f" * 64)
    assert await asyncio.to_thread(connect_blocking, tmp_path / "other.legion", TOKEN) is None


async def test_a_call_after_the_daemon_stopped_says_so(daemon: Running, state_path: Path) -> None:
    remote = await asyncio.to_thread(connect_blocking, state_path, TOKEN)
    assert remote is not None
    await daemon.finish()
    try:
        with pytest.raises(DaemonNotRunningError, match="closed the connection"):
            await asyncio.to_thread(_step, remote.call("echo", value=1))
    finally:
        remote.close()


def test_a_live_pid_with_no_socket_is_not_a_daemon(runtime_dir: Path, state_path: Path) -> None:
    endpoint = endpoint_for(state_path)
    endpoint.base.mkdir(mode=0o700)
    endpoint.directory.mkdir(mode=0o700)
    write_metadata(endpoint.metadata_path, DaemonMetadata("0", endpoint.address, os.getpid(), "now"))
    assert connect_blocking(state_path, TOKEN) is None


def test_a_one_shot_handler_that_waits_for_a_loop_is_a_bug_not_a_hang(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    @one_shot
    async def sleeper(ctx: Any, args: Any) -> int:
        await asyncio.sleep(0)
        return 0

    assert is_one_shot(sleeper)
    parser = build_parser()
    monkeypatch.setattr("legion_nb.cli.main.build_parser", lambda command=None: parser)
    monkeypatch.setattr("legion_nb.cli.context.CliContext.attach_blocking_daemon", lambda self: True)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands.choices["status"].set_defaults(handler=sleeper)
    assert run(["--state", str(tmp_path / "s.legion"), "status"]) == 70
    assert "marked one-shot waited for an event loop" in capsys.readouterr().err


WARM_PATH_NEVER = frozenset(
    {
        "asyncio",
        "socket",
        "ssl",
        "selectors",
        "concurrent.futures",
        "dataclasses",
        "inspect",
        "ast",
        "dis",
        "tokenize",  # dataclasses and what it pulls in
        "hashlib",
        "_hashlib",
        "hmac",  # _hashlib loads OpenSSL; the endpoint hash uses the built-in sha256
        "shutil",
        "getpass",
        "secrets",
        "legion_nb.engine.wire",
        "legion_nb.engine.daemon.client",
    }
)
"""Modules a daemon-served one-shot command must not import: each costs more than its round trip."""


def test_the_warm_path_modules_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from legion_nb.cli.main import build_parser\n"
        "from legion_nb.cli.context import CliContext\n"
        "from legion_nb.engine.paths import resolve_state_path\n"
        "from legion_nb.engine.daemon.syncclient import connect_blocking\n"
        "build_parser('status')\n"
        "CliContext(state_path=resolve_state_path('x.legion')).token()\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=99)
    loaded = set(out.stdout.split())
    assert "legion_nb.engine.daemon.syncclient" in loaded
    assert not WARM_PATH_NEVER & loaded, sorted(WARM_PATH_NEVER & loaded)


def test_building_the_parser_imports_no_asyncio() -> None:
    code = (
        "import sys\nfrom legion_nb.cli.main import build_parser\n"
        "build_parser()\nprint('asyncio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=99)
    assert out.stdout.strip() == "False"


# -- real processes ------------------------------------------------------------------------------


@pytest.fixture
def env(runtime_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    clean["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return clean


@pytest.fixture
def token(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Path, str]]:
    state = tmp_path / "state.legion"
    assert legion(env, state, "--password-stdin", "init", stdin=PASSWORD + "\n").returncode == 0
    started = legion(env, state, "--password-stdin", "daemon", "start", stdin=PASSWORD + "\n")
    assert started.returncode == 0, started.stderr
    yield state, json.loads(started.stdout)["token"]
    metadata = endpoint_for(state).metadata_path
    if metadata.exists():  # never leave a daemon behind
        pid = json.loads(metadata.read_text())["pid"]
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)


@pytest.mark.slow
def test_daemon_served_one_shot_commands_never_import_asyncio(
    env: dict[str, str], token: tuple[Path, str]
) -> None:
    state, secret = token
    warm = {**env, "LEGION_DAEMON_TOKEN": secret}
    status = legion(warm, state, "--json", "status", importtime=True)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["daemon"] == "running" and report["unlocked"] is True
    assert not {"asyncio", "socket", "ssl"} & imported(status.stderr)
    assert "legion_nb.engine.daemon.syncclient" in imported(status.stderr)
    assert not WARM_PATH_NEVER & imported(status.stderr)

    added = legion(
        warm, state, "plan", "dns-zone", "add", "example.org", "--provider", "hetzner", importtime=True
    )
    assert added.returncode == 0, added.stderr
    assert "asyncio" not in imported(added.stderr)
    shown = legion(warm, state, "--json", "plan", "show")
    assert list(json.loads(shown.stdout)["dns_zones"]) == ["example.org"]

    wrong = legion({**env, "LEGION_DAEMON_TOKEN": "f" * 64}, state, "status")
    assert wrong.returncode == 6
    assert wrong.stderr.strip().count("\n") == 0 and "wrong daemon token" in wrong.stderr

    stopped = legion(warm, state, "daemon", "stop")  # not one-shot: the asyncio path, unchanged
    assert stopped.returncode == 0, stopped.stderr
    cold = legion(warm, state, "--json", "status")  # a token but no daemon: served in process
    assert json.loads(cold.stdout)["daemon"] == "not running"


def legion(
    env: dict[str, str], state: Path, *args: str, stdin: str = "", importtime: bool = False
) -> subprocess.CompletedProcess[str]:
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "legion_nb", "--state", str(state), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def imported(importtime_log: str) -> set[str]:
    """Module names from ``-X importtime`` lines: ``import time: self | cumulative | name``."""
    lines = importtime_log.splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def _step(call: Any) -> Any:
    """Run a call of the blocking client to its end, as the CLI does: it never suspends."""
    try:
        call.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the blocking client suspended")
