"""``legion stream start SATELLITE NAME ENDPOINT``, ``legion stream stop NAME``, ``legion stream list``.

A stream is planned state: ``start`` plans it running and starts it on its satellite now; ``stop``
keeps it planned but stopped; ``list`` shows each stream's state (``starting | live | stalled |
stopped | failed``) with the reason, bytes delivered and the endpoint's latency (``--probe``: probe
now instead of showing the last probe).

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from typing import Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.tables import Column, table

__all__ = ["register"]

_COLUMNS = {
    "name": Column("name", 20),
    "satellite": Column("satellite", 24),
    "state": Column("state", 8),
    "reason": Column("reason", 32),
    "bytes": Column("bytes", 12),
    "latency_ms": Column("latency_ms", 10),
    "endpoint": Column("endpoint", 28),
    "checked_at": Column("checked_at"),
}


def register(sub: Any) -> None:
    stream = sub.add_parser("stream", help="Sender stream sessions on satellites")
    commands = stream.add_subparsers(dest="stream_command", metavar="COMMAND", required=True)
    start = commands.add_parser("start", help="plan a stream on a satellite and start it")
    start.add_argument("satellite", metavar="SATELLITE", help="the planned satellite server that sends")
    start.add_argument("name", metavar="NAME", help="the stream's name")
    start.add_argument(
        "endpoint", metavar="ENDPOINT", help="tcp://HOST:PORT, http:// or https:// with a port"
    )
    start.set_defaults(handler=_start)
    stop = commands.add_parser("stop", help="stop a stream (it stays planned)")
    stop.add_argument("name", metavar="NAME", help="the stream's name (see 'legion stream list')")
    stop.set_defaults(handler=_stop)
    listing = commands.add_parser("list", help="every stream with its state and reason")
    listing.add_argument("--probe", action="store_true", help="probe every stream now")
    listing.set_defaults(handler=_list)


async def _start(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        view = await api.stream_start(args.satellite, args.name, args.endpoint)
    ctx.emit(view, lambda v: _text([v]))
    return 0


async def _stop(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        view = await api.stream_stop(args.name)
    ctx.emit(view, lambda v: _text([v]))
    return 0


@one_shot
async def _list(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        views = await api.stream_list(probe=args.probe)
    ctx.emit(views, _text)
    return 0


def _text(views: list[dict[str, Any]]) -> str:
    if not views:
        return "no streams planned (legion stream start SATELLITE NAME ENDPOINT)"
    return table(tuple(_COLUMNS.values()), ([v[c] for c in _COLUMNS] for v in views))
