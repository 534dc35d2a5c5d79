"""OVHcloud bills under ``/me/bill``, computed from the lifetimes of the project's instances.

Public Cloud usage is billed per calendar month (UTC here). The emulator issues one bill per month
in which any instance ran: hourly instances pay every started hour of the month (at least one), and
monthly-billed instances pay their monthly price. A month that is still running gets a provisional
bill dated *now* whose amount grows with usage; at the month's end it is dated the first instant of
the next month and no longer changes. That keeps a short sandbox run billable while the shape of the
data (ids listed by ``date.from``/``date.to``, one read per bill, ``priceWithoutTax``) matches the
real API. Each bill has one detail line per instance (``/me/bill/{id}/details``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from legion_nb.emulators.httpkit import isoformat as iso
from legion_nb.emulators.ovh.catalog import Catalog
from legion_nb.emulators.ovh.compute import Compute, Instance
from legion_nb.emulators.ovh.errors import OvhFault, json_response

__all__ = ["Bill", "BillLine", "Billing"]

_VAT = 0.20


@dataclass(frozen=True)
class BillLine:
    detail_id: str
    instance: Instance
    quantity: float
    unit_price: float

    @property
    def total(self) -> float:
        return round(self.quantity * self.unit_price, 2)


@dataclass(frozen=True)
class Bill:
    bill_id: str
    date: datetime
    period_start: datetime
    period_end: datetime
    lines: tuple[BillLine, ...]

    @property
    def total(self) -> float:
        return round(sum(line.total for line in self.lines), 2)


def _price(value: float) -> dict[str, Any]:
    return {"currencyCode": "EUR", "text": f"{value:.2f} €", "value": value}


def _month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(moment: datetime) -> datetime:
    return (_month_start(moment) + timedelta(days=32)).replace(day=1)


def _parse_bound(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise OvhFault(400, "Client::BadRequest", f"Invalid parameter {name}: expected a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Billing:
    """Bills derived on every read from :attr:`Compute.ledger` (nothing to keep in sync)."""

    def __init__(self, compute: Compute, catalog: Catalog) -> None:
        self.compute = compute
        self.catalog = catalog

    def routes(self, prefix: str) -> list[web.RouteDef]:
        bill = f"{prefix}/me/bill/{{billId}}"
        return [
            web.get(f"{prefix}/me/bill", self.list_bills),
            web.get(bill, self.get_bill),
            web.get(f"{bill}/details", self.list_details),
            web.get(f"{bill}/details/{{billDetailId}}", self.get_detail),
        ]

    def bills(self, now: datetime | None = None) -> list[Bill]:
        """Every bill up to ``now`` (default: the world's clock; a later instant projects the
        instances still running to it, which is what the usage forecast needs)."""
        now = now or self.compute.world.now()
        ledger = self.compute.ledger
        if not ledger:
            return []
        month = _month_start(min(i.created for i in ledger))
        bills: list[Bill] = []
        while month <= now:
            end = _next_month(month)
            lines = tuple(
                line for line in (self._line(month, end, now, i, n) for n, i in enumerate(ledger, 1)) if line
            )
            if lines:
                bill_id = f"FR{month.year % 100:02d}{month.month:02d}{len(bills) + 1:04d}"
                bills.append(Bill(bill_id, min(end, now), month, end, lines))
            month = end
        return bills

    def _line(
        self, start: datetime, end: datetime, now: datetime, instance: Instance, n: int
    ) -> BillLine | None:
        used_from = max(start, instance.created)
        used_to = min(end, instance.deleted or now, now)
        if used_to <= used_from:
            return None
        found = self.catalog.flavor(instance.flavor_id)
        if found is None:
            return None
        flavor = found[1]
        if instance.monthly:
            return BillLine(f"{n}", instance, 1.0, flavor.monthly_eur)
        hours = max(1, math.ceil((used_to - used_from).total_seconds() / 3600))
        return BillLine(f"{n}", instance, float(hours), flavor.hourly_eur)

    def _bill(self, request: web.Request) -> Bill:
        bill_id = request.match_info["billId"]
        bill = next((b for b in self.bills() if b.bill_id == bill_id), None)
        if bill is None:
            raise OvhFault(
                404, "Client::NotFound", f"The requested object (billId = {bill_id}) does not exist"
            )
        return bill

    async def list_bills(self, request: web.Request) -> web.Response:
        low = _parse_bound(request.query.get("date.from"), "date.from")
        high = _parse_bound(request.query.get("date.to"), "date.to")
        ids = [
            b.bill_id
            for b in self.bills()
            if (low is None or b.date >= low) and (high is None or b.date <= high)
        ]
        return json_response(ids)

    async def get_bill(self, request: web.Request) -> web.Response:
        bill = self._bill(request)
        tax = round(bill.total * _VAT, 2)
        return json_response(
            {
                "billId": bill.bill_id,
                "date": iso(bill.date),
                "orderId": int(bill.bill_id[2:]),
                "category": "autorenew",
                "password": "",
                # Real bills link to PDFs on OVHcloud's site; the sandbox hands out no outside address.
                "pdfUrl": "",
                "url": "",
                "priceWithoutTax": _price(bill.total),
                "tax": _price(tax),
                "priceWithTax": _price(round(bill.total + tax, 2)),
            }
        )

    async def list_details(self, request: web.Request) -> web.Response:
        return json_response([line.detail_id for line in self._bill(request).lines])

    async def get_detail(self, request: web.Request) -> web.Response:
        bill = self._bill(request)
        wanted = request.match_info["billDetailId"]
        line = next((x for x in bill.lines if x.detail_id == wanted), None)
        if line is None:
            raise OvhFault(
                404, "Client::NotFound", f"The requested object (billDetailId = {wanted}) does not exist"
            )
        instance = line.instance
        found = self.catalog.flavor(instance.flavor_id)
        flavor = found[1].name if found else instance.flavor_id
        return json_response(
            {
                "billDetailId": line.detail_id,
                "domain": self.compute.service_name,
                "description": f"{flavor} instance {instance.name} ({instance.id}) in {instance.region}",
                "periodStart": bill.period_start.date().isoformat(),
                "periodEnd": (bill.period_end - timedelta(days=1)).date().isoformat(),
                "quantity": str(line.quantity),
                "unitPrice": _price(line.unit_price),
                "totalPrice": _price(line.total),
            }
        )
