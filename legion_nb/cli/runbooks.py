"""``legion runbook``: list the runbooks, run one, and read or verify the records of past runs.

``run`` goes through the daemon when a token is given (the kernel then reaches the daemon's engine)
and otherwise unlocks the state in this process; either way the kernel never sees the password.
``run`` exits 0 only when every cell completed; a failing run prints its record (``--json``) and
one line on stderr naming the failing cell and its error. ``verify`` exits non-zero naming the first
record that does not hold. ``runs --json`` prints ONE JSON array of row objects.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from typing import Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.tables import Column, table
from legion_nb.engine.runbooks.records import CellRun
from legion_nb.errors import RunbookFailedError, RunRecordsTamperedError, UsageError

__all__ = ["register"]

# A run record's keys as ``legion runbook runs`` shows them (ids like run-20260101t000000z-1a2b3c).
_RUNS = {
    "id": Column("ID", 27),
    "runbook": Column("RUNBOOK", 22),
    "status": Column("STATUS", 9),
    "dry_run": Column("DRY RUN", 7),
    "operator": Column("OPERATOR", 14),
    "start": Column("START", 25),
    "end": Column("END", 25),
    "failed_at": Column("FAILED AT"),
}


def register(sub: Any) -> None:
    runbook = sub.add_parser("runbook", help="parameterized notebooks with a verifiable record of each run")
    commands = runbook.add_subparsers(dest="runbook_command", metavar="COMMAND", required=True)
    commands.add_parser("list", help="the runbooks, their purpose and parameters").set_defaults(handler=_list)
    run = commands.add_parser("run", help="execute a runbook and record the run")
    run.add_argument("name", metavar="NAME", help="the runbook (see 'legion runbook list')")
    run.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter; VALUE is read as JSON when it parses (numbers, true/false), else as text",
    )
    run.add_argument("--dry-run", action="store_true", help="run with dry_run=True: look, change nothing")
    run.set_defaults(handler=_run)
    commands.add_parser("runs", help="the recorded runs, oldest first").set_defaults(handler=_runs)
    show = commands.add_parser("show", help="the full record of one run")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id (see 'legion runbook runs')")
    show.set_defaults(handler=_show)
    verify = commands.add_parser("verify", help="check the record chain and the output notebooks")
    verify.add_argument("run_id", nargs="?", metavar="RUN_ID", help="only this run (default: every run)")
    verify.set_defaults(handler=_verify)


def parameters(pairs: list[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` pairs as a mapping (a repeated key: the last one wins)."""
    from legion_nb.engine.runbooks.catalog import parse_value  # noqa: PLC0415

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"parameter {pair.split('=')[0]!r} is not KEY=VALUE with a Python name as KEY")
        out[key] = parse_value(text)
    return out


@one_shot
async def _list(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        books = await api.runbook_list()

    def human(rows: list[dict[str, Any]]) -> str:
        lines = []
        for book in rows:
            params = ", ".join(f"{k}={v['default']}" for k, v in book["parameters"].items())
            lines.append(f"{book['name']}  ({params})\n  {book['purpose']}")
        return "\n".join(lines) or "no runbooks"

    ctx.emit(books, human)
    return 0


async def _run(ctx: CliContext, args: argparse.Namespace) -> int:
    values = parameters(args.parameter)
    async with ctx.api() as api:
        record = await api.run_runbook(name=args.name, parameters=values, dry_run=args.dry_run)
    ctx.emit(record, _describe)
    if record.exit_status != 0:
        failed = record.failed_cell
        if failed is not None:
            where = f"at {failed.label} - {failed.error} (output: {record.output_path})"
        else:
            where = f"before its cells ran: {record.extra.get('error') or 'see legion runbook show'}"
        raise RunbookFailedError(f"run {record.id} of {record.runbook} failed {where}")
    return 0


def _describe(record: dict[str, Any]) -> str:
    lines = [
        f"run {record['id']}: {record['runbook']} {record['status']} (exit {record['exit_status']})",
        f"  by {record['operator']} on {record['host']}, {record['start']} to {record['end']}",
        f"  parameters: {record['parameters']}",
        f"  operations: {', '.join(record['operations']) or 'none'}",
        f"  output: {record['output_path']}",
    ]
    failed = record.get("failed_cell")
    if failed:
        lines.append(f"  failed at {CellRun.from_json(failed).label} - {failed['error']}")
    elif record.get("extra", {}).get("error"):
        lines.append(f"  failed before its cells ran: {record['extra']['error']}")
    return "\n".join(lines)


@one_shot
async def _runs(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        rows = await api.runbook_runs()
    ctx.emit(
        rows,
        lambda data: (
            table(tuple(_RUNS.values()), [[r[c] for c in _RUNS] for r in data])
            if data
            else "no runs recorded"
        ),
    )
    return 0


@one_shot
async def _show(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        record = await api.runbook_show(run_id=args.run_id)
    ctx.emit(record, _describe)
    return 0


@one_shot
async def _verify(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        report = await api.runbook_verify(run_id=args.run_id)
    if not report["ok"]:
        raise RunRecordsTamperedError(f"run records do not verify: {'; '.join(report['problems'])}")
    ctx.emit(
        report, lambda r: f"{r['checked']} run record(s) verified: chain intact, output notebooks unchanged"
    )
    return 0
