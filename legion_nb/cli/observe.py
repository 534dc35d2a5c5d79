"""``legion observe``: the observation scheduler in the foreground, or one pass of each concern.

``legion observe --once [--only CONCERN,...]`` runs each selected concern once and exits - for
cron and tests - printing one line per concern (``--json``: ``{concern: {ok, seconds, items,
error}}``); it exits 5 when a concern failed. Plain ``legion observe`` unlocks an engine whose
scheduler runs, passes once over every concern so the table starts full, and then shows the
scheduler's status live (a rich table on a terminal, JSON lines with ``--json``) until Ctrl-C or
SIGTERM, which closes the engine and exits 0 after one goodbye line on stderr.
When a daemon serves the state, both go through it: its scheduler is the one that runs.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext, scrub
from legion_nb.cli.tables import Column, LiveTable, table
from legion_nb.errors import OperationError

if TYPE_CHECKING:
    import asyncio

__all__ = ["ObservationFailedError", "register"]

# The scheduler's concern records as the live table shows them, key by key.
_LIVE = {
    "concern": Column("concern", 10),
    "ok": Column("ok", 6),
    "items": Column("items", 6),
    "seconds": Column("seconds", 7),
    "last_run": Column("last_run", 8),
    "next_run": Column("next_run", 8),
    "error": Column("error"),
}
_COLUMNS = tuple(_LIVE)
_ONCE = (Column("concern", 10), Column("result", 6), _LIVE["items"], _LIVE["seconds"], _LIVE["error"])


class ObservationFailedError(OperationError):
    """A concern of a one-shot observation pass failed (the message names each)."""

    code = "observation_failed"


def register(sub: Any) -> None:
    observe = sub.add_parser(
        "observe", help="run the observation scheduler in the foreground, or each concern once"
    )
    observe.add_argument("--once", action="store_true", help="run each selected concern once and exit")
    observe.add_argument(
        "--only", metavar="CONCERN,...", help="only these concerns (providers, catalogs, nodes, ...)"
    )
    observe.set_defaults(handler=_observe)


def _selected(args: argparse.Namespace) -> list[str] | None:
    if not args.only:
        return None
    return [name.strip() for name in str(args.only).split(",") if name.strip()]


async def _observe(ctx: CliContext, args: argparse.Namespace) -> int:
    only = _selected(args)
    if args.once:
        async with ctx.api() as api:
            result: dict[str, Any] = dict(await api.observe_once(only=only))
        ctx.emit(result, _once_text)
        failed = {name: r for name, r in result.items() if not r.get("ok")}
        if failed:
            named = "; ".join(f"{name}: {r.get('error')}" for name, r in failed.items())
            raise ObservationFailedError(f"observation failed for {len(failed)} concern(s) - {named}")
        return 0
    from legion_nb.cli.signals import stop_on_signals  # noqa: PLC0415

    stop = stop_on_signals()
    async with ctx.api(observe=True) as api:
        stopped = await _until(stop, _watch(ctx, api, only))
    if stopped:
        sys.stderr.write("legion: observation stopped\n")
        sys.stderr.flush()
    return 0


async def _watch(ctx: CliContext, api: Any, only: list[str] | None) -> None:
    await api.observe_once(only=only)
    await _follow(ctx, api)


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work`` until it ends or ``stop`` is set (then cancel it); whether ``stop`` ended it."""
    import asyncio  # noqa: PLC0415

    watching = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watching, stopping):
            task.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
    if stop.is_set():
        await asyncio.gather(watching, return_exceptions=True)
        return True
    await watching  # its own end: an error it raised surfaces here
    return False


def _once_text(result: dict[str, Any]) -> str:
    rows = [
        (
            name,
            "ok" if r.get("ok") else "FAILED",
            r.get("items"),
            None if r.get("seconds") is None else f"{r['seconds']:.2f}",
            r.get("error"),
        )
        for name, r in result.items()
    ]
    return table(_ONCE, rows)


async def _follow(ctx: CliContext, api: Any) -> None:
    """Show the scheduler's section of every snapshot until interrupted."""
    from legion_nb.cli.operations import engine_events  # noqa: PLC0415

    title = "observation (Ctrl-C to stop)"
    live = None if ctx.json or not sys.stdout.isatty() else LiveTable(title, tuple(_LIVE.values()))
    last: Any = None
    try:
        if live is not None:
            live.show(_cells(await api.observation()))
        async with engine_events(api) as events:
            async for topic, data in events:
                section = data.get("observation") if topic == "snapshot" and isinstance(data, dict) else None
                if section is None or section == last:
                    continue
                last = section
                if live is not None:
                    live.show(_cells(section))
                elif ctx.json:
                    ctx.emit_line(section)
                else:
                    sys.stdout.write(scrub(_section_text(section)) + "\n\n")
                    sys.stdout.flush()
    finally:
        if live is not None:
            live.close()


def _cells(section: dict[str, Any]) -> list[list[object]]:
    """The concerns' records as display cells, in the columns' order."""
    return [[_cell(c, column) for column in _COLUMNS] for c in section.get("concerns", [])]


def _section_text(section: dict[str, Any]) -> str:
    return table(tuple(_LIVE.values()), _cells(section))


def _cell(concern: dict[str, Any], column: str) -> object:
    value = concern.get(column)
    if column == "seconds" and value is not None:
        return f"{value:.2f}"
    if column == "ok":
        return "" if value is None else "ok" if value else "FAILED"
    if column in ("last_run", "next_run") and value:
        return str(value)[11:19]  # the UTC time of day is what a watcher reads
    return value
