"""The encrypted state file on disk: create, unlock, durable atomic saves, password change.

Files, all in the state's directory (``state.legion`` as the example name)::

    state.legion          the live envelope (see crypto.py), mode 0600
    state.legion.bak      the previous generation, a hard link to the inode that was live before
    state.legion.lock     the advisory lock file (never deleted)
    .state.legion.*.tmp   a save in progress; leftovers of a killed writer are swept on the next save
                          (one that cannot be removed is skipped with a warning, never fatal)

**What counts as a state file.** The path is resolved first: a symlinked state is followed and its
*target* is read and written, with the backup, lock and temp files beside the target (a save
replaces the target, never the link). The live file must then be a regular file of at most
:data:`MAX_STATE_BYTES`; a directory, FIFO, device (a link to ``/dev/zero``) or a bigger file is
refused before a byte of it is read, and a save that would outgrow the bound is refused before
anything is written, so a state this store writes can always be read back.

**A save** seals the payload under a fresh nonce with the next generation number, then, holding the
lock: checks that the live file is still the one this store last read or wrote (else
:class:`StateConflictError`), writes a temp file (``O_EXCL``, 0600) and fsyncs it, hard-links the
live file to ``.bak`` (through a temp name and ``os.replace``, so the backup flips atomically too),
``os.replace``-s the temp file over the live one and fsyncs the directory. The live file is never
opened for writing, so every crash leaves either the old or the new generation under the live name,
and a save that returned is on disk. On filesystems without hard links the live file is renamed to
``.bak`` instead, which opens a window of microseconds with no live file; unlock covers it (below).

**Conflicts.** Two writers of the same file (two processes, or two stores in one process) are
serialized by the lock and never interleave. The second one to write after both loaded the same
generation is refused with :class:`StateConflictError`: its in-memory state was never merged with
the other's save. The comparison is on the 170-byte header, which holds a random nonce per save.
A writer that can merge passes ``rebase`` to :meth:`SecureStateStore.save`: still holding the lock,
it gets the latest payload and writes its change on top of it (the persistence supervisor re-applies
its pure mutations), so parallel CLI commands all land. A save waits for the lock up to the lock
timeout (the CLI's ``--lock-timeout``), then fails naming the holder's pid.

**One writer for a daemon.** A daemon claims the lock for its whole life (:func:`claim_writer`)
before it reads the state: its own saves go on as usual, any other process's save is refused at
once with :class:`~legion_nb.engine.state.filelock.StateServedError`, naming the daemon's pid and
``LEGION_DAEMON_TOKEN``. Nothing is written behind the daemon's back, so it is never stale.

**Recovery.** If the live file is missing but ``.bak`` exists, unlock opens the backup with the
password and reinstates it as the live file (logged as a warning). Under this store's own protocol
that only happens after a crash inside the no-hard-link rename window, where the backup is the last
acknowledged save, so nothing acknowledged is lost. The restore is tried once: if the live file
vanishes again, unlock ends with one error line rather than restoring in a loop. A *damaged* live
file is never replaced automatically: the error names the backup and lets the operator decide.

**Password change** re-encrypts under a fresh data key and a fresh salt (not just a re-wrap of the
same data key): with a re-wrap, any old copy of the file plus the old password would still yield the
key that decrypts every later save. The backup slot is pointed at the new file as well, so no file
under the old password remains beside the state (copies elsewhere, e.g. system backups, do).

All blocking work (Argon2id, file I/O, fsync, lock waits) runs in worker threads via
``asyncio.to_thread``; a ``threading.Lock`` serializes this store's own operations, so :meth:`close`
never wipes the key under a save that is still encrypting with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from legion_nb.engine.state.crypto import (
    DEFAULT_KDF,
    HEADER_SIZE,
    SALT_SIZE,
    Envelope,
    FileLabel,
    SecretKey,
    WrappingKeyFor,
    derive_wrapping_key,
    open_key_slot,
    open_payload,
    parse_envelope,
    seal_key_slot,
    seal_payload,
)
from legion_nb.engine.state.filelock import LockClaim, claim_lock, fsync_directory, fsync_file, hold_lock
from legion_nb.errors import (
    LockedError,
    StateConflictError,
    StateError,
    StateExistsError,
    StateNotFoundError,
    UsageError,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MAX_STATE_BYTES",
    "Rebase",
    "SecureStateStore",
    "StateIOError",
    "StateSizeError",
    "claim_writer",
]

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = 2.0
"""Seconds a save waits for another process's write to finish before :class:`StateBusyError`."""

Rebase = Callable[[bytes], bytes]
"""Given the latest payload on disk, the payload to write on top of it (see :meth:`SecureStateStore.save`)."""

MAX_STATE_BYTES = 256 * 1024 * 1024
"""The largest state file read or written: far above any fleet's plan and records, far below what
would exhaust an operator machine's memory (the payload is held encrypted and decrypted at once)."""

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


class StateIOError(StateError):
    """The operating system refused a read or write of the state files (permissions, full disk)."""

    code = "state_io"


class StateSizeError(StateError):
    """A state file (read) or payload (written) beyond :data:`MAX_STATE_BYTES`."""

    code = "state_size"


def _io_error(action: str, path: Path, exc: OSError) -> StateIOError:
    return StateIOError(
        f"cannot {action} {path}: {exc.strerror or exc}; check free space, owner and permissions"
    )


def _links_unsupported(exc: OSError) -> bool:
    return exc.errno in _NO_HARD_LINKS or getattr(exc, "winerror", None) is not None


def _require_new_password(password: str) -> None:
    if not password:
        raise UsageError("the new password is empty; choose a non-empty password")


@dataclass(frozen=True, slots=True)
class _StateFiles:
    """The state's sibling files and the filesystem steps on them (all blocking)."""

    live: Path

    @property
    def directory(self) -> Path:
        return self.live.parent

    @property
    def backup(self) -> Path:
        return self.live.with_name(self.live.name + ".bak")

    @property
    def lock(self) -> Path:
        return self.live.with_name(self.live.name + ".lock")

    @property
    def label(self) -> FileLabel:
        """How errors name the live file; the recovery advice depends on whether a backup exists."""
        if not os.path.lexists(self.backup):
            return FileLabel(name=str(self.live), recovery="restore the state from a copy kept elsewhere")
        return FileLabel(
            name=str(self.live),
            recovery=f"keep a copy of it, then restore the previous save by renaming {self.backup} to "
            f"{self.live.name}",
        )

    @property
    def backup_label(self) -> FileLabel:
        return FileLabel(name=str(self.backup), recovery="restore the state from a copy kept elsewhere")

    def _temp_prefix(self) -> str:
        return f".{self.live.name}."

    def temp_path(self) -> Path:
        return self.directory / f"{self._temp_prefix()}{secrets.token_hex(8)}.tmp"

    def exists(self) -> bool:
        return os.path.lexists(self.live) or os.path.lexists(self.backup)

    def refuse_existing(self) -> None:
        if self.exists():
            raise StateExistsError(
                f"a state already exists at {self.live} (or its backup {self.backup.name}); unlock it, "
                "or choose another --state path"
            )

    @classmethod
    def at(cls, path: Path) -> _StateFiles:
        """The files of the state at ``path``, with every symlink on the way resolved (see the notes)."""
        return cls(Path(os.path.realpath(Path(path).absolute())))

    @staticmethod
    def read(path: Path, *, header_only: bool = False) -> bytes:
        """The whole regular file (or its header); ``FileNotFoundError`` passes through, other OS
        errors become StateIOError, a file beyond :data:`MAX_STATE_BYTES` StateSizeError.

        Type and size are checked on the open descriptor before reading: a FIFO is opened without
        blocking, and a device or directory is refused rather than read without end.
        """
        flags = (
            os.O_RDONLY
            | getattr(os, "O_NONBLOCK", 0)
            | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_BINARY", 0)
        )
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise _io_error("read", path, exc) from exc
        try:
            _check_regular(path, os.fstat(fd), header_only=header_only)
            file = os.fdopen(fd, "rb")
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise _io_error("read", path, exc) from exc
            raise
        with file:
            try:
                blob = file.read(HEADER_SIZE if header_only else MAX_STATE_BYTES + 1)
            except OSError as exc:
                raise _io_error("read", path, exc) from exc
        if len(blob) > MAX_STATE_BYTES:  # it grew while we read it
            raise _too_large(path, len(blob))
        return blob

    def read_header(self) -> bytes | None:
        try:
            return self.read(self.live, header_only=True)
        except FileNotFoundError:
            return None

    def write_temp(self, blob: bytes) -> Path:
        """A new, fsynced temp file holding ``blob``; removed again if anything fails."""
        temp = self.temp_path()
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_BINARY", 0)
        )
        fd = os.open(temp, flags, 0o600)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            fsync_file(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):  # best effort: the sweep removes it otherwise
                os.unlink(temp)
            raise
        os.close(fd)
        return temp

    def link_atomically(self, source: Path, target: Path) -> bool:
        """Make ``target`` a hard link to ``source``'s inode, atomically; False where links do not exist."""
        temp = self.temp_path()
        try:
            os.link(source, temp)
        except OSError as exc:
            if _links_unsupported(exc):
                return False
            raise
        try:
            os.replace(temp, target)
        finally:
            # POSIX rename() of two links to the same inode (a backup that already is the live file,
            # after a password change) succeeds without doing anything: the temp name stays.
            with contextlib.suppress(OSError):  # normally already gone; else the sweep removes it
                os.unlink(temp)
        return True

    def publish_new(self, temp: Path) -> None:
        """Move ``temp`` to the live name, refusing to overwrite; the caller holds the lock."""
        try:
            os.link(temp, self.live)
        except FileExistsError:
            os.unlink(temp)
            self.refuse_existing()
            raise
        except OSError as exc:
            if not _links_unsupported(exc):
                os.unlink(temp)
                raise
            if os.path.lexists(self.live):
                os.unlink(temp)
                self.refuse_existing()
            os.replace(temp, self.live)
            return
        os.unlink(temp)

    def install(self, blob: bytes, *, lock_timeout: float, over_backup: bool) -> bool:
        """Durably make ``blob`` the live file if there is none; False if a live file appeared.

        ``over_backup=False`` (create) also refuses when only a backup exists, with StateExistsError.
        """
        with hold_lock(self.lock, timeout=lock_timeout):
            if not over_backup:
                self.refuse_existing()
            elif os.path.lexists(self.live):
                return False
            self.publish_new(self.write_temp(blob))
            fsync_directory(self.directory)
        return True

    def sweep_temps(self) -> None:
        """Remove temp files left by killed writers; only safe while holding the lock.

        An entry that cannot be removed (another owner, a directory of that name) is skipped with a
        warning: it never blocks a save, whose own temp name is random.
        """
        prefix = self._temp_prefix()
        try:
            with os.scandir(self.directory) as entries:
                names = [e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(".tmp")]
        except OSError as exc:  # an unlistable directory: there is nothing we could sweep anyway
            logger.warning(
                "cannot list %s to remove stale temp files: %s", self.directory, exc.strerror or exc
            )
            return
        for name in names:
            try:
                os.unlink(self.directory / name)
            except FileNotFoundError:  # another sweep got there first
                continue
            except OSError as exc:  # not ours to remove: leave it, the save does not need its name
                logger.warning(
                    "cannot remove stale temp file %s: %s", self.directory / name, exc.strerror or exc
                )

    def ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _check_regular(path: Path, info: os.stat_result, *, header_only: bool) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise StateIOError(
            f"cannot read {path}: it is {_file_kind(info.st_mode)}, not a regular file; "
            "point --state at the state file"
        )
    if not header_only and info.st_size > MAX_STATE_BYTES:
        raise _too_large(path, info.st_size)


def claim_writer(path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> LockClaim:
    """Become the only writer of the state at ``path`` until the claim is released (a daemon's life).

    Other processes' saves are then refused at once with :class:`StateServedError`; this
    process's stores write as usual. Waits up to ``timeout`` for a save in flight. Blocking.
    """
    files = _StateFiles.at(path)
    if not files.exists():
        raise _not_found(Path(path), files.live)
    try:
        return claim_lock(files.lock, timeout=timeout, role="daemon")
    except OSError as exc:
        raise _io_error("lock", files.lock, exc) from exc


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a special file"


def _not_found(given: Path, live: Path) -> StateNotFoundError:
    return StateNotFoundError(
        f"no state at {_named(given, live)}; create one with `legion init`, or point --state "
        "(or LEGION_STATE) at an existing state file"
    )


def _named(given: Path, live: Path) -> str:
    """The state path as the operator gave it, and where its symlinks lead when that differs."""
    if os.path.islink(given):
        return f"{given} (a symlink to {live}, which does not exist)"
    return str(live)


def _sealed_within_bound(live: Path, blob: bytes) -> bytes:
    """``blob`` if a reader will accept it; a bigger state is refused before anything is written."""
    if len(blob) > MAX_STATE_BYTES:
        raise StateSizeError(
            f"refusing to write {live}: the state would take {len(blob)} bytes, more than a state file "
            f"may ({MAX_STATE_BYTES}); remove records you no longer need"
        )
    return blob


def _too_large(path: Path, size: int) -> StateSizeError:
    return StateSizeError(
        f"{path} holds {size} bytes, more than a state file may ({MAX_STATE_BYTES}); "
        "point --state at the state file"
    )


@contextlib.contextmanager
def _wiped_on_failure(key: SecretKey, action: str, path: Path) -> Iterator[None]:
    """Wipe ``key`` if the block fails: a store that was never returned must not leave its key behind."""
    try:
        yield
    except OSError as exc:
        key.wipe()
        raise _io_error(action, path, exc) from exc
    except BaseException:
        key.wipe()
        raise


def _open_data_key(envelope: Envelope, wrapping_key_for: WrappingKeyFor) -> SecretKey:
    wrapping_key = wrapping_key_for(envelope)
    try:
        return open_key_slot(envelope, wrapping_key)
    finally:
        wrapping_key.wipe()


def _open(envelope: Envelope, wrapping_key_for: WrappingKeyFor) -> tuple[SecretKey, bytes]:
    data_key = _open_data_key(envelope, wrapping_key_for)
    try:
        return data_key, open_payload(envelope, data_key)
    except BaseException:
        data_key.wipe()
        raise


def _by_password(password: str) -> WrappingKeyFor:
    def derive(envelope: Envelope) -> SecretKey:
        return derive_wrapping_key(password, envelope.kdf, envelope.salt)

    return derive


class SecureStateStore:
    """One unlocked state file: holds the data key, writes durable generations, detects conflicts.

    Build one with :meth:`create` or :meth:`unlock`; :meth:`close` drops the key.
    """

    path: Path

    def __init__(
        self,
        files: _StateFiles,
        *,
        data_key: SecretKey,
        key_slot: bytes,
        generation: int,
        disk_header: bytes,
        lock_timeout: float,
    ) -> None:
        """Internal: use :meth:`create` or :meth:`unlock`."""
        self.path = files.live
        self._files = files
        self._data_key: SecretKey | None = data_key
        self._key_slot = key_slot
        self._generation = generation
        self._disk_header = disk_header
        self._lock_timeout = lock_timeout
        self._swept = False
        self._io = threading.Lock()

    def __repr__(self) -> str:
        status = "closed" if self._data_key is None else f"generation {self._generation}"
        return f"SecureStateStore({str(self.path)!r}, {status})"

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    async def create(
        cls, path: Path, password: str, payload: bytes, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> SecureStateStore:
        """A new state at ``path`` holding ``payload``; its parent directory is created mode 0700.

        Raises :class:`StateExistsError` if a state or its backup is already there (checked before
        and again, under the lock, after the slow key derivation), :class:`UsageError` for an empty
        password.
        """
        _require_new_password(password)
        return await asyncio.to_thread(cls._create_sync, Path(path), password, payload, lock_timeout)

    @classmethod
    def _create_sync(cls, path: Path, password: str, payload: bytes, lock_timeout: float) -> SecureStateStore:
        files = _StateFiles.at(path)
        files.refuse_existing()  # before the slow derivation; checked again under the lock
        salt = secrets.token_bytes(SALT_SIZE)
        wrapping_key = derive_wrapping_key(password, DEFAULT_KDF, salt)
        data_key = SecretKey.generate()
        try:
            key_slot = seal_key_slot(data_key, wrapping_key, DEFAULT_KDF, salt)
        finally:
            wrapping_key.wipe()
        blob = _sealed_within_bound(files.live, seal_payload(key_slot, data_key, 1, payload))
        with _wiped_on_failure(data_key, "create", files.live):
            files.ensure_directory()
            files.install(blob, lock_timeout=lock_timeout, over_backup=False)
        return cls(
            files,
            data_key=data_key,
            key_slot=key_slot,
            generation=1,
            disk_header=blob[:HEADER_SIZE],
            lock_timeout=lock_timeout,
        )

    @classmethod
    async def unlock(
        cls, path: Path, password: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> tuple[SecureStateStore, bytes]:
        """Open the state at ``path`` with ``password``: the store and the decrypted payload.

        Raises :class:`StateNotFoundError`, :class:`WrongPasswordError`, :class:`StateCorruptedError`,
        :class:`StateFormatError` or :class:`StateIOError`; a failed unlock never writes.
        """
        return await asyncio.to_thread(
            cls._unlock_with, Path(path), _by_password(password), lock_timeout=lock_timeout
        )

    @classmethod
    def _unlock_with(
        cls, path: Path, wrapping_key_for: WrappingKeyFor, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> tuple[SecureStateStore, bytes]:
        """Internal, blocking: :meth:`unlock` with the key derivation supplied by the caller.

        :meth:`unlock` passes Argon2id over the password. Tests that open hundreds of files sharing
        one salt (the crash test) pass a derivation they ran once: everything else - parsing,
        bounds, key slot, payload, recovery - is this same code.
        """
        files = _StateFiles.at(path)
        try:
            blob = files.read(files.live)
        except FileNotFoundError:
            return cls._restore_backup(files, Path(path), wrapping_key_for, lock_timeout)
        return cls._open_blob(files, blob, wrapping_key_for, lock_timeout)

    @classmethod
    def _open_blob(
        cls, files: _StateFiles, blob: bytes, wrapping_key_for: WrappingKeyFor, lock_timeout: float
    ) -> tuple[SecureStateStore, bytes]:
        envelope = parse_envelope(blob, files.label)
        data_key, payload = _open(envelope, wrapping_key_for)
        return cls._opened(files, envelope, data_key, lock_timeout), payload

    @classmethod
    def _restore_backup(
        cls, files: _StateFiles, given: Path, wrapping_key_for: WrappingKeyFor, lock_timeout: float
    ) -> tuple[SecureStateStore, bytes]:
        """Reinstate ``.bak`` as the live file, once; a live file that appears meanwhile wins."""
        try:
            blob = files.read(files.backup)
        except FileNotFoundError:
            raise _not_found(given, files.live) from None
        envelope = parse_envelope(blob, files.backup_label)
        data_key, payload = _open(envelope, wrapping_key_for)
        with _wiped_on_failure(data_key, "restore the backup to", files.live):
            restored = files.install(blob, lock_timeout=lock_timeout, over_backup=True)
        if not restored:  # a writer put a live file back while we were deriving: read that one instead
            data_key.wipe()
            try:
                live = files.read(files.live)
            except FileNotFoundError:
                raise StateIOError(
                    f"state file {files.live} appeared and vanished again while its backup was being "
                    "restored: stop whatever else moves it, then unlock again"
                ) from None
            return cls._open_blob(files, live, wrapping_key_for, lock_timeout)
        logger.warning(
            "state file %s was missing; restored it from its backup %s (generation %d)",
            files.live,
            files.backup.name,
            envelope.generation,
        )
        return cls._opened(files, envelope, data_key, lock_timeout), payload

    @classmethod
    def _opened(
        cls, files: _StateFiles, envelope: Envelope, data_key: SecretKey, lock_timeout: float
    ) -> SecureStateStore:
        return cls(
            files,
            data_key=data_key,
            key_slot=envelope.key_slot,
            generation=envelope.generation,
            disk_header=envelope.header,
            lock_timeout=lock_timeout,
        )

    # -- use ------------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """The generation number of the file as this store last read or wrote it."""
        return self._generation

    @property
    def backup_path(self) -> Path:
        return self._files.backup

    @property
    def closed(self) -> bool:
        return self._data_key is None

    async def save(self, payload: bytes, *, rebase: Rebase | None = None) -> None:
        """Write ``payload`` as the next generation; durable on disk when this returns.

        If the file changed since this store last read or wrote it (another process saved), the
        save is refused with :class:`StateConflictError` - unless ``rebase`` is given: then, still
        holding the lock, the latest payload on disk is decrypted and ``rebase(latest)`` (run in a
        worker thread) returns what to write on top of it instead of ``payload``. A file that was
        removed, or re-encrypted under another password, is a conflict either way.

        Also raises :class:`StateBusyError` if another process holds the write lock for longer
        than the lock timeout (:class:`StateServedError` at once if a daemon holds it),
        :class:`StateIOError` if the disk refuses, :class:`LockedError` after close.
        """
        self._require_key()
        await asyncio.to_thread(self._save_sync, payload, rebase)

    def _save_sync(self, payload: bytes, rebase: Rebase | None = None) -> None:
        with self._io:
            generation = self._generation + 1
            blob = seal_payload(self._key_slot, self._require_key(), generation, payload)
            self._replace(blob, generation, backup_is_new=False, rebase=rebase)

    async def change_password(self, old: str, new: str) -> None:
        """Re-encrypt the state under ``new`` (fresh salt and data key); ``old`` stops working.

        Raises :class:`WrongPasswordError` if ``old`` does not open the file, :class:`UsageError`
        for an empty ``new``, and the errors of :meth:`save`.
        """
        _require_new_password(new)
        self._require_key()
        await asyncio.to_thread(self._change_password_sync, old, new)

    def _change_password_sync(self, old: str, new: str) -> None:
        with self._io:
            current = self._require_key()
            files = self._files
            try:
                blob = files.read(files.live)
            except FileNotFoundError:
                raise self._conflict("was removed") from None
            if not hmac.compare_digest(blob[:HEADER_SIZE], self._disk_header):
                raise self._conflict("was changed by another process")
            envelope = parse_envelope(blob, files.label)
            old_key, payload = _open(envelope, _by_password(old))
            old_key.wipe()
            salt = secrets.token_bytes(SALT_SIZE)
            wrapping_key = derive_wrapping_key(new, envelope.kdf, salt)
            data_key = SecretKey.generate()
            try:
                key_slot = seal_key_slot(data_key, wrapping_key, envelope.kdf, salt)
            finally:
                wrapping_key.wipe()
            generation = self._generation + 1
            blob = seal_payload(key_slot, data_key, generation, payload)
            try:
                self._replace(blob, generation, backup_is_new=True)
            finally:
                # Whatever failed, the key that matches the live file is the one to keep.
                if self._disk_header == blob[:HEADER_SIZE]:
                    current.wipe()
                    self._data_key = data_key
                    self._key_slot = key_slot
                else:
                    data_key.wipe()

    def close(self) -> None:
        """Zero and drop the data key (waiting for a save in flight); later use raises LockedError."""
        with self._io:
            if self._data_key is not None:
                self._data_key.wipe()
                self._data_key = None

    # -- internals ------------------------------------------------------------------------------

    def _require_key(self) -> SecretKey:
        if self._data_key is None:
            raise LockedError(f"the state {self.path} is locked (its store was closed); unlock it again")
        return self._data_key

    def _conflict(self, what: str) -> StateConflictError:
        return StateConflictError(
            f"state file {self.path} {what} since this session loaded it (generation {self._generation}); "
            "unlock it again to load the latest state, then repeat the change"
        )

    @contextlib.contextmanager
    def _write_lock(self, rebase: Rebase | None = None) -> Iterator[tuple[bytes, int] | None]:
        """The process-exclusive lock plus the conflict check: the file is still what we last saw.

        With ``rebase``, a changed file yields the blob (and generation) to write on top of it.
        """
        files = self._files
        with hold_lock(files.lock, timeout=self._lock_timeout):
            header = files.read_header()
            if header is None:
                raise self._conflict("was removed")
            rebased = None
            if not hmac.compare_digest(header, self._disk_header):
                if rebase is None:
                    raise self._conflict("was changed by another process")
                rebased = self._rebased(rebase)
            if not self._swept:
                files.sweep_temps()
                self._swept = True
            yield rebased

    def _rebased(self, rebase: Rebase) -> tuple[bytes, int]:
        """The next generation on top of the live file: its payload through ``rebase``, resealed."""
        files = self._files
        try:
            envelope = parse_envelope(files.read(files.live), files.label)
        except FileNotFoundError:
            raise self._conflict("was removed") from None
        if not hmac.compare_digest(envelope.key_slot, self._key_slot):
            raise self._conflict("was re-encrypted under another password")
        data_key = self._require_key()
        payload = rebase(open_payload(envelope, data_key))
        generation = envelope.generation + 1
        return _sealed_within_bound(
            files.live, seal_payload(self._key_slot, data_key, generation, payload)
        ), generation

    def _replace(
        self, blob: bytes, generation: int, *, backup_is_new: bool, rebase: Rebase | None = None
    ) -> None:
        """Install ``blob`` as the live file, durably; ``.bak`` becomes the previous file or ``blob``."""
        files = self._files
        _sealed_within_bound(files.live, blob)
        try:
            with self._write_lock(rebase) as rebased:
                if rebased is not None:
                    blob, generation = rebased
                temp = files.write_temp(blob)
                try:
                    if not backup_is_new and not files.link_atomically(files.live, files.backup):
                        os.replace(files.live, files.backup)  # no hard links here: see the module notes
                    os.replace(temp, files.live)
                except BaseException:
                    with contextlib.suppress(OSError):  # best effort: the sweep removes it otherwise
                        os.unlink(temp)
                    raise
                # The live file is now `blob`, whatever fails below: later conflict checks compare to it.
                self._disk_header = blob[:HEADER_SIZE]
                self._generation = generation
                if backup_is_new and not files.link_atomically(files.live, files.backup):
                    os.replace(files.write_temp(blob), files.backup)
                fsync_directory(files.directory)
        except OSError as exc:
            raise _io_error("write", files.live, exc) from exc
