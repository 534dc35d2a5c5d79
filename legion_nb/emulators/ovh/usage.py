"""Public Cloud consumption per instance: ``/cloud/project/{serviceName}/usage/current`` and ``/history``.

Bills (``/me/bill``) say what the account owes; they do not say which instance cost what. OVHcloud
publishes that per project as *usage*: the running month under ``usage/current`` and each closed month
under ``usage/history`` (a list of periods, then one read per period). Hourly instances appear under
``hourlyUsage.instance`` grouped by flavor and region with a ``details`` line per ``instanceId``;
monthly-billed ones under ``monthlyUsage.instance``. The emulator derives usage from the same monthly
lines as the bills, so both always agree.

Unsure: the exact field set of the real ``usage/history`` list items; the emulator returns
``{id, period: {from, to}, lastUpdate}`` objects, which is what clients need to pick a period.

``usage/forecast`` is the running month as it will be at its end if every instance still running
keeps running (hourly ones then pay each hour up to the month's end), plus ``usableCredits``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from legion_nb.emulators.httpkit import isoformat as iso
from legion_nb.emulators.ovh.billing import Bill, Billing
from legion_nb.emulators.ovh.errors import OvhFault, json_response

__all__ = ["Usage"]

_NAMESPACE = uuid.UUID("0d7e1c7a-8a59-4e0b-9c36-5b0f3c4e9a21")


def _usage_id(bill: Bill) -> str:
    return str(uuid.uuid5(_NAMESPACE, bill.period_start.date().isoformat()))


class Usage:
    """Usage periods of the project, one per calendar month with consumption."""

    def __init__(self, billing: Billing) -> None:
        self.billing = billing

    def routes(self, prefix: str) -> list[web.RouteDef]:
        base = f"{prefix}/cloud/project/{{serviceName}}/usage"
        return [
            web.get(f"{base}/current", self.current),
            web.get(f"{base}/forecast", self.forecast),
            web.get(f"{base}/history", self.history),
            web.get(f"{base}/history/{{usageId}}", self.history_detail),
        ]

    def _period(self, bill: Bill, now: datetime) -> dict[str, Any]:
        return {"from": iso(bill.period_start), "to": iso(min(bill.period_end, now))}

    def _detail(self, bill: Bill, now: datetime) -> dict[str, Any]:
        hourly: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        monthly: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for line in bill.lines:
            instance = line.instance
            found = self.billing.catalog.flavor(instance.flavor_id)
            key = (found[1].name if found else instance.flavor_id, instance.region)
            if instance.monthly:
                monthly[key].append(
                    {"instanceId": instance.id, "activation": iso(instance.created), "totalPrice": line.total}
                )
            else:
                quantity = {"unit": "Hour", "value": line.quantity}
                hourly[key].append(
                    {"instanceId": instance.id, "quantity": quantity, "totalPrice": line.total}
                )
        return {
            "id": _usage_id(bill),
            "period": self._period(bill, now),
            "lastUpdate": iso(now),
            "hourlyUsage": {
                "instance": [
                    {
                        "reference": flavor,
                        "region": region,
                        "quantity": {"unit": "Hour", "value": sum(d["quantity"]["value"] for d in details)},
                        "totalPrice": round(sum(d["totalPrice"] for d in details), 2),
                        "details": details,
                    }
                    for (flavor, region), details in sorted(hourly.items())
                ],
                "instanceBandwidth": [],
                "instanceOption": [],
                "snapshot": [],
                "storage": [],
                "volume": [],
            },
            "monthlyUsage": {
                "instance": [
                    {
                        "reference": flavor,
                        "region": region,
                        "totalPrice": round(sum(d["totalPrice"] for d in details), 2),
                        "details": details,
                    }
                    for (flavor, region), details in sorted(monthly.items())
                ],
                "certification": [],
            },
        }

    def _split(self) -> tuple[list[Bill], Bill | None, datetime]:
        """Closed months, the running month (None without consumption) and now."""
        now = self.billing.compute.world.now()
        bills = self.billing.bills()
        closed = [b for b in bills if b.period_end <= now]
        running = next((b for b in bills if b.period_start <= now < b.period_end), None)
        return closed, running, now

    async def current(self, request: web.Request) -> web.Response:
        self.billing.compute.check_project(request)
        _, running, now = self._split()
        if running is None:
            month = Bill("", now, now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now, ())
            return json_response(self._detail(month, now))
        return json_response(self._detail(running, now))

    async def forecast(self, request: web.Request) -> web.Response:
        self.billing.compute.check_project(request)
        now = self.billing.compute.world.now()
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_end = (month + timedelta(days=32)).replace(day=1)
        projected = next((b for b in self.billing.bills(month_end) if b.period_end == month_end), None)
        if projected is None:
            projected = Bill("", now, month, month_end, ())
        body = self._detail(projected, month_end)
        body["lastUpdate"] = iso(now)
        body["usableCredits"] = {"currencyCode": "EUR", "text": "0.00 €", "value": 0.0}
        return json_response(body)

    async def history(self, request: web.Request) -> web.Response:
        self.billing.compute.check_project(request)
        closed, _, now = self._split()
        return json_response(
            [
                {"id": _usage_id(b), "period": self._period(b, now), "lastUpdate": iso(b.period_end)}
                for b in closed
            ]
        )

    async def history_detail(self, request: web.Request) -> web.Response:
        self.billing.compute.check_project(request)
        closed, _, now = self._split()
        wanted = request.match_info["usageId"]
        bill = next((b for b in closed if _usage_id(b) == wanted), None)
        if bill is None:
            raise OvhFault(
                404, "Client::NotFound", f"The requested object (usageId = {wanted}) does not exist"
            )
        return json_response(self._detail(bill, now))
