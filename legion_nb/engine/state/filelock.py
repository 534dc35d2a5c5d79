"""An advisory, process-exclusive lock on a sibling file, and the filesystem steps of durable writes.

The lock is ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows. Both are released by the
kernel when the holding process dies, however it dies, so a writer killed mid-save never leaves a
lock behind that bricks the state: there is no stale-lock cleanup because there can be no stale lock.

The lock file is opened afresh for every acquisition and closed on release. Keeping it open between
acquisitions would let a forked child inherit the open file description, and with it a ``flock``
that outlives the child's death for as long as the parent keeps the descriptor.

The lock file itself is never deleted: deleting a lock file races with a process that has just
opened it and would let two writers hold "the" lock on two different inodes.

**Who holds it.** The holder writes its pid and role (``"writer"`` for one save, ``"daemon"`` for a
daemon that is the state's only writer) into the lock file once it has the lock, so a process that
waits in vain can say whom it waited for. A lock held by a daemon is not waited for at all: the
daemon keeps it for its whole life, so the waiter is told at once to go through the daemon.

**Held for a lifetime.** :func:`claim_lock` takes the lock until :meth:`LockClaim.release`: the
daemon claims its state's writer lock before it reads the state and keeps it while it serves, so no
process can write behind its back. Saves inside the claiming process still go through
:func:`hold_lock`, which recognises the claimed file by device and inode (a second open of it would
otherwise conflict with the claim, ``flock`` being per open file description) and serializes them
with a thread lock instead. The claim's descriptor is close-on-exec; nothing in a daemon forks
without exec.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from legion_nb.errors import StateBusyError

__all__ = [
    "DAEMON_TOKEN_ENV",
    "LockClaim",
    "StateServedError",
    "claim_lock",
    "fsync_directory",
    "fsync_file",
    "hold_lock",
    "try_claim",
]

_POLL_SECONDS = 0.01
_HOLDER_BYTES = 64
DAEMON_TOKEN_ENV = "LEGION_DAEMON_TOKEN"  # noqa: S105 - the variable's name, not a token


class StateServedError(StateBusyError):
    """A daemon serves this state and is its only writer: changes go through the daemon."""

    code = "state_served"


class LockClaim:
    """A lock this process holds until :meth:`release` (see "Held for a lifetime" above)."""

    def __init__(self, fd: int, key: tuple[int, int], path: Path) -> None:
        self._fd: int | None = fd
        self._key = key
        self.path = path
        self.turn = threading.Lock()  # this process's writers take turns on the claimed lock

    def __repr__(self) -> str:
        return f"LockClaim({str(self.path)!r}, {'released' if self._fd is None else 'held'})"

    def release(self) -> None:
        """Give the lock up (idempotent); this process's writers wait for it like anyone else's."""
        with _CLAIMS_GUARD:
            if _CLAIMS.get(self._key) is self:
                del _CLAIMS[self._key]
        fd, self._fd = self._fd, None
        if fd is not None:
            _forget_holder(fd)
            with contextlib.suppress(OSError):  # closing drops the lock whatever unlock says
                _unlock(fd)
            os.close(fd)


_CLAIMS: dict[tuple[int, int], LockClaim] = {}
_CLAIMS_GUARD = threading.Lock()


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


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino)


def _write_holder(fd: int, role: str) -> None:
    """Record who holds the lock (best effort: it only improves the waiters' error messages)."""
    record = f"{os.getpid()} {role}\n".encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, record)


def _forget_holder(fd: int) -> None:
    """Clear the record before unlocking: a record is only ever read while someone holds the lock."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there; records are unread anyway
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def _read_holder(fd: int) -> tuple[int, str] | None:
    """The pid and role the holder recorded, or None if unreadable (Windows locks the byte)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, _HOLDER_BYTES)
        pid_text, _, role = raw.decode("ascii").strip().partition(" ")
        return int(pid_text), role or "writer"
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _served(path: Path, pid: int) -> StateServedError:
    return StateServedError(
        f"a legion daemon (pid {pid}) serves this state and is its only writer: send the change "
        f"through it with --daemon-token or {DAEMON_TOKEN_ENV}, or stop it with 'legion daemon stop'"
    )


def _acquire(fd: int, path: Path, timeout: float) -> None:
    """Wait for the flock on ``fd``; a daemon's lock is reported at once, others after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not _try_lock(fd):
        holder = _read_holder(fd)
        # A daemon's record is trusted only while its pid lives: a killed daemon leaves its record,
        # and a writer that has just taken the lock may not have replaced it yet.
        if holder is not None and holder[1] == "daemon" and _alive(holder[0]):
            raise _served(path, holder[0])
        if time.monotonic() >= deadline:
            who = f"pid {holder[0]}; " if holder is not None else ""
            raise StateBusyError(
                f"another process is writing this state ({who}lock {path} held for more than "
                f"{timeout:g} s); wait for it to finish, raise --lock-timeout, or stop that process"
            )
        time.sleep(_POLL_SECONDS)


@contextlib.contextmanager
def hold_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold the exclusive lock on ``path`` for the ``with`` block, waiting at most ``timeout`` s.

    Raises :class:`StateServedError` at once if a daemon holds it for life, :class:`StateBusyError`
    if another process (or another open of the same file in this process) keeps it for the whole
    wait, naming the holder's pid. Blocking: call it from a worker thread.
    """
    fd = _open_lock_file(path)
    try:
        with _CLAIMS_GUARD:
            claim = _CLAIMS.get(_identity(fd))
        if claim is not None:  # this process claimed it: take turns with its other writers
            os.close(fd)
            fd = -1
            if not claim.turn.acquire(timeout=timeout):
                raise StateBusyError(
                    f"another writer in this process kept the lock {path} for more than {timeout:g} s"
                )
            try:
                yield
            finally:
                claim.turn.release()
            return
        _acquire(fd, path, timeout)
        _write_holder(fd, "writer")
        try:
            yield
        finally:
            _forget_holder(fd)
            _unlock(fd)
    finally:
        if fd >= 0:
            os.close(fd)


def claim_lock(path: Path, *, timeout: float, role: str = "daemon") -> LockClaim:
    """Take the lock on ``path`` until the returned claim is released (a daemon's lifetime).

    Waits like :func:`hold_lock` for a save in flight; raises :class:`StateServedError` if another
    daemon holds it. Blocking: call it from a worker thread.
    """
    fd = _open_lock_file(path)
    try:
        _acquire(fd, path, timeout)
        _write_holder(fd, role)
        key = _identity(fd)
    except BaseException:
        os.close(fd)
        raise
    claim = LockClaim(fd, key, path)
    with _CLAIMS_GUARD:
        _CLAIMS[key] = claim
    return claim


def try_claim(path: Path, *, role: str) -> LockClaim | None:
    """Take the lock on ``path`` now, until the claim is released, or None while anyone else holds
    it (another process, or another open of the file in this one). Never waits. Claims taken this
    way are for liveness (who runs what), not for this module's saves: :func:`hold_lock` does not
    share them."""
    fd = _open_lock_file(path)
    try:
        if not _try_lock(fd):
            os.close(fd)
            return None
        _write_holder(fd, role)
        return LockClaim(fd, _identity(fd), path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


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
