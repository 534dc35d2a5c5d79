"""``legion materialize``, ``refresh``, ``snapshot`` and ``server reboot|reinstall|delete``.

``materialize`` is the one long command: it starts the engine's materialize and, while it runs,
follows the engine's "snapshot" and "activity" streams (in process or through the daemon alike).
On a terminal it draws a live table of every resource (state, operation, why it waits, its error);
otherwise it prints one line per activity item a person reads (the engine marks a deployment
phase's end as a detail: :func:`legion_nb.engine.headline.headline`); with ``--json`` it prints
every activity item as JSON lines and the final report as the last line. It exits 0 only when
every resource settled without an error; otherwise it ends with one summary line on stderr and
exit 5.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext, one_shot, scrub
from legion_nb.cli.tables import Column, LiveTable, table, warning_line, warning_lines
from legion_nb.errors import LegionError, OperationError, ProviderError, UsageError

if TYPE_CHECKING:
    from legion_nb.engine.reports import RefreshResult, ServerCommandResult
    from legion_nb.engine.surface import EngineAPI

__all__ = ["MaterializeIncompleteError", "refresh_error", "register"]

# The snapshot's row keys and how each shows (tables.py: declared widths, stable across redraws).
_KIND = Column("KIND", 11)  # "floating_ip": an orphan public IP's row
_NAME = Column("NAME", 28)
_PROVIDER = Column("PROVIDER", 8)
_STATE = Column("STATE", 12)
_OPERATION = Column("OPERATION", 14)
_WAITING = Column("WAITING FOR", 30)
_ERROR = Column("ERROR")
_LIVE = {
    "kind": _KIND,
    "name": _NAME,
    "provider": _PROVIDER,
    "state": _STATE,
    "operation": _OPERATION,
    "waiting": _WAITING,
    "error": _ERROR,
}
_SNAPSHOT = {
    "kind": _KIND,
    "name": _NAME,
    "provider": _PROVIDER,
    "action": Column("ACTION", 9),
    "state": _STATE,
    "operation": _OPERATION,
    "waiting": _WAITING,
    "error": _ERROR,
}


class MaterializeIncompleteError(OperationError):
    """Materialize ended with resources failed or not settled (the message summarizes them)."""

    code = "materialize_incomplete"


class RefreshIncompleteError(OperationError):
    """A refresh failed on Legion's side for some provider (exit 5)."""

    code = "refresh_incomplete"


class RefreshProviderError(LegionError):
    """Every provider whose refresh failed could not be reached or refused it: exit 4, as for any
    provider error, whether or not other providers were refreshed (their lines say so)."""

    exit_code = ProviderError.exit_code
    code = "refresh_provider"


def register(sub: Any) -> None:
    materialize = sub.add_parser(
        "materialize", help="apply the plan; live progress; exit 0 only when settled"
    )
    materialize.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    materialize.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="stop waiting after S seconds and report what has not settled",
    )
    materialize.set_defaults(handler=_materialize)

    refresh = sub.add_parser(
        "refresh",
        help="re-read providers; adopt Legion-labelled resources",
        description=(
            "Re-read every provider with stored credentials and adopt Legion-labelled resources. "
            "A provider that cannot be reached or refuses is named with its reason while the "
            "others are still read: exit 4 then (even when only some failed), exit 5 when Legion "
            "itself failed to refresh one."
        ),
    )
    refresh.set_defaults(handler=_refresh)

    snapshot = sub.add_parser("snapshot", help="the app snapshot: one row per resource")
    snapshot.set_defaults(handler=_snapshot)

    server = sub.add_parser("server", help="commands for one tracked server")
    commands = server.add_subparsers(dest="server_command", metavar="COMMAND")
    for name, text in (
        ("reboot", "reboot the server"),
        ("reinstall", "reset the server to its image (the catalog's current one if it is gone)"),
        ("delete", "take the server out of the plan and delete it now"),
        ("resume", "continue the node's interrupted or failed install from the phase it stopped in"),
        ("repin", "after a rebuild outside Legion: trust the key the node presents for its next install"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("name", metavar="NAME", help="a tracked server (see 'legion snapshot')")
        if name == "delete":
            command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        command.set_defaults(handler=_server, command=name)

    orphan = sub.add_parser("orphan", help="resources Legion made that nothing in the state holds")
    orphan_commands = orphan.add_subparsers(dest="orphan_command", metavar="COMMAND")
    delete = orphan_commands.add_parser(
        "delete",
        help="delete one orphan now",
        description=(
            "Delete one orphan: Legion's two labels and nothing in the state holding it. The provider "
            "is read again first; a resource that is unknown there, not Legion's, or held by the "
            "state is refused (exit 2) and nothing is deleted."
        ),
    )
    delete.add_argument("provider", metavar="PROVIDER", help="hetzner, scaleway or ovh")
    delete.add_argument(
        "resource",
        metavar="RESOURCE",
        help=(
            "as 'legion diff' notes it: a server's provider id, dns_zone/ZONE, firewall/ID, "
            "floating_ip/ID or primary_ip/ID"
        ),
    )
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=_orphan_delete)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


# -- materialize ---------------------------------------------------------------------------------


async def _materialize(ctx: CliContext, args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - one-shot commands start without it

    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    async with ctx.api() as api:
        planned = await api.diff()
        for row in planned.resources:  # the operator's call, but never a silent one
            for warning in row.warnings:
                # On stdout with the run's own output: stderr carries only the one-line error of a
                # failed command.
                if ctx.json:
                    ctx.emit_line(
                        {
                            "event": "warning",
                            "kind": row.kind,
                            "resource": row.name,
                            "code": warning.code,
                            "message": warning.message,
                        }
                    )
                else:
                    sys.stdout.write(warning_line(row.kind, row.name, warning.message) + "\n")
                    sys.stdout.flush()
        question = f"materialize {len(planned.pending())} change(s) (see `legion diff`)?"
        if not args.yes and not _confirm(question):
            raise UsageError("materialize changes cloud resources: confirm, or pass --yes")
        live = not ctx.json and sys.stdout.isatty()
        show = LiveTable("materialize", tuple(_LIVE.values())) if live else None
        run = asyncio.ensure_future(api.materialize(yes=True, settle_seconds=args.timeout))
        follower = asyncio.ensure_future(_follow(api, ctx, show))
        try:
            report = await run
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            if show is not None:
                show.close()
    if ctx.json:
        from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415

        ctx.emit_line({"event": "report", **to_jsonable(report)})
    else:
        sys.stdout.write(f"{scrub(report.summary)}\n")
        sys.stdout.flush()
    if not report.ok:
        raise MaterializeIncompleteError(report.summary)
    return 0


async def _follow(api: EngineAPI, ctx: CliContext, show: LiveTable | None) -> None:
    """Print what the engine publishes until the materialize ends (this task is then cancelled):
    with ``--json`` every activity item, otherwise its headlines (details left out, as the panels
    do) and not the end (the report line follows)."""
    from legion_nb.engine.headline import headline  # noqa: PLC0415

    async with engine_events(api) as events:
        async for topic, data in events:
            if topic == "snapshot" and show is not None:
                show.show(_cells(data, _LIVE))
            elif topic == "activity":
                for item in data:
                    if ctx.json:
                        ctx.emit_line(item)
                    elif show is None and item.get("event") != "end" and headline(item):
                        sys.stdout.write(f"{scrub(item.get('summary', ''))}\n")
                        sys.stdout.flush()


@contextlib.asynccontextmanager
async def engine_events(api: EngineAPI) -> AsyncIterator[AsyncIterator[tuple[str, Any]]]:
    """The engine's event stream as (topic, JSON data), in process or from the daemon."""
    from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415

    stream = api.subscribe(["snapshot", "activity"])

    async def pairs() -> AsyncIterator[tuple[str, Any]]:
        async for event in stream:
            yield event.topic, to_jsonable(event.data)

    try:
        yield pairs()
    finally:
        await stream.aclose()


# -- refresh and snapshot ------------------------------------------------------------------------


@one_shot
async def _refresh(ctx: CliContext, args: argparse.Namespace) -> int:
    del args
    async with ctx.api() as api:
        result = await api.refresh()
    ctx.emit(result, _refresh_text)
    if result.ok:
        return 0
    raise refresh_error(result)


def refresh_error(result: RefreshResult) -> LegionError:
    """The error a failed refresh ends with: a provider's own failure (unreachable or refusing,
    for some providers or all) is exit 4; one on Legion's side is exit 5."""
    if result.failures() <= {"unreachable", "refused"}:
        return RefreshProviderError(result.summary)
    return RefreshIncompleteError(result.summary)


def _refresh_text(result: dict[str, Any]) -> str:
    failed = [report["provider"] for report in result["providers"] if report["error"]]
    # Each failure's reason follows on its provider's line; the headline only names them.
    lines = [f"refresh failed for {', '.join(failed)}:" if failed else result["summary"]]
    for report in result["providers"]:
        if report["error"]:
            lines.append(f"  {report['provider']}: {report['error']}")
            continue
        addresses = "" if "public_ip" in report["skipped"] else f", {report['public_ips']} public IPs"
        lines.append(
            f"  {report['provider']}: {report['servers']} servers, {report['dns_zones']} zones, "
            f"{report['firewalls']} firewalls{addresses}"
        )
        for label, names in (
            ("adopted", report["adopted"]),
            ("not Legion's (left alone)", report["unmanaged"]),
            ("Legion-labelled but not planned (left alone)", report["orphans"]),
        ):
            if names:
                lines.append(f"    {label}: {', '.join(names)}")
    return "\n".join(lines)


@one_shot
async def _snapshot(ctx: CliContext, args: argparse.Namespace) -> int:
    del args
    async with ctx.api() as api:
        result = await api.snapshot()
    ctx.emit(result, _snapshot_text)
    return 0


def _snapshot_text(snapshot: dict[str, Any]) -> str:
    rows = snapshot.get("rows", [])
    if not rows:
        return "nothing planned or tracked (legion plan ... to start)"
    return "\n".join((table(tuple(_SNAPSHOT.values()), _cells(snapshot, _SNAPSHOT)), *warning_lines(rows)))


def _cells(snapshot: Any, columns: dict[str, Column]) -> list[list[Any]]:
    """A snapshot's rows as cells in ``columns``' order."""
    rows = snapshot.get("rows", []) if isinstance(snapshot, dict) else []
    return [[row.get(key) for key in columns] for row in rows]


# -- orphans -------------------------------------------------------------------------------------


@one_shot
async def _orphan_delete(ctx: CliContext, args: argparse.Namespace) -> int:
    target = f"{args.provider} {args.resource}"
    if not args.yes and not _confirm(f"delete orphan {target} now?"):
        raise UsageError("orphan delete removes a resource at its provider: confirm, or pass --yes")
    async with ctx.api() as api:
        result = await api.orphan_delete(args.provider, args.resource)
    ctx.emit(result, lambda r: str(r["summary"]))
    if result.status != "succeeded":
        raise OperationError(result.summary)
    return 0


# -- server commands -----------------------------------------------------------------------------

_SERVER_COMMANDS: dict[str, Callable[[EngineAPI, str], Awaitable[ServerCommandResult]]] = {
    "reboot": lambda api, name: api.server_reboot(name),
    "reinstall": lambda api, name: api.server_reinstall(name),
    "delete": lambda api, name: api.server_delete(name),
    "resume": lambda api, name: api.node_resume(name),  # node deployment commands
    "repin": lambda api, name: api.node_repin(name),
}


@one_shot
async def _server(ctx: CliContext, args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "delete" and not args.yes and not _confirm(f"delete server {args.name} now?"):
        raise UsageError("server delete removes a server at its provider: confirm, or pass --yes")
    async with ctx.api() as api:
        result = await _SERVER_COMMANDS[command](api, args.name)
    render: Callable[[dict[str, Any]], str] = lambda r: str(r["summary"])  # noqa: E731
    ctx.emit(result, render)
    if result.status != "succeeded":
        raise OperationError(result.summary)
    return 0
