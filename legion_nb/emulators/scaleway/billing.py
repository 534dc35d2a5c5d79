"""The emulated Billing API: ``/billing/v2beta1/consumptions`` and ``/billing/v2beta1/invoices``.

Scaleway reports what a Project consumed in one billing period (``YYYY-MM``), one line per product and
resource, with the amount as ``Money`` (``units`` + ``nanos``). The emulator bills every Instance from
its creation to its deletion, per started hour at the type's hourly price, capped at the monthly price
(Scaleway's rule for Instances); the sandbox does not model the cheaper power-off state.

Invoices: one ``periodic`` invoice per billing period with consumption, totalling its lines plus 20 %
VAT. The current month's is a ``draft`` (no number, not issued); a closed month's is ``issued`` on the
2nd of the next month, due 14 days later, numbered in period order. Filters: ``invoice_type``,
``billing_period_start_after`` / ``_before``; ``order_by`` as the SDK names it (default
``invoice_number_desc``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import invalid_argument, json_response, not_found
from legion_nb.emulators.scaleway.store import ScalewayAccount, ServerUsage
from legion_nb.emulators.scaleway.wire import paged_list

__all__ = ["BillingApi", "money"]

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_VAT = Decimal("0.20")
_INVOICE_TYPES = ("periodic", "purchase", "credit_note")
_INVOICE_ORDER: dict[str, Callable[[dict[str, Any]], Any]] = {
    "invoice_number": lambda i: i["number"],
    "start_date": lambda i: i["start_date"],
    "issued_date": lambda i: i["issued_date"] or "",
    "due_date": lambda i: i["due_date"] or "",
    "total_untaxed": lambda i: _amount(i["total_untaxed"]),
    "total_taxed": lambda i: _amount(i["total_taxed"]),
    "invoice_type": lambda i: i["type"],
}


def money(amount: Decimal, currency: str = "EUR") -> dict[str, Any]:
    """Scaleway's ``Money``: whole ``units`` and signed ``nanos`` (10^-9 units)."""
    nanos_total = int((amount * 1_000_000_000).to_integral_value(rounding=ROUND_HALF_UP))
    units, nanos = divmod(abs(nanos_total), 1_000_000_000)
    sign = -1 if nanos_total < 0 else 1
    return {"currency_code": currency, "units": sign * units, "nanos": sign * nanos}


def _amount(value: dict[str, Any]) -> Decimal:
    return Decimal(value["units"]) + Decimal(value["nanos"]) / 1_000_000_000


def _instant(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_argument(name, f"{name} {raw!r} must be an RFC 3339 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _period_bounds(period: str) -> tuple[datetime, datetime]:
    match = _PERIOD.match(period)
    if match is None:
        raise invalid_argument("billing_period", f"billing_period {period!r} must look like 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


class BillingApi:
    def __init__(self, account: ScalewayAccount) -> None:
        self.account = account

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/billing/v2beta1/consumptions", self.list_consumptions),
            web.get("/billing/v2beta1/invoices", self.list_invoices),
            web.get("/billing/v2beta1/invoices/{invoice_id}", self.get_invoice),
        ]

    def _line(self, usage: ServerUsage, start: datetime, end: datetime) -> dict[str, Any] | None:
        now = self.account.world.now()
        first = max(usage.started, start)
        last = min(usage.ended or now, end, now)
        if last <= first:
            return None
        spec = next(t for t in catalog.SERVER_TYPES if t.name == usage.commercial_type)
        hours = math.ceil((last - first).total_seconds() / 3600)
        amount = min(Decimal(str(spec.hourly)) * hours, Decimal(str(spec.monthly)))
        return {
            "value": money(amount),
            "product_name": f"Instances - {usage.commercial_type} - {usage.zone}",
            "resource_name": usage.name,
            "sku": f"/compute/{usage.commercial_type.lower().replace('-', '_')}/run_{usage.zone}",
            "project_id": self.account.project_id,
            "category_name": "Compute",
            "unit": "hour",
            "billed_quantity": str(hours),
            "consumer_id": usage.server_id,
            "project_name": "default",
            "organization_name": "Sandbox",
        }

    def _lines(self, period: str) -> list[dict[str, Any]]:
        start, end = _period_bounds(period)
        return [line for u in self.account.usage if (line := self._line(u, start, end)) is not None]

    def _invoices(self) -> list[dict[str, Any]]:
        """Every invoice so far, oldest period first (derived from usage, so it is never stale)."""
        now = self.account.world.now()
        current = now.strftime("%Y-%m")
        periods = sorted({u.started.strftime("%Y-%m") for u in self.account.usage})
        invoices: list[dict[str, Any]] = []
        if periods:
            year, month = map(int, periods[0].split("-"))
            while f"{year:04d}-{month:02d}" <= current:
                period = f"{year:04d}-{month:02d}"
                lines = self._lines(period)
                if lines:
                    invoices.append(self._invoice(period, lines, current, len(invoices) + 1))
                year, month = year + (month == 12), month % 12 + 1
        return invoices

    def _invoice(self, period: str, lines: list[dict[str, Any]], current: str, number: int) -> dict[str, Any]:
        start, end = _period_bounds(period)
        untaxed = sum((_amount(line["value"]) for line in lines), Decimal(0))
        tax = (untaxed * _VAT).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        draft = period == current
        issued = end + timedelta(days=1)
        return {
            "id": str(uuid.uuid5(uuid.UUID(self.account.project_id), f"invoice/{period}")),
            "organization_id": self.account.organization_id,
            "organization_name": "Sandbox",
            "start_date": start.isoformat(),
            "stop_date": end.isoformat(),
            "billing_period": start.isoformat(),
            "issued_date": None if draft else issued.isoformat(),
            "due_date": None if draft else (issued + timedelta(days=14)).isoformat(),
            "total_untaxed": money(untaxed),
            "total_taxed": money(untaxed + tax),
            "total_tax": money(tax),
            "total_discount": money(Decimal(0)),
            "total_undiscount": money(untaxed),
            "type": "periodic",
            "state": "draft" if draft else "issued",
            "number": 0 if draft else number,
            "seller_name": "Scaleway",
        }

    async def list_invoices(self, request: web.Request) -> web.Response:
        query = request.query
        self.account.check_project(None, query.get("organization_id"))
        invoices = self._invoices()
        kind = query.get("invoice_type")
        if kind and kind not in _INVOICE_TYPES:
            raise invalid_argument("invoice_type", f"invoice_type must be one of {', '.join(_INVOICE_TYPES)}")
        if kind:
            invoices = [i for i in invoices if i["type"] == kind]
        after = _instant(request, "billing_period_start_after")
        before = _instant(request, "billing_period_start_before")
        if after is not None:
            invoices = [i for i in invoices if datetime.fromisoformat(i["start_date"]) >= after]
        if before is not None:
            invoices = [i for i in invoices if datetime.fromisoformat(i["start_date"]) <= before]
        order = query.get("order_by") or "invoice_number_desc"
        field, _, direction = order.rpartition("_")
        if field not in _INVOICE_ORDER or direction not in ("asc", "desc"):
            raise invalid_argument("order_by", f"order_by {order!r} is not a known ordering")
        invoices.sort(key=_INVOICE_ORDER[field], reverse=direction == "desc")
        return paged_list(request, "invoices", invoices)

    async def get_invoice(self, request: web.Request) -> web.Response:
        self.account.check_project(None, request.query.get("organization_id"))
        invoice_id = request.match_info["invoice_id"]
        for invoice in self._invoices():
            if invoice["id"] == invoice_id:
                return json_response(invoice)
        raise not_found("invoice", invoice_id)

    async def list_consumptions(self, request: web.Request) -> web.Response:
        query = request.query
        self.account.check_project(query.get("project_id"), query.get("organization_id"))
        period = query.get("billing_period") or self.account.world.now().strftime("%Y-%m")
        lines = self._lines(period)
        if (category := query.get("category_name")) and category.lower() != "compute":
            lines = []
        return paged_list(
            request,
            "consumptions",
            lines,
            total_discount_untaxed_value=0.0,
            updated_at=self.account.world.now().isoformat(),
        )
