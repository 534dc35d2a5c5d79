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
from legion_nb.engine.state.model import LegionState, PlannedServer, Role, TrackedServer
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


class _Pricer:
    """Prices servers from the catalogs; a fleet repeats a handful of types, locations and policy
    choices, and every catalog lookup is a linear search, so each is looked up once per call."""

    def __init__(self, catalog_of: Callable[[str], Catalog]) -> None:
        self._catalog_of = catalog_of
        self._catalogs: dict[str, Catalog] = {}
        self._choices: dict[tuple[str, Role, str, str], tuple[str, str] | None] = {}
        self._prices: dict[tuple[str, str, str], Decimal | None] = {}

    def catalog(self, provider: str) -> Catalog:
        if provider not in self._catalogs:
            self._catalogs[provider] = self._catalog_of(provider)
        return self._catalogs[provider]

    def monthly(self, provider: str, server_type: str, location: str) -> Decimal | None:
        key = (provider, server_type, location)
        if key not in self._prices:
            self._prices[key] = _monthly(self.catalog(provider), server_type, location)
        return self._prices[key]

    def choice(self, provider: str, wanted: PlannedServer) -> tuple[str, str] | None:
        key = (provider, wanted.role, wanted.server_type, wanted.location)
        if key not in self._choices:
            book = self.catalog(provider)
            self._choices[key] = _planned_choice(book, wanted.role, wanted.server_type, wanted.location)
        return self._choices[key]

    def price(
        self, name: str, provider: str, wanted: PlannedServer | None, record: TrackedServer | None
    ) -> tuple[ServerCost, bool]:
        """The server's cost, and whether the catalog left a price it needs out."""
        now = self.monthly(provider, record.server_type, record.location) if record is not None else None
        want: Decimal | None = None
        server_type = record.server_type if record is not None else ""
        location = record.location if record is not None else ""
        if wanted is not None:
            if record is not None and record.provider == wanted.provider:
                server_type = wanted.server_type or record.server_type
                location = wanted.location or record.location
                want = self.monthly(provider, server_type, location)
            else:
                chosen = self.choice(provider, wanted)
                if chosen is not None:
                    server_type, location = chosen
                    want = self.monthly(provider, server_type, location)
        unpriced = (wanted is not None and want is None) or (record is not None and now is None)
        currency = self.catalog(provider).currency
        return ServerCost(name, provider, currency, now, want, server_type, location), unpriced


_Kept = dict[str, tuple[tuple[object, ...], ServerCost, bool]]
"""A server's name: what its price was computed from, the price, and whether it is unpriced."""


def plan_cost(
    state: LegionState, catalog_of: Callable[[str], Catalog], *, kept: _Kept | None = None
) -> PlanCost:
    """The plan's monthly cost (module notes); ``catalog_of(provider)`` gives the catalog to use.
    ``kept`` (the prices of an earlier call, replaced by this call's) lends the price of every
    server whose planned and tracked records and catalog are the same objects as then."""
    pricer = _Pricer(catalog_of)
    planned = state.scheme.servers()
    tracked = state.tracked.servers
    earlier = dict(kept) if kept is not None else {}
    now_kept: _Kept = {}
    servers: list[ServerCost] = []
    unpriced: list[str] = []
    for name in sorted(set(planned) | set(tracked)):
        record = tracked.get(name)
        plan = planned.get(name)
        wanted = plan[1] if plan is not None else None
        provider = wanted.provider if wanted is not None else record.provider if record is not None else ""
        inputs = (wanted, record, pricer.catalog(provider))
        hit = earlier.get(name)
        if hit is not None and same_objects(hit[0], inputs):
            cost, flagged = hit[1], hit[2]
        else:
            cost, flagged = pricer.price(name, provider, wanted, record)
        now_kept[name] = (inputs, cost, flagged)
        if flagged:
            unpriced.append(name)
        servers.append(cost)
    if kept is not None:
        kept.clear()
        kept.update(now_kept)
    return PlanCost(_currencies(servers), tuple(servers), tuple(sorted(unpriced)))


def _currencies(servers: list[ServerCost]) -> tuple[CurrencyCost, ...]:
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for s in servers:
        pair = totals[s.currency]
        pair[0] += s.now or 0
        pair[1] += s.planned or 0
    return tuple(
        CurrencyCost(currency, now, planned_total, planned_total - now)
        for currency, (now, planned_total) in sorted(totals.items())
    )


class PlanCostCache:
    """The plan cost of the last state asked for, reused while what it priced is the same: the
    planned clusters, the tracked servers and each catalog it read are the same objects (states
    are immutable, so a commit that leaves the servers alone - a zone, a host, an observation -
    prices nothing again), and else each server's price while its own records and catalog are.
    One owner at a time, like the view that holds it."""

    def __init__(self) -> None:
        self._servers: tuple[object, object] | None = None
        self._catalogs: dict[str, Catalog] = {}
        self._cost: PlanCost | None = None
        self._json: dict[str, Any] = {}
        self._kept: _Kept = {}

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

        self._cost = plan_cost(state, reading, kept=self._kept)
        self._json = self._cost.to_json()
        self._servers, self._catalogs = servers, read
        return self._json
