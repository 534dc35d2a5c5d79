"""An advisory, process-exclusive lock on a sibling file, and the filesystem steps of durable writes.

The lock is ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows. Both are released by the
kernel when the holding process dies, however it dies, so a writer killed mid-save never leaves a
lock behind that bricks the state: there is no stale-lock cleanup because there can be no stale lock.

The lock file is opened afresh for every acquisition and closed on release. Keeping it open between
acquisitions would let a forked child inherit the open file description, and with it a ``flock``
that outlives the child's death for as long as the parent keeps the descriptor.

The lock file itself is never deleted: deleting a lock file races with a process that has just
opened it and would let two writers hold "the" lock on two different inodes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from legion_nb.errors import StateBusyError

__all__ = ["fsync_directory", "fsync_file", "hold_lock"]

_POLL_SECONDS = 0.01


class LockTimeout(Exception):
    """The lock stayed held by another process for the whole wait."""


def _open_lock_file(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, 0o600)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:  # EACCES / EDEADLOCK: another process holds byte 0
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    _FULL_FSYNC: int | None = None

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # EWOULDBLOCK: another open file description holds it
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    _FULL_FSYNC = getattr(fcntl, "F_FULLFSYNC", None)  # macOS only


@contextlib.contextmanager
def hold_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold the exclusive lock on ``path`` for the ``with`` block, waiting at most ``timeout`` s.

    Raises :class:`StateBusyError` if another process (or another open of the same file in this
    process) keeps it for the whole wait. Blocking: call it from a worker thread.
    """
    fd = _open_lock_file(path)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise StateBusyError(
                    f"another process is writing this state (lock {path} held for more than {timeout:g} s); "
                    "wait for it to finish or stop the other legion process"
                )
            time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def fsync_file(fd: int) -> None:
    """Flush a file to stable storage; on macOS plain fsync stops at the drive cache, so ask for more."""
    if _FULL_FSYNC is not None:
        try:
            fcntl.fcntl(fd, _FULL_FSYNC)
        except OSError:  # some filesystems refuse F_FULLFSYNC; plain fsync is the fallback
            os.fsync(fd)
        else:
            return
    os.fsync(fd)


def fsync_directory(path: Path) -> None:
    """Make renames and new links in ``path`` durable. Windows cannot open directories: it journals them."""
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
