"""``legion billing``: the ledger, its totals, the reconciliation, the forecast, and exports.

Every command collects first (one pass over the providers with credentials, through the engine or
the daemon) unless ``--no-collect``; ``--json`` prints ONE JSON array of row objects with ``start``
and ``end`` in ISO 8601 UTC and money as decimal strings next to ``currency``, so
``pandas.DataFrame(json.loads(out))`` rebuilds the table. ``export`` writes the same rows as CSV or
Parquet (money stays exact: decimal text in CSV, a decimal column in Parquet).

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.tables import Column, table
from legion_nb.errors import UsageError

if TYPE_CHECKING:
    from legion_nb.engine.surface import EngineAPI

__all__ = ["register"]


def register(sub: Any) -> None:
    billing = sub.add_parser("billing", help="what every resource costs: ledger, totals, forecast, export")
    _window(billing)
    billing.add_argument(
        "--by", choices=("provider", "cluster", "resource", "day"), help="totals instead of ledger rows"
    )
    billing.set_defaults(handler=_ledger, billing_command=None)
    commands = billing.add_subparsers(dest="billing_command", metavar="COMMAND")
    forecast = commands.add_parser("forecast", help="this month's end per provider: to date plus what runs")
    _collect_flag(forecast)
    forecast.set_defaults(handler=_forecast)
    reconcile = commands.add_parser(
        "reconcile", help="Legion's estimate vs the provider's figure per resource; orphans flagged"
    )
    _window(reconcile)
    reconcile.set_defaults(handler=_reconcile)
    daily = commands.add_parser("daily", help="estimated cost per provider and day, anomalies flagged")
    _window(daily)
    daily.set_defaults(handler=_daily)
    export = commands.add_parser("export", help="write the month's ledger rows to a CSV or Parquet file")
    _window(export)
    export.add_argument("--format", choices=("parquet", "csv"), required=True, help="the file format")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write (replaced if present)")
    export.set_defaults(handler=_export)


def _collect_flag(parser: Any) -> None:
    parser.add_argument(
        "--no-collect", action="store_true", help="answer from the ledger as stored, without asking providers"
    )


def _window(parser: Any) -> None:
    parser.add_argument("--month", metavar="YYYY-MM", help="the calendar month (default: this month)")
    _collect_flag(parser)


async def _rows(
    ctx: CliContext, call: Callable[[EngineAPI], Awaitable[list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    async with ctx.api() as api:
        return await call(api)


# Every billing row key a table shows, with its header and width (``--by`` picks among them).
_START = Column("START", 16)
_PROVIDER = Column("PROVIDER", 8)
_RESOURCE_NAME = Column("RESOURCE NAME", 24)
_RESOURCE = Column("RESOURCE", 28)
_CLUSTER = Column("CLUSTER", 12)
_SOURCE = Column("SOURCE", 10)
_MONEY = 14
_CURRENCY = Column("CUR", 3)

_Columns = dict[str, Column]


def _render(columns: _Columns) -> Callable[[list[dict[str, Any]]], str]:
    def render(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no billing rows (is anything running, and are credentials stored?)"
        return table(tuple(columns.values()), [[_cell(row.get(key)) for key in columns] for row in rows])

    return render


def _cell(value: Any) -> str:
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and "T" in value:
        return value[:10] if value.endswith("T00:00:00Z") else value[:16].replace("T", " ")
    if isinstance(value, bool):
        return "yes" if value else ""
    return "" if value is None else str(value)


@one_shot
async def _ledger(ctx: CliContext, args: argparse.Namespace) -> int:
    rows = await _rows(
        ctx, lambda api: api.billing_ledger(month=args.month, by=args.by, collect=not args.no_collect)
    )
    detail: _Columns
    if args.by is None:
        detail = {"resource_name": _RESOURCE_NAME, "resource": _RESOURCE, "cluster": _CLUSTER}
    elif args.by == "resource":
        detail = {"resource": _RESOURCE}
    elif args.by == "cluster":
        detail = {"cluster": _CLUSTER}
    elif args.by == "day":  # a day's estimate, or the month to date no day holds
        detail = {"part": Column("PART", 12)}
    else:  # provider: the start and provider say it
        detail = {}
    columns = {
        "start": _START,
        "provider": _PROVIDER,
        **detail,
        "source": _SOURCE,
        "billed_cost": Column("BILLED COST", _MONEY),
        "currency": Column("CURRENCY"),
    }
    ctx.emit(rows, _render(columns))
    return 0


@one_shot
async def _forecast(ctx: CliContext, args: argparse.Namespace) -> int:
    rows = await _rows(ctx, lambda api: api.billing_forecast(collect=not args.no_collect))
    columns = {
        "provider": _PROVIDER,
        "month_to_date": Column("TO DATE", _MONEY),
        "remaining": Column("REMAINING", _MONEY),
        "forecast": Column("FORECAST", _MONEY),
        "provider_forecast": Column("PROVIDER SAYS", _MONEY),
        "currency": _CURRENCY,
        "source": Column("FROM"),
    }
    ctx.emit(rows, _render(columns))
    return 0


@one_shot
async def _reconcile(ctx: CliContext, args: argparse.Namespace) -> int:
    rows = await _rows(
        ctx, lambda api: api.billing_reconciliation(month=args.month, collect=not args.no_collect)
    )
    columns = {
        "provider": _PROVIDER,
        "resource_name": Column("NAME", 24),
        "resource": _RESOURCE,
        "kind": Column("KIND", 12),  # fits primary_ipv4 (12) and floating_ip (11)
        "address": Column("ADDRESS", 24),
        "estimate": Column("ESTIMATE", _MONEY),
        "provider_cost": Column("PROVIDER", _MONEY),
        "difference": Column("DIFF", _MONEY),
        "currency": _CURRENCY,
        "ownership": Column("OWNERSHIP", 10),
        "orphan": Column("ORPHAN"),
    }
    ctx.emit(rows, _render(columns))
    return 0


@one_shot
async def _daily(ctx: CliContext, args: argparse.Namespace) -> int:
    rows = await _rows(ctx, lambda api: api.billing_daily(month=args.month, collect=not args.no_collect))
    columns = {
        "start": Column("DAY", 10),
        "provider": _PROVIDER,
        "cost": Column("COST", _MONEY),
        "trailing_mean": Column("WEEK MEAN", _MONEY),
        "currency": _CURRENCY,
        "anomaly": Column("ANOMALY"),
    }
    ctx.emit(rows, _render(columns))
    return 0


async def _export(ctx: CliContext, args: argparse.Namespace) -> int:
    rows = await _rows(ctx, lambda api: api.billing_ledger(month=args.month, collect=not args.no_collect))
    written = _write(rows, args.out, args.format)
    ctx.emit(written, lambda d: f"wrote {d['rows']} rows to {d['path']}")
    return 0


def _write(rows: list[dict[str, Any]], target: str, fmt: str) -> dict[str, Any]:
    """The rows as a frame in a CSV or Parquet file; a missing directory is the operator's to make."""
    from legion_nb.engine.billing.frames import billing_frame  # noqa: PLC0415 - pandas only here

    out = Path(target).expanduser()
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: the directory {out.parent} does not exist")
    frame = billing_frame(rows)
    try:
        if fmt == "csv":
            frame.to_csv(out, index=True)
        else:
            frame.to_parquet(out, index=True)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return {"path": str(out), "format": fmt, "rows": len(frame)}
