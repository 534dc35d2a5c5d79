"""Reconciliation, forecast and anomalies: pure functions over ledger rows and the last listing.

Reconciliation compares, per provider, month and resource, Legion's estimate with the provider's
own usage figure (invoices cover a whole account's month, so they stay out of the per-resource
lines; the ledger keeps them beside the usage rows of the same month) and flags *orphans*:
resources the provider lists now that Legion did not plan, whether they carry Legion's ownership
labels (made by Legion, no longer planned, or made behind its back with copied labels) or none.
Orphans are cleanup candidates; nothing here deletes anything.

The month-end forecast is the month to date (one figure: the provider's usage, else its invoice,
else the estimate; usage and invoice are two views of the same bill) plus what the resources
listed now will cost until the month ends if they keep running
(the hourly rules, so a capped server adds nothing once it reached its monthly price).

A day is an anomaly when its list cost (every hour at its price, before a monthly cap: the spend
rate, which does not fall to zero once a server reaches its cap and jump back on the 1st) is more
than :data:`ANOMALY_FACTOR` times the mean of the :data:`ANOMALY_WINDOW` days before it (which must
all have data and a positive mean). The day's billed cost is reported beside it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from legion_nb.engine.billing.hourly import month_start, next_month, period_charge
from legion_nb.engine.billing.ledger import (
    ADDON_KINDS,
    ADDRESS_KINDS,
    LedgerRow,
    Ownership,
    ServerFacts,
    Source,
)
from legion_nb.engine.billing.ledger_store import Listed

__all__ = [
    "ANOMALY_FACTOR",
    "ANOMALY_WINDOW",
    "SOURCE_PREFERENCE",
    "DayCost",
    "ForecastLine",
    "ReconciliationLine",
    "anomalies",
    "forecast",
    "reconcile",
]

SOURCE_PREFERENCE: tuple[Source, ...] = ("usage", "invoice", "estimate")
"""Which figure of a provider's month counts when the ledger holds several: the provider's usage
lines (per resource), else its invoice (the whole account), else Legion's estimate."""
ANOMALY_FACTOR = Decimal(2)
ANOMALY_WINDOW = 7
_ORPHANS: frozenset[Ownership] = frozenset({"labelled", "unlabelled"})


@dataclass(frozen=True, slots=True)
class ReconciliationLine:
    provider: str
    month: dt.datetime
    resource_id: str
    resource_name: str
    cluster: str
    currency: str
    estimate: Decimal | None
    provider_cost: Decimal | None
    provider_source: str
    """``usage``, ``invoice`` or empty (the provider has no figure, e.g. Hetzner)."""
    difference: Decimal | None
    """``provider_cost - estimate`` when both exist."""
    ownership: Ownership
    orphan: bool
    kind: str = ""
    """``server``, an address or traffic billed beside one (``primary_ipv4``, ``traffic``), or a
    public IP of its own (``floating_ip``, ``primary_ip``)."""
    address: str = ""
    """A public IP's address ('' otherwise)."""


@dataclass(frozen=True, slots=True)
class ForecastLine:
    provider: str
    currency: str
    month: dt.datetime
    month_to_date: Decimal
    remaining: Decimal
    forecast: Decimal
    source: str
    """Where the month to date comes from: ``usage``, else ``invoice``, else ``estimate``
    (:data:`SOURCE_PREFERENCE`); one figure only, never their sum."""
    provider_forecast: Decimal | None = None
    """The provider's own month-end forecast, where it publishes one (OVH); None where it publishes
    none (Hetzner has no billing API, Scaleway no forecast): ``forecast`` is Legion's for all."""


@dataclass(frozen=True, slots=True)
class DayCost:
    day: dt.datetime
    provider: str
    currency: str
    cost: Decimal
    trailing_mean: Decimal | None
    """Mean daily list cost of the week before (None: not a full week of data yet)."""
    anomaly: bool


def _in_month(rows: Iterable[LedgerRow], month: dt.datetime) -> list[LedgerRow]:
    first, following = month_start(month), next_month(month)
    return [r for r in rows if first <= r.start < following]


def reconcile(
    rows: Iterable[LedgerRow], listing: Sequence[Listed], month: dt.datetime
) -> list[ReconciliationLine]:
    """One line per provider and resource billed, estimated or listed in ``month`` (sorted)."""
    first = month_start(month)
    estimate: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    figures: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    about: dict[tuple[str, str], LedgerRow] = {}
    row: LedgerRow | None
    for row in _in_month(rows, month):
        if row.kind == "invoice":  # the account's month, not one resource
            continue
        key = (row.provider, row.resource_id)
        about.setdefault(key, row)
        if row.source == "estimate":
            estimate[key] += row.billed_cost
        else:
            figures[(row.provider, row.resource_id, row.source)] += row.billed_cost
    listed = {(x.provider, x.resource_id): x for x in listing}
    keys = sorted(set(about) | set(listed))
    lines: list[ReconciliationLine] = []
    for key in keys:
        provider, resource = key
        own, row = listed.get(key), about.get(key)
        seen, orphan = _judge(listed, own, row, provider, resource)
        source = next((s for s in ("usage", "invoice") if (provider, resource, s) in figures), "")
        figure = figures[(provider, resource, source)] if source else None
        guess = estimate.get(key)
        ownership: Ownership = seen.ownership if seen is not None else "gone"
        lines.append(
            ReconciliationLine(
                provider=provider,
                month=first,
                resource_id=resource,
                resource_name=(seen.name if seen is not None else "") or (row.resource_name if row else ""),
                cluster=(seen.cluster if seen is not None else "") or (row.cluster if row else ""),
                currency=row.currency if row is not None else "",
                estimate=guess,
                provider_cost=figure,
                provider_source=source,
                difference=figure - guess if figure is not None and guess is not None else None,
                ownership=ownership,
                orphan=orphan,
                kind=(own.kind if own is not None else "") or (row.kind if row is not None else ""),
                address=own.address if own is not None else "",
            )
        )
    return lines


def _judge(
    listed: Mapping[tuple[str, str], Listed],
    own: Listed | None,
    row: LedgerRow | None,
    provider: str,
    resource: str,
) -> tuple[Listed | None, bool]:
    """Which listing speaks for a resource's line, and whether the line is a cleanup candidate.

    A server nobody plans is one, labelled or not. An address or traffic billed beside a server
    belongs to it, and so does a public IP assigned to a server (the listing holds only unassigned
    ones): that server's line carries any flag. An unassigned public IP is one only when it carries
    Legion's labels: an address someone else made is shown, never offered for deletion.
    """
    kind = (own.kind if own is not None else "") or (row.kind if row is not None else "")
    if row is not None and row.kind in ADDON_KINDS:
        return listed.get((provider, resource.rpartition("/")[0]), own), False
    if kind in ADDRESS_KINDS:
        if own is not None:
            return own, own.ownership == "labelled"
        host = row.server if row is not None else ""
        return listed.get((provider, host)), False
    return own, own is not None and own.ownership in _ORPHANS


def forecast(
    rows: Iterable[LedgerRow],
    facts: Sequence[ServerFacts],
    now: dt.datetime,
    provider_forecasts: Mapping[str, Decimal] | None = None,
) -> list[ForecastLine]:
    """Month-end forecast per provider and currency for the month of ``now`` (module notes)."""
    month = month_start(now)
    following = next_month(month)
    figures: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for row in _in_month(rows, month):
        figures[(row.provider, row.currency, row.source)] += row.billed_cost
    remaining: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for fact in facts:
        created = fact.created or month
        for rates in (fact.rates, fact.ipv4_rates):
            if rates:
                to_end = period_charge(created, following, rates, month)
                so_far = period_charge(created, now, rates, month)
                remaining[(fact.provider, fact.currency)] += to_end - so_far
    lines: list[ForecastLine] = []
    for key in sorted({(p, c) for p, c, _ in figures} | set(remaining)):
        # usage and invoice are two views of one bill: adding both would count the month twice
        source = next((s for s in SOURCE_PREFERENCE if (*key, s) in figures), "estimate")
        to_date = figures.get((*key, source), Decimal(0))
        ahead = remaining[key]
        lines.append(
            ForecastLine(
                provider=key[0],
                currency=key[1],
                month=month,
                month_to_date=to_date,
                remaining=ahead,
                forecast=to_date + ahead,
                source=source,
                provider_forecast=(provider_forecasts or {}).get(key[0]),
            )
        )
    return lines


def anomalies(rows: Iterable[LedgerRow]) -> list[DayCost]:
    """Daily estimated cost per provider and currency, each day flagged against its trailing mean."""
    days: dict[tuple[str, str], dict[dt.datetime, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    rates: dict[tuple[str, str], dict[dt.datetime, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row.source == "estimate":
            days[(row.provider, row.currency)][row.start] += row.billed_cost
            rates[(row.provider, row.currency)][row.start] += row.list_cost
    out: list[DayCost] = []
    step = dt.timedelta(days=1)
    for (provider, currency), by_day in sorted(days.items()):
        spend = rates[(provider, currency)]
        for day in sorted(by_day):
            window = [spend.get(day - step * k) for k in range(1, ANOMALY_WINDOW + 1)]
            known = [v for v in window if v is not None]
            mean = sum(known, Decimal(0)) / len(known) if len(known) == ANOMALY_WINDOW else None
            flagged = mean is not None and mean > 0 and spend[day] > ANOMALY_FACTOR * mean
            out.append(DayCost(day, provider, currency, by_day[day], mean, flagged))
    return out
