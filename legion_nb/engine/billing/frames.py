"""Billing rows and frames: JSON rows for the CLI and the daemon, DataFrames for analysts.

One shape crosses every edge: a row is a JSON object with ``start``/``end`` as ISO 8601 UTC, money
as decimal strings next to its ``currency``, and ``provider``, ``resource`` and ``source`` named as
the CLI contract says. :func:`billing_frame` turns any list of such rows (built in process or read
from the daemon) into a tidy frame: a UTC ``DatetimeIndex`` named ``start``, labels as ``category``
and money as an ``object`` column of :class:`~decimal.Decimal`, which ``sum()`` and ``groupby().sum()``
add exactly (a float column would not reproduce a provider's total to the cent).

Summaries pick one figure per provider and month so nothing is counted twice: the provider's own
(usage, else invoice) where it has one, else Legion's estimate. ``--by day`` uses the estimates,
the only figures with a daily period, plus one ``unattributed`` row per provider and month for
what the provider's own figure holds beyond them, so the days add up to the month to date.
Money is the exact amount written without trailing zeros (``3.774``): nothing is rounded.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from legion_nb.engine.billing.hourly import month_start, next_month
from legion_nb.engine.billing.ledger import LedgerRow
from legion_nb.engine.billing.reconcile import SOURCE_PREFERENCE, DayCost, ForecastLine, ReconciliationLine
from legion_nb.errors import UsageError

if TYPE_CHECKING:  # pandas loads only when a frame is asked for
    import pandas as pd

__all__ = [
    "GROUPINGS",
    "MONEY_COLUMNS",
    "Grouping",
    "billing_frame",
    "day_rows",
    "forecast_rows",
    "ledger_rows",
    "parse_month",
    "reconciliation_rows",
    "summary_rows",
]

Grouping = Literal["provider", "cluster", "resource", "day"]
GROUPINGS: tuple[Grouping, ...] = ("provider", "cluster", "resource", "day")
MONEY_COLUMNS = (
    "billed_cost",
    "list_cost",
    "estimate",
    "provider_cost",
    "difference",
    "month_to_date",
    "remaining",
    "forecast",
    "provider_forecast",
    "cost",
    "trailing_mean",
)
_TIMES = ("end", "month")
_LABELS = ("provider", "account", "kind", "cluster", "role", "currency", "source", "ownership", "sku", "part")


def parse_month(text: str | None, now: dt.datetime | None = None) -> dt.datetime:
    """``YYYY-MM`` as the month's first instant (UTC); None: the current month."""
    if text is None:
        return month_start(now or dt.datetime.now(dt.UTC))
    try:
        parsed = dt.datetime.strptime(text, "%Y-%m").replace(tzinfo=dt.UTC)
    except ValueError:
        raise UsageError(f"month {text!r} is not valid; write it as YYYY-MM, e.g. 2026-11") from None
    return parsed


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _money(amount: Decimal | None) -> str | None:
    """Plain decimal text of the exact amount without trailing zeros (``3.774``, not ``3.7740000000``
    as a product of prices carries), never exponent notation (``0.000000001``, not ``1E-9``;
    ``10``, not ``1E+1``)."""
    if amount is None:
        return None
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def ledger_rows(rows: Iterable[LedgerRow]) -> list[dict[str, Any]]:
    texts: dict[dt.datetime, str] = {}  # period bounds repeat across a fleet's rows

    def iso(moment: dt.datetime) -> str:
        found = texts.get(moment)
        if found is None:
            found = texts[moment] = _iso(moment)
        return found

    return [
        {
            "start": iso(r.start),
            "end": iso(r.end),
            "provider": r.provider,
            "account": r.account,
            "resource": r.resource_id,
            "resource_name": r.resource_name,
            "kind": r.kind,
            "cluster": r.cluster,
            "role": r.role,
            "billed_cost": format(r.billed_cost, "f"),
            "list_cost": format(r.list_cost, "f"),
            "currency": r.currency,
            "source": r.source,
            "sku": r.sku,
            "ownership": r.ownership,
            "server": r.server,
        }
        for r in rows
    ]


def _chosen(rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    """One figure per provider and month (:data:`SOURCE_PREFERENCE`): the provider's usage, else
    its invoice, else the estimate."""
    sources: dict[tuple[str, dt.datetime], set[str]] = defaultdict(set)
    for r in rows:
        sources[(r.provider, month_start(r.start))].add(r.source)
    out = []
    for r in rows:
        present = sources[(r.provider, month_start(r.start))]
        if r.source == next(s for s in SOURCE_PREFERENCE if s in present):
            out.append(r)
    return out


def _unattributed(rows: Sequence[LedgerRow]) -> list[dict[str, Any]]:
    """Per provider, month and currency whose figure is the provider's own: what that figure holds
    beyond the days' estimates, as one row over the month so far (``part`` ``unattributed``).

    The providers bill a month per resource, never per day, and Legion estimates days only for
    what it lists: a resource that ran and was deleted before a collection saw it (or a provider
    figure a little off Legion's estimate) has no day. The row makes the days add up to the month
    to date of :func:`~legion_nb.engine.billing.reconcile.forecast` instead of silently falling short;
    it is negative where the estimates exceed the provider's figure.
    """
    figure: dict[tuple[str, dt.datetime, str], Decimal] = defaultdict(Decimal)
    estimated: dict[tuple[str, dt.datetime, str], Decimal] = defaultdict(Decimal)
    ends: dict[tuple[str, dt.datetime, str], dt.datetime] = {}
    sources: dict[tuple[str, dt.datetime, str], str] = {}
    for r in _chosen(rows):
        key = (r.provider, month_start(r.start), r.currency)
        if r.source != "estimate":
            figure[key] += r.billed_cost
            ends[key] = max(r.end, ends.get(key, r.end))
            sources[key] = r.source
    for r in rows:
        if r.source == "estimate":
            estimated[(r.provider, month_start(r.start), r.currency)] += r.billed_cost
    out: list[dict[str, Any]] = []
    for key in sorted(figure):
        rest = figure[key] - estimated[key]
        if rest:
            provider, month, currency = key
            out.append(
                {
                    "start": _iso(month),
                    "end": _iso(ends[key]),
                    "provider": provider,
                    "billed_cost": _money(rest),
                    "currency": currency,
                    "source": sources[key],
                    "part": "unattributed",
                }
            )
    return out


def summary_rows(rows: Sequence[LedgerRow], by: Grouping) -> list[dict[str, Any]]:
    """Totals per provider, cluster, resource (each per month) or day (module notes), per currency.

    By day, each row's ``part`` says what it is: ``day`` (Legion's estimate for that day) or
    ``unattributed`` (:func:`_unattributed`), so a month's rows add up to its month to date.
    """
    if by not in GROUPINGS:
        raise UsageError(f"cannot summarize by {by!r}; use one of {', '.join(GROUPINGS)}")
    picked = [r for r in rows if r.source == "estimate"] if by == "day" else _chosen(rows)
    totals: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    ends: dict[tuple[Any, ...], dt.datetime] = {}
    for r in picked:
        start = r.start if by == "day" else month_start(r.start)
        detail = {"provider": "", "cluster": r.cluster, "resource": r.resource_id, "day": ""}[by]
        key = (start, r.provider, detail, r.currency, r.source)
        totals[key] += r.billed_cost
        ends[key] = r.end if by == "day" else next_month(start)
    out: list[dict[str, Any]] = []
    for key in sorted(totals):
        start, provider, detail, currency, source = key
        row: dict[str, Any] = {"start": _iso(start), "end": _iso(ends[key]), "provider": provider}
        if by in ("cluster", "resource"):
            row[by] = detail
        row.update({"billed_cost": format(totals[key], "f"), "currency": currency, "source": source})
        if by == "day":
            row["part"] = "day"
        out.append(row)
    if by == "day":
        out += _unattributed(rows)
    return out


def reconciliation_rows(lines: Iterable[ReconciliationLine]) -> list[dict[str, Any]]:
    return [
        {
            "start": _iso(x.month),
            "end": _iso(next_month(x.month)),
            "provider": x.provider,
            "resource": x.resource_id,
            "resource_name": x.resource_name,
            "kind": x.kind,
            "address": x.address,
            "cluster": x.cluster,
            "estimate": _money(x.estimate),
            "provider_cost": _money(x.provider_cost),
            "difference": _money(x.difference),
            "currency": x.currency,
            "source": x.provider_source or "estimate",
            "ownership": x.ownership,
            "orphan": x.orphan,
        }
        for x in lines
    ]


def forecast_rows(lines: Iterable[ForecastLine]) -> list[dict[str, Any]]:
    return [
        {
            "start": _iso(x.month),
            "end": _iso(next_month(x.month)),
            "provider": x.provider,
            "month_to_date": _money(x.month_to_date),
            "remaining": _money(x.remaining),
            "forecast": _money(x.forecast),
            "provider_forecast": _money(x.provider_forecast),
            "currency": x.currency,
            "source": x.source,
        }
        for x in lines
    ]


def day_rows(days: Iterable[DayCost]) -> list[dict[str, Any]]:
    return [
        {
            "start": _iso(d.day),
            "end": _iso(d.day + dt.timedelta(days=1)),
            "provider": d.provider,
            "cost": _money(d.cost),
            "trailing_mean": _money(d.trailing_mean),
            "currency": d.currency,
            "source": "estimate",
            "anomaly": d.anomaly,
        }
        for d in days
    ]


def billing_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The tidy frame of any billing rows (module notes); an empty list gives an empty frame with
    a UTC index."""
    import pandas as pd  # noqa: PLC0415 - pandas loads only when a frame is asked for

    from legion_nb.engine.frame_wire import frame_from_rows  # noqa: PLC0415 - loads pandas

    if not rows:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="start"))
    frame = frame_from_rows(rows, categories=_LABELS, decimals=MONEY_COLUMNS, times=("start", *_TIMES))
    frame = frame.set_index(pd.DatetimeIndex(frame.pop("start"), name="start"))
    return frame.sort_index(kind="stable")
