"""Run records: what a runbook run did, kept append-only and hash-chained beside the state.

Someone asks at noon what the 3 a.m. recovery did: the record answers with the input notebook's
sha256, the parameters, who ran it where, when, each cell's status and timing, the engine operations
it caused, and the executed notebook (path and sha256). Records are never rewritten:

* each record is one file ``records/NNNNNN-RUN_ID.json`` written once, mode 0600, as canonical
  JSON (sorted keys, no spaces), and holds ``hash``: the sha256 of its own canonical body without
  ``hash``; so a changed byte either breaks the canonical form or the hash;
* each record holds ``previous``: the ``hash`` of the record before it (the first holds ``""``),
  and a sequence number, so removing a record from the middle breaks the chain after it;
* the executed notebook ``outputs/RUN_ID.ipynb`` is covered by the record's ``output_sha256``.

:meth:`RunStore.verify` re-derives all of it and names the first record that does not hold.
Removing the newest record is not detectable from the files alone (nothing follows it); the chain
makes every other change visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from legion_nb.errors import UsageError

__all__ = ["HIDDEN_TAGS", "CellRun", "RunRecord", "RunStore", "VerifyReport", "canonical_json", "sha256_file"]

_RECORD_NAME = re.compile(r"^(\d{6})-(run-[0-9a-z-]+)\.json$")
_RUN_ID = re.compile(r"^run-[0-9a-z-]{1,64}$")


def canonical_json(value: Any) -> bytes:
    """The one byte form a record is written and hashed in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


HIDDEN_TAGS = frozenset({"parameters", "injected-parameters"})
"""Tags papermill reads or writes, not the author's names for a cell."""


@dataclass(frozen=True, slots=True)
class CellRun:
    """One code cell of a run as papermill timed it (``status``: completed, failed or pending).

    ``index`` is the cell's position in the output notebook (markdown cells and papermill's
    injected parameters cell included), which no author sees; :attr:`label` names the cell as the
    author finds it: the ``In [n]`` the executed notebook shows, the author's tags, its first line.
    """

    index: int
    status: str
    start: str | None = None
    end: str | None = None
    duration: float | None = None
    source: str = ""
    error: str = ""
    execution_count: int | None = None
    """The ``In [n]`` the executed notebook shows for the cell (None: it did not run)."""
    tags: tuple[str, ...] = ()
    """The author's tags on the cell (papermill's own ``parameters`` tags left out)."""

    @property
    def label(self) -> str:
        """``In [4]: row = server_row(...)``: the prompt, any tags and the first line of code (cut
        at 60 characters); ``cell 7`` (the output notebook's position) when it never ran."""
        prompt = f"In [{self.execution_count}]" if self.execution_count is not None else f"cell {self.index}"
        if self.tags:
            prompt += f" (tagged {', '.join(self.tags)})"
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        if len(first) > 60:
            first = first[:59] + "\u2026"
        return f"{prompt}: {first}" if first else prompt

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellRun:
        return cls(**{**data, "tags": tuple(data.get("tags", ()))})


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The immutable record of one runbook run; ``to_json()`` is what the store writes."""

    id: str
    runbook: str
    input_sha256: str
    parameters: Mapping[str, Any]
    dry_run: bool
    operator: str
    host: str
    start: str
    end: str
    status: str
    exit_status: int
    cells: tuple[CellRun, ...]
    failed_cell: CellRun | None
    operations: tuple[str, ...]
    output_path: str
    output_sha256: str
    seq: int = 0
    previous: str = ""
    hash: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """``error``: why a run failed before any cell could (the kernel did not start or died)."""

    def body(self) -> dict[str, Any]:
        """Every field except ``hash``, in JSON types."""
        return {
            "id": self.id,
            "runbook": self.runbook,
            "input_sha256": self.input_sha256,
            "parameters": dict(self.parameters),
            "dry_run": self.dry_run,
            "operator": self.operator,
            "host": self.host,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "exit_status": self.exit_status,
            "cells": [_cell_json(c) for c in self.cells],
            "failed_cell": None if self.failed_cell is None else _cell_json(self.failed_cell),
            "operations": list(self.operations),
            "output_path": self.output_path,
            "output_sha256": self.output_sha256,
            "seq": self.seq,
            "previous": self.previous,
            "extra": dict(self.extra),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        failed = data.get("failed_cell")
        return cls(
            id=data["id"],
            runbook=data["runbook"],
            input_sha256=data["input_sha256"],
            parameters=dict(data["parameters"]),
            dry_run=bool(data["dry_run"]),
            operator=data["operator"],
            host=data["host"],
            start=data["start"],
            end=data["end"],
            status=data["status"],
            exit_status=int(data["exit_status"]),
            cells=tuple(CellRun.from_json(c) for c in data["cells"]),
            failed_cell=None if failed is None else CellRun.from_json(failed),
            operations=tuple(data["operations"]),
            output_path=data["output_path"],
            output_sha256=data["output_sha256"],
            seq=int(data["seq"]),
            previous=data["previous"],
            hash=data["hash"],
            extra=dict(data.get("extra", {})),
        )

    def row(self) -> dict[str, Any]:
        """The ``legion runbook runs`` row: one line per run."""
        failed = self.failed_cell
        return {
            "id": self.id,
            "runbook": self.runbook,
            "status": self.status,
            "exit_status": self.exit_status,
            "dry_run": self.dry_run,
            "operator": self.operator,
            "start": self.start,
            "end": self.end,
            "failed_cell": None if failed is None else failed.index,
            "failed_at": None if failed is None else failed.label,
            "error": failed.error if failed is not None else str(self.extra.get("error", "")),
            "operations": len(self.operations),
        }


def _cell_json(cell: CellRun) -> dict[str, Any]:
    """The cell as the record holds it; the execution count and tags only where there are some, so
    a record written before they were kept hashes as it did."""
    out: dict[str, Any] = {
        "index": cell.index,
        "status": cell.status,
        "start": cell.start,
        "end": cell.end,
        "duration": cell.duration,
        "source": cell.source,
        "error": cell.error,
    }
    if cell.execution_count is not None:
        out["execution_count"] = cell.execution_count
    if cell.tags:
        out["tags"] = list(cell.tags)
    return out


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """``ok`` when every record (or the one asked for) and its output notebook are as written."""

    ok: bool
    checked: int
    problems: Sequence[str]

    def summary(self) -> str:
        if self.ok:
            return f"{self.checked} run record(s) verified: chain intact, output notebooks unchanged"
        return "; ".join(self.problems)


class RunStore:
    """The run records and output notebooks of one state, under its log directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records_dir = root / "records"
        self.outputs_dir = root / "outputs"

    def __repr__(self) -> str:
        return f"RunStore({self.root})"

    def ensure(self) -> None:
        """Create the private directories (0700) on first use."""
        for directory in (self.root, self.records_dir, self.outputs_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def output_path(self, run_id: str) -> Path:
        return self.outputs_dir / f"{run_id}.ipynb"

    def write_output(self, run_id: str, content: bytes) -> tuple[Path, str]:
        """Write the executed notebook once (0600); its path and sha256."""
        self.ensure()
        path = self.output_path(run_id)
        _write_once(path, content)
        return path, hashlib.sha256(content).hexdigest()

    def _files(self) -> list[tuple[int, str, Path]]:
        if not self.records_dir.is_dir():
            return []
        found = []
        for path in self.records_dir.iterdir():
            match = _RECORD_NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), match.group(2), path))
        return sorted(found)

    def append(self, record: RunRecord) -> RunRecord:
        """Chain ``record`` after the newest one and write it; the written record (seq, previous, hash)."""
        self.ensure()
        files = self._files()
        seq, previous = 1, ""
        if files:
            last_seq, _, last_path = files[-1]
            seq, previous = last_seq + 1, json.loads(last_path.read_bytes())["hash"]
        chained = _with(record, seq=seq, previous=previous, hash="")
        sealed = _with(chained, hash=hashlib.sha256(canonical_json(chained.body())).hexdigest())
        _write_once(self.records_dir / f"{seq:06d}-{record.id}.json", canonical_json(sealed.to_json()))
        return sealed

    def records(self) -> list[RunRecord]:
        """Every readable record, oldest first (``verify`` reports the unreadable ones)."""
        out = []
        for _, _, path in self._files():
            try:
                out.append(RunRecord.from_json(json.loads(path.read_bytes())))
            except (ValueError, KeyError, TypeError):  # damaged: verify names it
                continue
        return out

    def get(self, run_id: str) -> RunRecord:
        if not _RUN_ID.match(run_id):
            raise UsageError(f"{run_id!r} is not a run id (like run-20260101t000000z-1a2b3c)")
        for seq, found, path in self._files():
            if found == run_id:
                try:
                    return RunRecord.from_json(json.loads(path.read_bytes()))
                except (ValueError, KeyError, TypeError) as exc:
                    raise UsageError(
                        f"run record {seq} ({run_id}) is damaged; 'legion runbook verify' says more"
                    ) from exc
        raise UsageError(f"no run {run_id}: 'legion runbook runs' lists the runs")

    def verify(self, run_id: str | None = None) -> VerifyReport:
        """Check the whole chain (or one run's record and notebook); problems name the record."""
        if run_id is not None:
            self.get(run_id)  # an unknown id is a usage error, not a failed verification
        problems: list[str] = []
        previous = ""
        checked = 0
        expected_seq = 1
        for seq, found, path in self._files():
            label = f"record {seq} ({found})"
            in_scope = run_id is None or found == run_id
            if seq != expected_seq:
                problems.append(f"record {expected_seq} is missing (the chain jumps to {label})")
            expected_seq = seq + 1
            raw = path.read_bytes()
            try:
                data = json.loads(raw)
                record = RunRecord.from_json(data)
            except (ValueError, KeyError, TypeError):
                if in_scope:
                    problems.append(f"{label} is unreadable: it was edited")
                previous = ""
                checked += in_scope
                continue
            if in_scope:
                checked += 1
                problems.extend(_check(label, raw, data, record, previous))
            previous = record.hash
        if run_id is not None and checked == 0:
            problems.append(f"no record of run {run_id}")
        return VerifyReport(ok=not problems, checked=checked, problems=tuple(problems))


def _check(label: str, raw: bytes, data: Any, record: RunRecord, previous: str) -> list[str]:
    problems = []
    if canonical_json(data) != raw or record.to_json() != data:
        problems.append(f"{label} was edited: it is not in the form it was written in")
    elif hashlib.sha256(canonical_json(record.body())).hexdigest() != record.hash:
        problems.append(f"{label} was edited: its content does not match its hash")
    if record.previous != previous:
        problems.append(f"{label} does not follow the record before it: a record was removed or edited")
    output = Path(record.output_path)
    if not record.output_path:
        pass  # a run that never executed (refused before the kernel started) has no notebook
    elif not output.is_file():
        problems.append(f"{label}: its output notebook {output} is missing")
    elif sha256_file(output) != record.output_sha256:
        problems.append(f"{label}: its output notebook {output} was changed")
    return problems


def _with(record: RunRecord, **changes: Any) -> RunRecord:
    return replace(record, **changes)


def _write_once(path: Path, content: bytes) -> None:
    """Create ``path`` (0600) with ``content``; an existing file is never replaced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
