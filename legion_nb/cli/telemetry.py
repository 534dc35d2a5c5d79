"""``legion telemetry`` and ``legion logs``: the stores beside the state, read as tables.

``legion telemetry [--node N] [--metric M] [--since DUR] [--rollup raw|1m|5m|1h]`` shows, per
series, the window's last value, min, mean and max: the metric in words with its unit (the engine's
label, ``CPU utilisation (%)``, values in that unit) and its recording-rule name whole in the last
column, the name ``--metric`` takes and the JSON rows hold; ``legion logs [--node N] [--grep TEXT] [--since
DUR] [--limit N] [--follow]`` the matching lines, oldest first. With ``--json`` either prints ONE JSON
array of row objects (``time`` as ISO 8601 UTC, then the frame's columns), so
``pandas.DataFrame(json.loads(out))`` rebuilds the frame the engine API returns; ``logs --follow
--json`` prints one such object a line as lines arrive. ``legion telemetry export --format
parquet|csv --out PATH`` writes the frame (Parquet keeps categories and the UTC index).

What fills the stores is collection (``legion observe``, or a kernel or daemon whose scheduler
runs). Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext, one_shot, scrub
from legion_nb.cli.tables import Column, row_line, table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]

FOLLOW_SECONDS = 2.0
"""How often ``logs --follow`` asks for lines after the last one it printed."""

# One line per series. A metric's label with its unit runs to 34 characters (Network transmit drops
# (packets/s)); its rule name runs to 56 (instance:node_network_transmit_drop_excluding_lo:rate5m),
# so it is the open last column, read whole.
_SERIES = (
    Column("NODE", 16),
    Column("METRIC", 34),
    Column("DEVICE", 10),
    Column("LAST AT (UTC)", 19),
    Column("LAST", 10),
    Column("MIN", 10),
    Column("MEAN", 10),
    Column("MAX", 10),
    Column("POINTS", 6),
    Column("RULE"),
)
# A log line: time, node, source (the journald unit), level, then the text whole.
_LOG_LINE = (Column("TIME", 19), Column("NODE", 16), Column("SOURCE", 12), Column("LEVEL", 7), Column("TEXT"))


def register(sub: Any) -> None:
    telemetry = sub.add_parser(
        "telemetry", help="node metrics from the telemetry store (collected by observe)"
    )
    _series_filters(telemetry)
    telemetry.set_defaults(handler=_telemetry, telemetry_command=None)
    commands = telemetry.add_subparsers(dest="telemetry_command", metavar="COMMAND")
    export = commands.add_parser("export", help="write the telemetry frame to a Parquet or CSV file")
    _series_filters(export)
    export.add_argument("--format", choices=("parquet", "csv"), required=True, help="the file format")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write (replaced if present)")
    export.set_defaults(handler=_export)

    logs = sub.add_parser("logs", help="search the log store: node journals and Legion's own log")
    logs.add_argument("--node", action="append", metavar="N", help="only this node (repeatable)")
    logs.add_argument("--source", action="append", metavar="S", help="only this unit/source (repeatable)")
    logs.add_argument("--level", metavar="LEVEL", help="this severity or worse (err, warning, info, ...)")
    logs.add_argument("--grep", metavar="TEXT", help="lines containing TEXT (any case)")
    logs.add_argument("--since", metavar="DUR", help="only the last DUR (default: all; 30s, 15m, 2h, 7d)")
    logs.add_argument("--limit", type=int, default=200, metavar="N", help="at most N lines (default 200)")
    logs.add_argument("--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.set_defaults(handler=_logs_or_follow)


def _series_filters(parser: Any) -> None:
    parser.add_argument("--node", action="append", metavar="N", help="only this node (repeatable)")
    parser.add_argument("--metric", action="append", metavar="M", help="only this metric (repeatable)")
    parser.add_argument(
        "--since", default="1h", metavar="DUR", help="only the last DUR (default: 1h; 30s, 15m, 2h, 7d)"
    )
    parser.add_argument(
        "--rollup",
        choices=("raw", "1m", "5m", "1h"),
        default="raw",
        help="raw samples or a rollup tier (default: raw)",
    )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from legion_nb.engine.frame_wire import frame_rows  # noqa: PLC0415 - pandas only here

    return frame_rows(frame)


@one_shot
async def _telemetry(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        frame = await api.telemetry(nodes=args.node, metrics=args.metric, since=args.since, tier=args.rollup)
    if ctx.json:
        ctx.emit(_rows(frame), keep_order=True)
    else:
        ctx.emit(None, lambda _: _series_table(frame, args))
    return 0


def _series_table(frame: pd.DataFrame, args: argparse.Namespace) -> str:
    """One line per series: when it was last seen, its last value and the window's min/mean/max, in
    the unit its label names (a ratio the label shows in percent reads 45.1, not 0.451)."""
    from legion_nb.engine.observe.metrics import metric_label  # noqa: PLC0415 - argparse-level top

    if frame.empty:
        return f"no telemetry{_asked_for(args)} (has `legion observe` collected from the nodes?)"
    value = "value" if args.rollup == "raw" else "mean"
    keyed = frame.reset_index()
    groups = keyed.groupby(["node", "metric", "device"], observed=True, sort=True)
    rows = []
    for (node, metric, device), group in groups:
        last = group.iloc[-1]
        low = group["min"].min() if value == "mean" else group[value].min()
        high = group["max"].max() if value == "mean" else group[value].max()
        mean = group["sum"].sum() / group["count"].sum() if value == "mean" else group[value].mean()
        label = metric_label(str(metric))
        scale = 100.0 if label.percent else 1.0
        rows.append(
            (
                node,
                label.title,
                device,
                f"{last['time']:%Y-%m-%d %H:%M:%S}",
                _number(scale * last[value]),
                _number(scale * low),
                _number(scale * mean),
                _number(scale * high),
                len(group),
                metric,
            )
        )
    return table(_SERIES, rows, title=f"telemetry, last {args.since}, {args.rollup}")


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.4e}"


async def _export(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        written = await api.telemetry_export(
            os.path.abspath(os.path.expanduser(args.out)),  # noqa: ASYNC240 - no filesystem access
            format=args.format,
            nodes=args.node,
            metrics=args.metric,
            since=args.since,
            tier=args.rollup,
        )
    ctx.emit(written, lambda d: f"wrote {d['rows']} rows to {d['path']}")
    return 0


async def _logs_or_follow(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.follow:
        return await _follow(ctx, args)
    return await _logs(ctx, args)


@one_shot
async def _logs(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        frame = await api.logs(**_log_filters(args), since=args.since, limit=args.limit)
    if ctx.json:
        ctx.emit(_rows(frame), keep_order=True)
    else:
        ctx.emit(None, lambda _: _lines(frame) or f"no log lines{_asked_for(args)}")
    return 0


async def _follow(ctx: CliContext, args: argparse.Namespace) -> int:
    """The last ``--limit`` lines, then every new line until Ctrl-C (JSON: one object a line)."""
    import asyncio  # noqa: PLC0415 - following needs a loop; a one-shot search does not

    filters = _log_filters(args)
    async with ctx.api() as api:
        frame = await api.logs(**filters, since=args.since, limit=args.limit)
        last_id: int | None = None
        while True:
            if not frame.empty:
                if ctx.json:
                    for row in _rows(frame):
                        ctx.emit_line(row, keep_order=True)
                else:
                    sys.stdout.write(scrub(_lines(frame)) + "\n")
                    sys.stdout.flush()
                last_id = int(frame["id"].iloc[-1])
            await asyncio.sleep(FOLLOW_SECONDS)
            if last_id is None:  # nothing matched yet: the same window again
                frame = await api.logs(**filters, since=args.since, limit=args.limit)
            else:
                frame = await api.logs(**filters, after_id=last_id, limit=1000)


def _asked_for(args: argparse.Namespace) -> str:
    """The filters of an empty answer, said back, so that a mistyped node or metric shows."""
    said = [
        f"{label} {', '.join(values)}"
        for label, values in (
            ("node", getattr(args, "node", None)),
            ("metric", getattr(args, "metric", None)),
            ("source", getattr(args, "source", None)),
        )
        if values
    ]
    if getattr(args, "level", None):
        said.append(f"at level {args.level} or worse")
    if getattr(args, "grep", None):
        said.append(f"containing {args.grep!r}")
    if args.since:
        said.append(f"in the last {args.since}")
    return f" for {', '.join(said)}" if said else ""


def _log_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"text": args.grep, "nodes": args.node, "sources": args.source, "level": args.level}


def _lines(frame: pd.DataFrame) -> str:
    """``TIME NODE SOURCE LEVEL TEXT``, one log line a line, in the same columns batch after batch
    (``--follow``); the text is never cut."""
    out = []
    for at, node, source, level, text in zip(
        frame.index, frame["node"], frame["source"], frame["level"], frame["text"], strict=True
    ):
        out.append(row_line(_LOG_LINE, (f"{at:%Y-%m-%d %H:%M:%S}", node, source, level, text)))
    return "\n".join(out)
