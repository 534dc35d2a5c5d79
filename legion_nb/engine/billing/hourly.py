"""Hourly billing with a monthly cap: the pure cost rules Legion's estimates follow.

Hetzner publishes no billing API, so what a Hetzner resource costs is prices times lifetime, by its
documented rules: every *started* hour at the hourly price, never more than the monthly price per
calendar month (UTC), billed while the resource exists whether it runs or not. Scaleway bills its
Instances the same way; OVH's hourly instances have no cap (``Rate.monthly`` is None there).

How the rules are made exact:

* Started hours count from the later of the resource's creation and the month's first instant: a
  month boundary cuts the running hour and the new month starts its own first hour, the way the
  providers' monthly invoices split a lifetime.
* A price change applies from the first hour that *starts* at or after it. The running month total
  is capped hour by hour at the monthly price in effect for that hour, so with one price the total
  is ``min(hours * hourly, monthly)`` and a lowered monthly price caps the total from then on.
* A day's charge is what the month total grew by during that day, so the days of a month sum to
  the month exactly; an hour is charged on the day it starts.

Money is :class:`~decimal.Decimal` throughout; nothing here rounds.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from legion_nb.errors import ValidationError

__all__ = [
    "HOUR",
    "Rate",
    "daily_charges",
    "daily_costs",
    "month_start",
    "monthly_charges",
    "next_month",
    "period_charge",
    "started_hours",
    "traffic_charge",
]

HOUR = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)
_ZERO = Decimal(0)
TB_BYTES = 1024**4
"""A terabyte as Hetzner renders ``included_traffic`` (bytes, binary)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A price in effect from ``since`` (aware UTC) until the next rate's ``since``."""

    since: dt.datetime
    hourly: Decimal
    monthly: Decimal | None = None
    """The calendar-month cap; None: no cap (every started hour is paid)."""


def _check(moment: dt.datetime, what: str) -> None:
    if moment.tzinfo is None:
        raise ValidationError(f"{what} {moment.isoformat()} has no time zone; pass an aware UTC time")


def month_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: dt.datetime) -> dt.datetime:
    first = month_start(moment)
    return first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)


def started_hours(start: dt.datetime, end: dt.datetime) -> int:
    """How many hours have started in ``[start, end)`` (0 when ``end <= start``)."""
    if end <= start:
        return 0
    whole, rest = divmod(end - start, HOUR)
    return whole + (1 if rest else 0)


def _sorted_rates(rates: Sequence[Rate]) -> Sequence[Rate]:
    if not rates:
        raise ValidationError("a price needs at least one rate")
    if all(a.since <= b.since for a, b in itertools.pairwise(rates)):
        return rates
    return sorted(rates, key=lambda r: r.since)


def _capped_total(origin: dt.datetime, hours: int, rates: Sequence[Rate], *, cap: bool = True) -> Decimal:
    """The month total after ``hours`` started hours counted from ``origin`` (the month's count);
    ``cap=False`` gives the list total (every hour at its price, no monthly cap)."""
    if hours <= 0:
        return _ZERO
    if len(rates) == 1:
        rate = rates[0]
        total = rate.hourly * hours
        return total if not cap or rate.monthly is None or total < rate.monthly else rate.monthly
    total = _ZERO
    done = 0
    for i, rate in enumerate(rates):
        # hour k starts at origin + k h; this rate covers the hours starting before the next rate.
        upto = hours
        if i + 1 < len(rates):
            upto = min(hours, max(0, started_hours(origin, rates[i + 1].since)))
        if upto <= done:
            continue
        total += rate.hourly * (upto - done)
        if cap and rate.monthly is not None and total > rate.monthly:
            total = rate.monthly
        done = upto
        if done >= hours:
            break
    return total


def period_charge(
    created: dt.datetime, ended: dt.datetime, rates: Sequence[Rate], month: dt.datetime
) -> Decimal:
    """What the resource alive over ``[created, ended)`` costs in the calendar month of ``month``."""
    _check(created, "creation time")
    _check(ended, "end time")
    first = month_start(month)
    origin = max(created, first)
    stop = min(ended, next_month(first))
    return _capped_total(origin, started_hours(origin, stop), _sorted_rates(rates))


def monthly_charges(
    created: dt.datetime, ended: dt.datetime, rates: Sequence[Rate]
) -> list[tuple[dt.datetime, Decimal]]:
    """``(month start, charge)`` for every calendar month the lifetime touches, oldest first."""
    _check(created, "creation time")
    _check(ended, "end time")
    ordered = _sorted_rates(rates)
    out: list[tuple[dt.datetime, Decimal]] = []
    month = month_start(created)
    while month < ended:
        origin = max(created, month)
        stop = min(ended, next_month(month))
        out.append((month, _capped_total(origin, started_hours(origin, stop), ordered)))
        month = next_month(month)
    return out


def daily_charges(
    created: dt.datetime, ended: dt.datetime, rates: Sequence[Rate]
) -> list[tuple[dt.datetime, Decimal]]:
    """``(day start, charge)`` for every UTC day the lifetime touches: what the month total grew by
    that day (see the module notes), so a month's days sum to its :func:`period_charge`."""
    return [(day, billed) for day, billed, _ in daily_costs(created, ended, rates)]


def daily_costs(
    created: dt.datetime, ended: dt.datetime, rates: Sequence[Rate]
) -> list[tuple[dt.datetime, Decimal, Decimal]]:
    """``(day start, charge, list cost)`` per UTC day: the charge as :func:`daily_charges` gives it,
    and the list cost, every hour started that day at its price without the monthly cap (what the
    resource would cost uncapped; a day-to-day rate that does not drop once the cap is reached)."""
    _check(created, "creation time")
    _check(ended, "end time")
    ordered = _sorted_rates(rates)
    out: list[tuple[dt.datetime, Decimal, Decimal]] = []
    day = created.replace(hour=0, minute=0, second=0, microsecond=0)
    origin = max(created, month_start(day))
    before = listed_before = _ZERO
    while day < ended:
        if day.day == 1 and day > created:
            origin, before, listed_before = day, _ZERO, _ZERO
        stop = min(ended, day + _DAY)
        hours = started_hours(origin, stop)
        total = _capped_total(origin, hours, ordered)
        listed = _capped_total(origin, hours, ordered, cap=False)
        out.append((day, total - before, listed - listed_before))
        before, listed_before = total, listed
        day += _DAY
    return out


def traffic_charge(outgoing_bytes: int, included_bytes: int, price_per_tb: Decimal) -> Decimal:
    """Outgoing traffic beyond the included amount, prorated per TB (incoming traffic is free)."""
    if outgoing_bytes < 0 or included_bytes < 0:
        raise ValidationError("traffic counts cannot be negative")
    excess = max(0, outgoing_bytes - included_bytes)
    return price_per_tb * excess / TB_BYTES
