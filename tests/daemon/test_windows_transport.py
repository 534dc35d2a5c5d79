"""The Windows named-pipe transport cannot run here; these tests keep it importable and type-correct.

Its behaviour (DACL for the current user's SID only, ``PIPE_REJECT_REMOTE_CLIENTS``,
``FILE_FLAG_FIRST_PIPE_INSTANCE``, overlapped I/O) is untested until it runs on Windows; what can be
checked on Linux is that every module the Windows daemon imports type-checks for ``win32``, and that
on other platforms the pipe functions fail with a clear message instead of half-working.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from legion_nb.engine.daemon.transport_windows import connect_pipe, listen_pipe
from legion_nb.errors import DaemonError

ROOT = Path(__file__).resolve().parents[2]
WINDOWS_MODULES = [
    "legion_nb/engine/daemon/protocol.py",
    "legion_nb/engine/daemon/endpoint.py",
    "legion_nb/engine/daemon/metadata.py",
    "legion_nb/engine/daemon/peercred.py",
    "legion_nb/engine/daemon/streams.py",
    "legion_nb/engine/daemon/server.py",
    "legion_nb/engine/daemon/client.py",
    "legion_nb/engine/daemon/host.py",
    "legion_nb/engine/daemon/transport_windows.py",
    "legion_nb/cli/daemon.py",
]


async def test_named_pipes_are_refused_off_windows() -> None:
    async def handler(*_: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(DaemonError, match="Windows only"):
        await listen_pipe(r"\\.\pipe\legion-nb-test", handler)
    with pytest.raises(OSError, match="Windows only"):
        await connect_pipe(r"\\.\pipe\legion-nb-test")


@pytest.mark.slow
def test_the_windows_code_paths_type_check_for_win32() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--platform",
            "win32",
            "--no-incremental",
            "--cache-dir",
            "/dev/null",
            *WINDOWS_MODULES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
