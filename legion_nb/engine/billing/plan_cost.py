"""What the plan costs before it is materialized: monthly cost now, after the plan, and the change.

Like Infracost's past/new/diff, per currency, from the catalogs (the live one read in this session,
else the embedded snapshot), at each server type's monthly price in its location:

* *now* is every tracked server, at the type and location it was created with;
* *planned* is every planned server: a tracked one keeps its tracked type and location unless the
  plan names another, a new one gets the type and location the catalog policy would choose for it
  (the same choice materialize makes).

A server the catalog cannot price (an unknown type, or a policy that finds nothing) is listed under
``unpriced`` instead of silently counting as zero. Pure: no I/O, one immutable state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from legion_nb.engine.resources.node import server_choice
from legion_nb.engine.state.model import LegionState, Role
from legion_nb.errors import LegionError
from legion_nb.providers.records import Catalog
from legion_nb.readonly import same_objects

__all__ = ["CurrencyCost", "PlanCost", "PlanCostCache", "ServerCost", "plan_cost"]


@dataclass(frozen=True, slots=True)
class ServerCost:
    name: str
    provider: str
    currency: str
    now: Decimal | None
    """Monthly price of the tracked server (None: not tracked)."""
    planned: Decimal | None
    """Monthly price of what the plan asks for (None: no longer planned)."""
    server_type: str
    location: str


@dataclass(frozen=True, slots=True)
class CurrencyCost:
    currency: str
    now: Decimal
    planned: Decimal
    change: Decimal


@dataclass(frozen=True, slots=True)
class PlanCost:
    currencies: tuple[CurrencyCost, ...]
    servers: tuple[ServerCost, ...]
    unpriced: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Money as decimal strings next to its currency (the ``cost`` of ``legion --json diff``)."""

        def money(value: Decimal | None) -> str | None:
            return None if value is None else format(value, "f")

        return {
            "period": "month",
            "currencies": [
                {
                    "currency": c.currency,
                    "now": format(c.now, "f"),
                    "planned": format(c.planned, "f"),
                    "change": format(c.change, "f"),
                }
                for c in self.currencies
            ],
            "servers": [
                {
                    "name": s.name,
                    "provider": s.provider,
                    "currency": s.currency,
                    "now": money(s.now),
                    "planned": money(s.planned),
                    "server_type": s.server_type,
                    "location": s.location,
                }
                for s in self.servers
            ],
            "unpriced": list(self.unpriced),
        }


def _monthly(catalog: Catalog, server_type: str, location: str) -> Decimal | None:
    kind = catalog.server_type(server_type)
    price = kind.price_in(location) if kind is not None else None
    return price.monthly if price is not None else None


def _planned_choice(catalog: Catalog, role: Role, server_type: str, location: str) -> tuple[str, str] | None:
    try:
        choice = server_choice(catalog, role, server_type=server_type or None, location=location or None)
    except LegionError:  # the policy finds nothing (or the plan names what the catalog lacks)
        return None
    return choice.server_type.name, choice.location.name


def plan_cost(state: LegionState, catalog_of: Callable[[str], Catalog]) -> PlanCost:
    """The plan's monthly cost (module notes); ``catalog_of(provider)`` gives the catalog to use."""
    catalogs: dict[str, Catalog] = {}
    choices: dict[tuple[str, Role, str, str], tuple[str, str] | None] = {}
    prices: dict[tuple[str, str, str], Decimal | None] = {}

    def catalog(provider: str) -> Catalog:
        if provider not in catalogs:
            catalogs[provider] = catalog_of(provider)
        return catalogs[provider]

    def monthly(provider: str, server_type: str, location: str) -> Decimal | None:
        # A fleet repeats a handful of types and locations; each catalog lookup is a linear search.
        key = (provider, server_type, location)
        if key not in prices:
            prices[key] = _monthly(catalog(provider), server_type, location)
        return prices[key]

    planned = state.scheme.servers()
    tracked = state.tracked.servers
    servers: list[ServerCost] = []
    unpriced: list[str] = []
    for name in sorted(set(planned) | set(tracked)):
        record = tracked.get(name)
        plan = planned.get(name)
        provider = plan[1].provider if plan is not None else record.provider if record is not None else ""
        book = catalog(provider)
        now = monthly(provider, record.server_type, record.location) if record is not None else None
        want: Decimal | None = None
        server_type = record.server_type if record is not None else ""
        location = record.location if record is not None else ""
        if plan is not None:
            wanted = plan[1]
            if record is not None and record.provider == wanted.provider:
                server_type = wanted.server_type or record.server_type
                location = wanted.location or record.location
                want = monthly(provider, server_type, location)
            else:
                key = (provider, wanted.role, wanted.server_type, wanted.location)
                if key not in choices:  # a fleet repeats a handful of choices
                    choices[key] = _planned_choice(book, wanted.role, wanted.server_type, wanted.location)
                chosen = choices[key]
                if chosen is not None:
                    server_type, location = chosen
                    want = monthly(provider, server_type, location)
            if want is None:
                unpriced.append(name)
        if record is not None and now is None:
            unpriced.append(name)
        servers.append(ServerCost(name, provider, book.currency, now, want, server_type, location))
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for s in servers:
        pair = totals[s.currency]
        pair[0] += s.now or 0
        pair[1] += s.planned or 0
    currencies = tuple(
        CurrencyCost(currency, now, planned_total, planned_total - now)
        for currency, (now, planned_total) in sorted(totals.items())
    )
    return PlanCost(currencies, tuple(servers), tuple(sorted(set(unpriced))))


class PlanCostCache:
    """The plan cost of the last state asked for, reused while what it priced is the same: the
    planned clusters, the tracked servers and each catalog it read are the same objects (states
    are immutable, so a commit that leaves the servers alone - a zone, a host, an observation -
    prices nothing again). One owner at a time, like the view that holds it."""

    def __init__(self) -> None:
        self._servers: tuple[object, object] | None = None
        self._catalogs: dict[str, Catalog] = {}
        self._cost: PlanCost | None = None
        self._json: dict[str, Any] = {}

    def cost_json(self, state: LegionState, catalog_of: Callable[[str], Catalog]) -> dict[str, Any]:
        """:func:`plan_cost` of ``state`` as JSON (shared between the states it held for: read it only)."""
        servers = (state.scheme.clusters, state.tracked.servers)
        if (
            self._cost is not None
            and self._servers is not None
            and same_objects(servers, self._servers)
            and all(catalog_of(provider) is book for provider, book in self._catalogs.items())
        ):
            return self._json
        read: dict[str, Catalog] = {}

        def reading(provider: str) -> Catalog:
            read[provider] = catalog_of(provider)
            return read[provider]

        self._cost = plan_cost(state, reading)
        self._json = self._cost.to_json()
        self._servers, self._catalogs = servers, read
        return self._json
