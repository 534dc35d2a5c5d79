"""Executing a runbook with papermill on nbclient, and reading what each cell did.

papermill injects the parameters after the ``parameters`` cell and writes each cell's start, end,
duration and status into the cell's ``metadata.papermill``; nbclient runs the kernel. papermill is
synchronous (it runs its own event loop), so :func:`execute` runs in a worker thread while the
engine's loop stays free to answer the kernel's calls through the run channel.

The kernel gets a minimal environment (:func:`kernel_env`): an allow-list of what Python and
Jupyter need plus the channel's directory, never ``LEGION_PASSWORD``, ``LEGION_DAEMON_TOKEN`` or
anything else the operator's process holds, and no value that holds a secret of an unlocked state.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legion_nb.engine.redaction import redact
from legion_nb.engine.runbooks.records import HIDDEN_TAGS, CellRun

__all__ = ["ENGINE_NAME", "Execution", "cell_runs", "execute", "kernel_env"]

ENGINE_NAME = "legion-runbook"
KERNEL_NAME = "python3"
_KEEP = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT"}
)
_KEEP_PREFIXES = ("LC_", "JUPYTER_", "IPYTHONDIR")

CellHook = Callable[[str, int], None]
"""Called from the worker thread with (``"start"`` or ``"end"``, the cell's index)."""


def kernel_env(extra: Mapping[str, str], source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's whole environment: the allow-listed variables of ``source`` plus ``extra``."""
    source = os.environ if source is None else source
    env = {
        key: value
        for key, value in source.items()
        if (key in _KEEP or key.startswith(_KEEP_PREFIXES)) and redact(value) == value
    }
    env.update(extra)
    return env


@dataclass(slots=True)
class Execution:
    """The executed notebook (as a plain dict) and whether every cell completed."""

    notebook: dict[str, Any]
    completed: bool


def execute(
    input_path: Path,
    parameters: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    cwd: Path,
    on_cell: CellHook | None = None,
    start_timeout: float = 60.0,
) -> Execution:
    """Run the notebook at ``input_path`` with ``parameters`` injected; blocking (call in a thread)."""
    import papermill  # noqa: PLC0415 - papermill and nbformat load only for a run
    from papermill.exceptions import PapermillExecutionError  # noqa: PLC0415

    _register_engine()
    holder: dict[str, Any] = {}
    try:
        papermill.execute_notebook(
            str(input_path),
            None,
            parameters=dict(parameters),
            engine_name=ENGINE_NAME,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            log_output=False,
            kernel_cwd=str(cwd),  # not papermill's cwd=: that changes this whole process's directory
            start_timeout=start_timeout,
            kernel_env=dict(env),
            cell_hook=on_cell,
            holder=holder,
        )
        completed = True
    except PapermillExecutionError:  # a cell raised: the notebook holds the error, the record says which
        completed = False
    nb = holder.get("nb")
    if nb is None:  # the engine never ran (the kernel did not start): papermill raised something else
        raise RuntimeError("papermill returned no notebook")
    return Execution(notebook=_plain(nb), completed=completed)


def _plain(nb: Any) -> dict[str, Any]:
    """papermill's NotebookNode as plain JSON types (what the redaction layer walks)."""
    plain: dict[str, Any] = json.loads(json.dumps(nb))
    return plain


_registered = False


def _register_engine() -> None:
    """Register papermill's nbclient engine variant that gives the kernel our environment."""
    global _registered  # noqa: PLW0603 - papermill keeps a process-wide registry; register once
    if _registered:
        return
    from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415
    from papermill.clientwrap import PapermillNotebookClient  # noqa: PLC0415
    from papermill.engines import NBClientEngine, papermill_engines  # noqa: PLC0415

    class RunbookEngine(NBClientEngine):  # type: ignore[misc]  # papermill ships no types
        """nbclient under papermill, with the kernel's environment and per-cell hooks."""

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            *,
            kernel_env: dict[str, str],
            cell_hook: CellHook | None,
            holder: dict[str, Any],
            start_timeout: float = 60.0,
            kernel_cwd: str | None = None,
            **_: Any,
        ) -> Any:
            holder["nb"] = nb_man.nb

            def started(cell: Any, cell_index: int, **__: Any) -> None:
                if cell_hook is not None:
                    cell_hook("start", cell_index)

            def completed(cell: Any, cell_index: int, **__: Any) -> None:
                if cell_hook is not None:
                    cell_hook("end", cell_index)

            # The kernel's sockets are IPC files in the run's private directory, not TCP ports
            # any local user could connect to. nbclient makes (and so shuts down) the manager.
            ip = os.path.join(kernel_cwd or ".", "kernel")

            class RunKernelManager(AsyncKernelManager):
                def __init__(self, **options: Any) -> None:
                    super().__init__(transport="ipc", ip=ip, **options)

            client = PapermillNotebookClient(
                nb_man,
                kernel_manager_class=RunKernelManager,
                kernel_name=kernel_name,
                startup_timeout=int(start_timeout),
                resources={"metadata": {"path": kernel_cwd}} if kernel_cwd else {},
                # on_cell_execute: a code cell is about to run; on_cell_executed: its reply came
                # (on_cell_start also fires for Markdown, on_cell_complete as soon as it is sent).
                on_cell_execute=started,
                on_cell_executed=completed,
            )
            # The kernel's own log lines (start-up warnings, its shutdown) are not the run's output.
            return client.execute(
                env=kernel_env, cwd=kernel_cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    papermill_engines.register(ENGINE_NAME, RunbookEngine)
    _registered = True


def cell_runs(notebook: Mapping[str, Any]) -> tuple[list[CellRun], CellRun | None]:
    """Each code cell's papermill status and timing, and the cell that failed (if one did)."""
    runs: list[CellRun] = []
    failed: CellRun | None = None
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("papermill", {})
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        error = ""
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                error = f"{output.get('ename', '')}: {output.get('evalue', '')}".strip(": ")
        status = str(meta.get("status", "pending"))
        count = cell.get("execution_count")
        tags = cell.get("metadata", {}).get("tags", [])
        run = CellRun(
            index=index,
            status="failed" if (meta.get("exception") or error) and status != "pending" else status,
            start=meta.get("start_time"),
            end=meta.get("end_time"),
            duration=meta.get("duration"),
            source=source[:400],
            error=error[:2000],
            execution_count=count if isinstance(count, int) else None,
            tags=tuple(str(t) for t in tags if str(t) not in HIDDEN_TAGS),
        )
        runs.append(run)
        if run.status == "failed" and failed is None:
            failed = run
    return runs, failed
