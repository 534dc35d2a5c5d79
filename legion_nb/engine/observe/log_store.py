"""The log store: cluster journal lines and Legion's own operation log, searchable by label and text.

Why this shape:

- Each line carries labels - ``node`` (``legion`` for Legion's own lines), ``source`` (the systemd
  unit, or ``operation``/``actor`` for Legion) and a syslog ``level`` - the way Loki streams are
  filtered by label before any text is read. Labels are interned to small integers.
- Lines fetched from a node keep the node's journal sequence number (its cursor). A unique index on
  (node, seq) makes a repeated fetch a no-op, and the collector commits its cursor in the same
  transaction as the lines, so a backfill killed at any moment resumes with no gap and no duplicate.
- Text search uses a contentless FTS5 index with the trigram tokenizer (any substring of three or
  more characters, ASCII case ignored) built with ``detail=none``: it keeps which lines hold a
  trigram and not where, which makes it a third of the size a positional index would be. Digits are
  indexed as ``0``, so numbers (ports, addresses, durations) do not each add their own rare
  trigrams; that keeps the index below the size of the text itself. A search asks the index for the
  lines holding every trigram of the (likewise folded) needle, newest first, and confirms each
  candidate against the stored line, so answers are exact. Needles shorter than three characters
  scan within the label and time filters.
- Every line passes the caller's redaction function before it is stored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legion_nb.engine.sqlite_file import SqliteFile
from legion_nb.errors import UsageError

__all__ = ["LEVELS", "LogLine", "LogRows", "LogStore", "level_number"]

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
"""Syslog priorities, most severe first (journald's PRIORITY 0-7)."""

_MIN_INDEXED = 3
_DIGIT = re.compile(r"[0-9]")
_INDEX_VERSION = 2
"""``PRAGMA user_version`` of a store whose text index is the folded, contentless one."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    node INTEGER NOT NULL,
    source INTEGER NOT NULL,
    level INTEGER NOT NULL,
    seq INTEGER,
    text TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS lines_by_cursor ON lines (node, seq) WHERE seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS lines_by_time ON lines (time_ms);
DROP TABLE IF EXISTS lines_fts;
CREATE VIRTUAL TABLE IF NOT EXISTS lines_text USING fts5 (
    text, content = '', tokenize = 'trigram', detail = 'none', columnsize = 0
);
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, position INTEGER NOT NULL)
"""


def level_number(level: str | int) -> int:
    """A syslog level name (``err``, ``warning``, ``info``, ...) or number as its number 0-7."""
    if isinstance(level, int) and 0 <= level < len(LEVELS):
        return level
    if isinstance(level, str):
        name = {"error": "err", "warn": "warning", "critical": "crit"}.get(level.lower(), level.lower())
        if name in LEVELS:
            return LEVELS.index(name)
    raise UsageError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line to store. ``seq`` is the node's journal cursor (None for Legion's own lines)."""

    time_ms: int
    node: str
    source: str
    text: str
    level: int = 6
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class LogRows:
    """A search result, oldest first (``id`` grows with insertion, for following a tail)."""

    id: list[int]
    time_ms: list[int]
    node: list[str]
    source: list[str]
    level: list[int]
    seq: list[int | None]
    text: list[str]

    def __len__(self) -> int:
        return len(self.id)


class LogStore:
    """Labelled, searchable log lines in ``path`` (created 0600 in a 0700 dir)."""

    def __init__(self, path: Path, *, redact: Callable[[str], str] | None = None) -> None:
        self._file = SqliteFile(path, SCHEMA)
        self._redact = redact or (lambda text: text)
        self._labels: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._fresh: dict[str, int] = {}
        with self._file.write() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < _INDEX_VERSION:  # an older index: rebuild
                db.execute("INSERT INTO lines_text (lines_text) VALUES ('delete-all')")
                stored = db.execute("SELECT id, text FROM lines").fetchall()
                db.executemany(
                    "INSERT INTO lines_text (rowid, text) VALUES (?, ?)", [(i, _folded(t)) for i, t in stored]
                )
                db.execute(f"PRAGMA user_version = {_INDEX_VERSION}")
        with self._file.read() as db:
            for label_id, value in db.execute("SELECT id, value FROM labels"):
                self._labels[value] = label_id
                self._names[label_id] = value

    @property
    def path(self) -> Path:
        return self._file.path

    def close(self) -> None:
        self._file.close()

    def size_bytes(self) -> int:
        return self._file.size_bytes()

    # -- writing -------------------------------------------------------------------------------

    def append(self, lines: Iterable[LogLine], *, cursor: tuple[str, int] | None = None) -> int:
        """Store ``lines`` (a line already stored under its node and ``seq`` is skipped) and move
        ``cursor`` in the same transaction; returns how many lines were new."""
        with self._file.write() as db:
            self._fresh = {}
            before = db.execute("SELECT coalesce(max(id), 0) FROM lines").fetchone()[0]
            rows = [
                (
                    line.time_ms,
                    self._label(db, line.node),
                    self._label(db, line.source),
                    line.level,
                    line.seq,
                    self._redact(line.text),
                )
                for line in lines
            ]
            db.executemany(
                "INSERT OR IGNORE INTO lines (time_ms, node, source, level, seq, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            new = db.execute("SELECT id, text FROM lines WHERE id > ?", (before,)).fetchall()
            db.executemany(
                "INSERT INTO lines_text (rowid, text) VALUES (?, ?)", [(i, _folded(t)) for i, t in new]
            )
            added = len(new)
            if cursor is not None:
                db.execute(
                    "INSERT INTO cursors (source, position) VALUES (?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                    (cursor[0], int(cursor[1])),
                )
        for value, label_id in self._fresh.items():
            self._labels[value] = label_id
            self._names[label_id] = value
        self._fresh = {}
        return int(added)

    def _label(self, db: Any, value: str) -> int:
        label_id = self._labels.get(value) or self._fresh.get(value)
        if label_id is None:
            db.execute("INSERT INTO labels (value) VALUES (?) ON CONFLICT DO NOTHING", (value,))
            label_id = int(db.execute("SELECT id FROM labels WHERE value = ?", (value,)).fetchone()[0])
            self._fresh[value] = label_id
        return label_id

    def delete_before(self, time_ms: int) -> int:
        """Forget lines older than ``time_ms`` (retention); returns how many."""
        with self._file.write() as db:
            doomed = db.execute("SELECT id, text FROM lines WHERE time_ms < ?", (time_ms,)).fetchall()
            db.executemany(
                "INSERT INTO lines_text (lines_text, rowid, text) VALUES ('delete', ?, ?)",
                [(i, _folded(t)) for i, t in doomed],
            )
            db.execute("DELETE FROM lines WHERE time_ms < ?", (time_ms,))
        return len(doomed)

    # -- reading -------------------------------------------------------------------------------

    def cursor(self, source: str) -> int | None:
        with self._file.read() as db:
            row = db.execute("SELECT position FROM cursors WHERE source = ?", (source,)).fetchone()
        return None if row is None else int(row[0])

    def count(self) -> int:
        with self._file.read() as db:
            return int(db.execute("SELECT count(*) FROM lines").fetchone()[0])

    def search(
        self,
        *,
        text: str | None = None,
        nodes: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        max_level: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int | None = None,
        limit: int = 200,
    ) -> LogRows:
        """The newest ``limit`` lines matching every filter, returned oldest first.

        ``text`` matches anywhere in the line, ignoring ASCII case; ``max_level`` keeps lines at
        that severity or worse (``level_number("warning")`` keeps warnings and errors);
        ``after_id`` returns the oldest ``limit`` lines after that id instead (a live tail).
        """
        if limit < 1:
            raise UsageError(f"log search limit {limit} is not valid; use 1 or more")
        where: list[str] = []
        args: list[Any] = []
        if nodes is not None or sources is not None:
            for column, names in (("node", nodes), ("source", sources)):
                if names is None:
                    continue
                ids = [self._labels[n] for n in names if n in self._labels]
                if not ids:
                    return _no_rows()
                where.append(f"l.{column} IN ({','.join('?' * len(ids))})")
                args.extend(ids)
        if max_level is not None:
            where.append("l.level <= ?")
            args.append(max_level)
        if start_ms is not None:
            where.append("l.time_ms >= ?")
            args.append(start_ms)
        if end_ms is not None:
            where.append("l.time_ms < ?")
            args.append(end_ms)
        if after_id is not None:
            where.append("l.id > ?")
            args.append(after_id)
        source = "lines l"
        if text:
            if len(text) >= _MIN_INDEXED:
                source = "lines_text f JOIN lines l ON l.id = f.rowid"
                where.insert(0, "lines_text MATCH ?")
                args.insert(0, _trigram_query(text))
            where.append("instr(lower(l.text), lower(?)) > 0")
            args.append(text)
        order = "ASC" if after_id is not None else "DESC"
        # Ordering by the index's own rowid lets FTS5 stream matches newest first and stop at the
        # limit; ordering by the joined table's id would sort every match first.
        key = "f.rowid" if source.startswith("lines_text") else "l.id"
        filters = f"WHERE {' AND '.join(where)}" if where else ""
        sql = (
            f"SELECT l.id, l.time_ms, l.node, l.source, l.level, l.seq, l.text FROM {source} "  # noqa: S608
            f"{filters} ORDER BY {key} {order} LIMIT ?"
        )
        with self._file.read() as db:
            rows = db.execute(sql, (*args, limit)).fetchall()
        if order == "DESC":
            rows.reverse()
        labels = self._names
        return LogRows(
            id=[r[0] for r in rows],
            time_ms=[r[1] for r in rows],
            node=[labels.get(r[2], "?") for r in rows],
            source=[labels.get(r[3], "?") for r in rows],
            level=[r[4] for r in rows],
            seq=[r[5] for r in rows],
            text=[r[6] for r in rows],
        )

    def optimize(self) -> None:
        """Merge the text index's segments into one b-tree (smaller and faster to search); the
        scheduler runs it after a backfill and with retention."""
        with self._file.write() as db:
            db.execute("INSERT INTO lines_text (lines_text) VALUES ('optimize')")

    def index_bytes(self) -> int:
        """Bytes the text index occupies (FTS5's shadow tables)."""
        with self._file.read() as db:
            row = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'lines_text_%'").fetchone()
        return int(row[0] or 0)

    def text_bytes(self) -> int:
        with self._file.read() as db:
            return int(
                db.execute("SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM lines").fetchone()[0]
            )


def _folded(text: str) -> str:
    """What the index holds for a line: its digits as ``0`` (the tokenizer folds case)."""
    return _DIGIT.sub("0", text)


def _trigram_query(needle: str) -> str:
    """An FTS5 query for lines holding every trigram of ``needle`` (folded as lines are). With
    ``detail=none`` a phrase cannot be asked for, so the trigrams are ANDed and each candidate is
    then confirmed against the line."""
    folded = _folded(needle)
    grams = dict.fromkeys(folded[i : i + 3] for i in range(len(folded) - 2))
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)


def _no_rows() -> LogRows:
    return LogRows([], [], [], [], [], [], [])


def now_ms() -> int:
    return int(time.time() * 1000)
