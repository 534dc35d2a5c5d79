"""``daemon.json``: what a client may know about a running daemon without asking it.

It holds the version, the endpoint, the pid and the creation time, and deliberately never the
token: whoever can read this file can find the daemon, not command it. It is written 0600 into
the private endpoint directory, atomically (temporary file created 0600, then renamed) so that a
reader never sees half a file and the mode is right from the first byte.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = ["DaemonMetadata", "pid_alive", "read_metadata", "remove_quietly", "write_metadata"]


class DaemonMetadata(NamedTuple):
    """What ``daemon.json`` holds: an immutable value.

    A ``NamedTuple`` rather than a frozen dataclass, because every warm CLI command reads it and
    ``dataclasses`` imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``).
    """

    version: str
    endpoint: str
    pid: int
    created: str  # ISO 8601, UTC

    def as_dict(self) -> dict[str, str | int]:
        """The fields by name, as ``daemon.json`` stores them."""
        return {"version": self.version, "endpoint": self.endpoint, "pid": self.pid, "created": self.created}


def write_metadata(path: Path, metadata: DaemonMetadata) -> None:
    data = json.dumps(metadata.as_dict(), sort_keys=True).encode() + b"\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    remove_quietly(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def read_metadata(path: Path) -> DaemonMetadata | None:
    """The metadata at ``path``, or None when it is missing or not ours to trust (garbled, wrong types)."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):  # missing, unreadable or garbled: as good as absent
        return None
    if not isinstance(raw, dict):
        return None
    version, endpoint, pid, created = (raw.get(k) for k in ("version", "endpoint", "pid", "created"))
    if not (isinstance(version, str) and isinstance(endpoint, str) and isinstance(created, str)):
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    return DaemonMetadata(version=version, endpoint=endpoint, pid=pid, created=created)


def remove_quietly(path: Path) -> bool:
    """Remove a file that may already be gone; True if it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    _PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    _STILL_ACTIVE = 259

    def pid_alive(pid: int) -> bool:
        """Whether a process with this pid is running.

        ``os.kill(pid, 0)`` would *terminate* it on Windows, so ask for its exit code instead.
        """
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return False
        try:
            code = wintypes.DWORD()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return False
            return code.value == _STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)

else:

    def pid_alive(pid: int) -> bool:
        """Whether a process with this pid exists (it may belong to someone else); zombies are dead."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        try:  # Linux: a zombie has exited and only waits for its parent to reap it
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:  # no procfs (macOS, BSD) or the process just left
            return True
        state_at = stat.rfind(b")") + 2  # the comm field may hold spaces and parentheses
        return stat[state_at : state_at + 1] != b"Z"
