"""The hourly-with-monthly-cap rules against a reference that walks the lifetime hour by hour."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion_nb.engine.billing.hourly import (
    TB_BYTES,
    Rate,
    daily_charges,
    daily_costs,
    monthly_charges,
    period_charge,
    started_hours,
    traffic_charge,
)
from legion_nb.errors import ValidationError

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
HOURLY = Decimal("0.0080")
MONTHLY = Decimal("4.5100")


def _reference(created: dt.datetime, ended: dt.datetime, rates: list[Rate]) -> dict[dt.datetime, Decimal]:
    """Hour by hour: each month restarts at its first instant; each started hour pays the rate in
    effect when it starts, and the month's total never exceeds that hour's monthly price."""
    rates = sorted(rates, key=lambda r: r.since)
    totals: dict[dt.datetime, Decimal] = {}
    month = created.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month < ended:
        following = (month + dt.timedelta(days=32)).replace(day=1)
        cursor = max(created, month)
        stop = min(ended, following)
        total = Decimal(0)
        while cursor < stop:
            rate = rates[0]
            for candidate in rates:
                if candidate.since <= cursor:
                    rate = candidate
            total += rate.hourly
            if rate.monthly is not None:
                total = min(total, rate.monthly)
            cursor += dt.timedelta(hours=1)
        totals[month] = total
        month = following
    return totals


minutes = st.integers(min_value=0, max_value=75 * 24 * 60)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("2"), places=4)


@st.composite
def rate_lists(draw: st.DrawFn) -> list[Rate]:
    count = draw(st.integers(min_value=1, max_value=3))
    out = []
    for _ in range(count):
        since = T0 + dt.timedelta(minutes=draw(minutes))
        hourly = draw(prices)
        capped = draw(st.booleans())
        monthly = hourly * draw(st.integers(min_value=1, max_value=800)) if capped else None
        out.append(Rate(since, hourly, monthly))
    return out


@settings(max_examples=150, deadline=None)
@given(start=minutes, length=st.integers(min_value=0, max_value=70 * 24 * 60), rates=rate_lists())
def test_monthly_charges_match_the_hour_by_hour_reference(start: int, length: int, rates: list[Rate]) -> None:
    created = T0 + dt.timedelta(minutes=start)
    ended = created + dt.timedelta(minutes=length)
    expected = _reference(created, ended, rates)
    assert dict(monthly_charges(created, ended, rates)) == expected
    for month, total in expected.items():
        assert period_charge(created, ended, rates, month) == total


@settings(max_examples=100, deadline=None)
@given(start=minutes, length=st.integers(min_value=1, max_value=70 * 24 * 60), rates=rate_lists())
def test_days_of_a_month_sum_to_the_month(start: int, length: int, rates: list[Rate]) -> None:
    created = T0 + dt.timedelta(minutes=start, seconds=7)
    ended = created + dt.timedelta(minutes=length)
    per_month: dict[dt.datetime, Decimal] = {}
    for day, amount in daily_charges(created, ended, rates):
        assert amount >= 0 or len(rates) > 1  # a lowered cap may claw back, one price never does
        key = day.replace(day=1)
        per_month[key] = per_month.get(key, Decimal(0)) + amount
    assert per_month == dict(monthly_charges(created, ended, rates))


def test_thirty_minutes_cost_one_started_hour() -> None:
    created = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    rates = [Rate(T0, HOURLY, MONTHLY)]
    assert period_charge(created, created + dt.timedelta(minutes=30), rates, created) == HOURLY
    assert started_hours(created, created + dt.timedelta(minutes=60)) == 1
    assert started_hours(created, created + dt.timedelta(minutes=61)) == 2


def test_a_whole_month_costs_the_monthly_cap() -> None:
    rates = [Rate(T0, HOURLY, MONTHLY)]
    created = dt.datetime(2026, 2, 20, tzinfo=UTC)
    months = dict(monthly_charges(created, dt.datetime(2026, 4, 2, tzinfo=UTC), rates))
    assert months[dt.datetime(2026, 3, 1, tzinfo=UTC)] == MONTHLY
    assert months[dt.datetime(2026, 2, 1, tzinfo=UTC)] == HOURLY * 9 * 24  # 20th to 28th
    assert months[dt.datetime(2026, 4, 1, tzinfo=UTC)] == HOURLY * 24


def test_deletion_mid_hour_pays_the_started_hour_and_month_boundaries_restart_the_count() -> None:
    rates = [Rate(T0, HOURLY, MONTHLY)]
    created = dt.datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    ended = dt.datetime(2026, 2, 1, 0, 10, tzinfo=UTC)
    assert monthly_charges(created, ended, rates) == [
        (dt.datetime(2026, 1, 1, tzinfo=UTC), HOURLY),
        (dt.datetime(2026, 2, 1, tzinfo=UTC), HOURLY),
    ]


def test_a_price_change_applies_from_the_next_hour_that_starts() -> None:
    created = dt.datetime(2026, 5, 1, tzinfo=UTC)
    rise = Rate(created + dt.timedelta(minutes=90), Decimal("1"), None)
    total = period_charge(created, created + dt.timedelta(hours=3), [Rate(T0, HOURLY, None), rise], created)
    assert total == HOURLY * 2 + Decimal("1")


def test_traffic_is_billed_only_beyond_the_included_amount() -> None:
    price = Decimal("1.00")
    assert traffic_charge(5 * TB_BYTES, 20 * TB_BYTES, price) == 0
    assert traffic_charge(21 * TB_BYTES + TB_BYTES // 2, 20 * TB_BYTES, price) == Decimal("1.5")


def test_bad_input_is_refused_with_a_named_error() -> None:
    naive = dt.datetime(2026, 1, 1)
    with pytest.raises(ValidationError, match="no time zone"):
        period_charge(naive, T0, [Rate(T0, HOURLY)], T0)
    with pytest.raises(ValidationError, match="at least one rate"):
        monthly_charges(T0, T0 + dt.timedelta(hours=1), [])
    with pytest.raises(ValidationError, match="negative"):
        traffic_charge(-1, 0, Decimal(1))


@settings(max_examples=60, deadline=None)
@given(start=minutes, length=st.integers(min_value=1, max_value=70 * 24 * 60), rates=rate_lists())
def test_list_costs_are_every_started_hour_at_its_price_without_the_cap(
    start: int, length: int, rates: list[Rate]
) -> None:
    created = T0 + dt.timedelta(minutes=start)
    ended = created + dt.timedelta(minutes=length)
    uncapped = [Rate(r.since, r.hourly, None) for r in rates]
    per_month: dict[dt.datetime, Decimal] = {}
    for day, _billed, listed in daily_costs(created, ended, rates):
        assert listed >= 0
        key = day.replace(day=1)
        per_month[key] = per_month.get(key, Decimal(0)) + listed
    assert per_month == _reference(created, ended, uncapped)
