"""The emulated Billing API: ``/billing/v2beta1/consumptions``.

Scaleway reports what a Project consumed in one billing period (``YYYY-MM``), one line per product and
resource, with the amount as ``Money`` (``units`` + ``nanos``). The emulator bills every Instance from
its creation to its deletion, per started hour at the type's hourly price, capped at the monthly price
(Scaleway's rule for Instances); the sandbox does not model the cheaper power-off state.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import invalid_argument
from legion_nb.emulators.scaleway.store import ScalewayAccount, ServerUsage
from legion_nb.emulators.scaleway.wire import paged_list

__all__ = ["BillingApi", "money"]

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def money(amount: Decimal, currency: str = "EUR") -> dict[str, Any]:
    """Scaleway's ``Money``: whole ``units`` and signed ``nanos`` (10^-9 units)."""
    nanos_total = int((amount * 1_000_000_000).to_integral_value(rounding=ROUND_HALF_UP))
    units, nanos = divmod(abs(nanos_total), 1_000_000_000)
    sign = -1 if nanos_total < 0 else 1
    return {"currency_code": currency, "units": sign * units, "nanos": sign * nanos}


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
        return [web.get("/billing/v2beta1/consumptions", self.list_consumptions)]

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

    async def list_consumptions(self, request: web.Request) -> web.Response:
        query = request.query
        self.account.check_project(query.get("project_id"), query.get("organization_id"))
        period = query.get("billing_period") or self.account.world.now().strftime("%Y-%m")
        start, end = _period_bounds(period)
        lines = [line for u in self.account.usage if (line := self._line(u, start, end)) is not None]
        if (category := query.get("category_name")) and category.lower() != "compute":
            lines = []
        return paged_list(
            request,
            "consumptions",
            lines,
            total_discount_untaxed_value=0.0,
            updated_at=self.account.world.now().isoformat(),
        )
