"""Opening Legion's local databases: SQLite in WAL mode, private to the operator.

The telemetry and log stores (observation) and the ledger store (billing) each keep one file in
the state's log directory; this is the one way they open it.

Why SQLite and WAL: the notebook kernel and the daemon may both have the same state unlocked. WAL lets
any number of readers run while one writer commits, across processes on one host, and
``synchronous=NORMAL`` keeps commits cheap while a crash still loses nothing that was committed
before the last checkpoint-safe point. The databases live beside the state in its log directory
(mode 0700) and are created 0600 before SQLite touches them (SQLite gives its ``-wal`` and ``-shm``
files the database file's mode).

Calls block: services run them in a worker thread (``asyncio.to_thread``) and each store serializes
its own use of the connection with a lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from legion_nb.errors import StateError

__all__ = ["ObservationStoreError", "SqliteFile"]

_BUSY_TIMEOUT_MS = 10_000


class ObservationStoreError(StateError):
    """A telemetry, log or ledger database cannot be opened or written."""


class SqliteFile:
    """One SQLite database in WAL mode with a lock that serializes this process's use of it."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ObservationStoreError(f"cannot open {path}: {exc}") from exc
        self.lock = threading.RLock()
        self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.write() as db:  # one statement at a time: executescript would commit on its own
            for statement in _statements(schema):
                db.execute(statement)

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (one snapshot of the WAL for every statement inside)."""
        with self.lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            with contextlib.suppress(sqlite3.Error):  # a failed optimize must not keep the file open
                self._db.execute("PRAGMA optimize")
            self._db.close()

    def size_bytes(self) -> int:
        """The database and its WAL on disk."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.path.getsize(f"{self.path}{suffix}")
        return total


def _statements(schema: str) -> list[str]:
    return [part.strip() for part in schema.split(";") if part.strip()]
