"""Running runbooks for one engine and keeping their records.

:class:`Runbooks` ties the pieces together for a run: it finds the runbook, checks the parameters
against its ``parameters`` cell, opens the run's private channel to the engine, executes the notebook
in a worker thread, scrubs the executed notebook with the redaction layer, writes it and the chained
record (:mod:`legion_nb.engine.runbooks.records`), and notes which engine operations the run caused
(the operation log's ids that appeared while it ran). Only the engine's public surface reaches the
kernel, through the channel.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import hashlib
import json
import os
import secrets
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legion_nb.engine.redaction import redact, redact_data
from legion_nb.engine.runbooks.catalog import RunbookInfo, default_runbooks_dir, find_runbook, list_runbooks
from legion_nb.engine.runbooks.channel import RunChannel
from legion_nb.engine.runbooks.execution import Execution, cell_runs, execute, kernel_env
from legion_nb.engine.runbooks.records import CellRun, RunRecord, RunStore, VerifyReport
from legion_nb.errors import UsageError

__all__ = ["LiveRun", "Runbooks"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): the uid still names who ran it
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass(slots=True)
class LiveRun:
    """A run in progress, as the runbook panel shows it: which cell runs, which are done."""

    id: str
    runbook: str
    start: str
    cells: int
    current: int | None = None
    done: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "runbook": self.runbook,
            "start": self.start,
            "cells": self.cells,
            "current": self.current,
            "done": list(self.done),
        }


class Runbooks:
    """The runbooks of one engine: ``served`` is the engine the kernel reaches through the channel,
    ``operation_ids`` reads the ids in the state's operation log."""

    def __init__(
        self,
        served: object,
        log_dir: Path,
        operation_ids: Callable[[], Sequence[str]],
        directory: Path | None = None,
    ) -> None:
        self._served = served
        self._operation_ids = operation_ids
        self.directory = directory or default_runbooks_dir()
        self.store = RunStore(log_dir / "runbooks")
        self.live: dict[str, LiveRun] = {}

    def __repr__(self) -> str:
        return f"Runbooks({self.directory}, runs={self.store.root})"

    def catalog(self) -> list[RunbookInfo]:
        return list_runbooks(self.directory)

    def runs(self) -> list[RunRecord]:
        return self.store.records()

    def show(self, run_id: str) -> RunRecord:
        return self.store.get(run_id)

    def verify(self, run_id: str | None = None) -> VerifyReport:
        return self.store.verify(run_id)

    async def run(self, name: str, parameters: Mapping[str, Any], dry_run: bool = False) -> RunRecord:
        """Execute runbook ``name`` and append its record; a failing cell gives a ``failed`` record.

        Raises :class:`UsageError` for an unknown runbook or parameter (nothing runs, nothing is
        recorded).
        """
        runbook = find_runbook(self.directory, name)
        values = _checked(runbook, parameters, dry_run)
        content = runbook.path.read_bytes()
        nb = json.loads(content)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%Sz")
        run_id = f"run-{stamp}-{secrets.token_hex(3)}"
        live = LiveRun(
            id=run_id,
            runbook=name,
            start=_now(),
            cells=sum(1 for c in nb["cells"] if c.get("cell_type") == "code"),
        )
        self.live[run_id] = live
        before = set(self._operation_ids())
        loop = asyncio.get_running_loop()

        def on_cell(event: str, index: int) -> None:
            def note() -> None:
                if event == "start":
                    live.current = index
                else:
                    live.done.append(index)
                    live.current = None

            loop.call_soon_threadsafe(note)

        execution: Execution | None = None
        error = ""
        try:
            with tempfile.TemporaryDirectory(prefix="legion-runbook-") as workdir:
                async with RunChannel(self._served) as channel:
                    execution = await asyncio.to_thread(
                        execute,
                        runbook.path,
                        values,
                        env=kernel_env(channel.env),
                        cwd=Path(workdir),
                        on_cell=on_cell,
                    )
        except Exception as exc:  # the kernel did not start or died: still a run, recorded as failed
            error = redact(" ".join(f"{type(exc).__name__}: {exc}".split()))[:2000]
        finally:
            self.live.pop(run_id, None)
        end = _now()
        operations = [op for op in self._operation_ids() if op not in before]
        cells: list[CellRun] = []
        failed: CellRun | None = None
        output_path, output_sha = "", ""
        if execution is not None:
            notebook = redact_data(execution.notebook)
            notebook.setdefault("metadata", {})["legion"] = {"run_id": run_id, "runbook": name}
            path, output_sha = self.store.write_output(
                run_id, json.dumps(notebook, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
            )
            output_path = str(path)
            cells, failed = cell_runs(notebook)
        ok = execution is not None and execution.completed and failed is None
        record = RunRecord(
            id=run_id,
            runbook=name,
            input_sha256=hashlib.sha256(content).hexdigest(),
            parameters=redact_data(dict(values)),
            dry_run=_is_dry_run(runbook, values),
            operator=_operator(),
            host=socket.gethostname(),
            start=live.start,
            end=end,
            status="succeeded" if ok else "failed",
            exit_status=0 if ok else 1,
            cells=tuple(cells),
            failed_cell=failed,
            operations=tuple(operations),
            output_path=output_path,
            output_sha256=output_sha,
            extra={"error": error} if error else {},
        )
        return self.store.append(record)


def _checked(runbook: RunbookInfo, parameters: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
    declared = runbook.parameters
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        takes = ", ".join(declared) or "no parameters"
        raise UsageError(f"runbook {runbook.name} has no parameter {redact(unknown[0])!r}; it takes: {takes}")
    values = dict(parameters)
    if dry_run and "dry_run" in declared:
        values["dry_run"] = True
    elif dry_run:
        raise UsageError(f"runbook {runbook.name} has no dry run (it declares no dry_run parameter)")
    return values


def _is_dry_run(runbook: RunbookInfo, values: Mapping[str, Any]) -> bool:
    """Whether the run was a dry run: asked for, or the runbook's default when not given."""
    if "dry_run" in values:
        return bool(values["dry_run"])
    default = runbook.parameters.get("dry_run", {}).get("default", "False")
    return default.strip() == "True"
