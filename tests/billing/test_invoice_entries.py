"""Provider invoices as billing entries: the month each one bills, its untaxed total."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from legion_nb.providers.ovh.convert import bill_entry
from legion_nb.providers.scaleway.convert import invoice_entry


def test_an_ovh_bill_dated_as_a_month_closes_bills_the_month_before() -> None:
    closed = bill_entry(
        {"billId": "FR1", "date": "2026-11-01T00:00:00+00:00", "priceWithoutTax": {"value": 12.3}}
    )
    running = bill_entry(
        {"billId": "FR2", "date": "2026-11-05T10:00:00+00:00", "priceWithoutTax": {"value": 1.5}}
    )
    assert closed is not None and running is not None
    assert (closed.period_start, closed.period_end, closed.amount) == (
        dt.date(2026, 10, 1),
        dt.date(2026, 11, 1),
        Decimal("12.3"),
    )
    assert (running.period_start, running.period_end) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    assert bill_entry({"billId": "FR3"}) is None


def test_a_scaleway_invoice_covers_its_billing_month_untaxed() -> None:
    entry = invoice_entry(
        {
            "id": "inv-1",
            "billing_period": "2026-10-01T00:00:00+00:00",
            "number": 7,
            "state": "issued",
            "total_untaxed": {"currency_code": "EUR", "units": 12, "nanos": 340000000},
        }
    )
    assert entry is not None
    assert (entry.period_start, entry.period_end, entry.amount, entry.resource_name) == (
        dt.date(2026, 10, 1),
        dt.date(2026, 11, 1),
        Decimal("12.34"),
        "invoice 7",
    )
    assert invoice_entry({"id": "x", "billing_period": "soon"}) is None
