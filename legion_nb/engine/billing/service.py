"""The billing service: collects the ledger through the provider broker and answers from its store.

Why a service of its own: collection reads every provider (servers, live catalog prices, usage
lines) through the one broker, so it shares the providers' request budgets with the actors, and it
writes a SQLite store that must be open only while the state is unlocked. Its constructor names
what it uses (ports): provider access, the current state, the log directory. A collection pass:

1. per provider with credentials: list servers and public IPs (floating and primary: addresses the
   provider prices apart are billed as resources of their own) and read the live catalog (Legion's
   estimate needs the prices the provider charges now), then the provider's usage lines, invoices
   and forecast for the window where it has a billing API (a provider without one, like Hetzner,
   gets estimates only);
2. classify each listed server and public IP against the plan
   (:func:`~legion_nb.engine.billing.ledger.ownership_of`, ``address_facts``);
3. write estimate and usage rows and the listing in one go each; closed periods keep their rows.

A provider that fails is reported and skipped (its earlier rows stay), never fatal to the pass.

The session registers :meth:`BillingService.observe` as the observation scheduler's ``billing``
concern (hourly, provider-heavy: its calls are background calls within observation's share of each
provider's budget, and it waits while an apply runs), so the ledger stays current without anyone
asking for a bill.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from legion_nb.engine.billing.hourly import month_start, next_month
from legion_nb.engine.billing.ledger import (
    AddressFacts,
    LedgerRow,
    ServerFacts,
    address_facts,
    address_rows,
    estimate_rows,
    invoice_rows,
    server_facts,
    usage_rows,
)
from legion_nb.engine.billing.ledger_store import LedgerStore, Listed
from legion_nb.engine.billing.reconcile import (
    DayCost,
    ForecastLine,
    ReconciliationLine,
    anomalies,
    forecast,
    reconcile,
)
from legion_nb.engine.state.model import LegionState, StoredCredentials
from legion_nb.errors import LegionError, LockedError, OperationError
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.contract import Capability
from legion_nb.providers.records import BillingPeriod, Catalog, PublicIp
from legion_nb.providers.registry import PROVIDERS

__all__ = ["BillingProviders", "BillingService", "CollectReport"]

log = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 62
"""How far back a collection pass reaches when not told: this month and the last one, at least."""


class BillingProviders(Protocol):
    """What collection needs of the provider service."""

    @property
    def broker(self) -> ProviderBroker: ...

    def has_credentials(self, provider: str) -> bool: ...

    async def fetch_catalog(self, provider: str) -> Catalog: ...


@dataclass(frozen=True, slots=True)
class CollectReport:
    since: dt.datetime
    until: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _account(credentials: StoredCredentials | None) -> str:
    """The billing account the credentials name: Scaleway's project id or OVH's service name (both
    identifiers, not secrets; nothing else of the credentials is read), else ''."""
    values = credentials.secrets if credentials is not None else {}
    return str(values.get("project_id") or values.get("service_name") or "")


def _listed(fact: ServerFacts | AddressFacts, kind: str, address: str) -> Listed:
    """What the reconciliation reads of one resource listed now."""
    return Listed(
        fact.provider, fact.resource_id, fact.name, fact.ownership, fact.cluster, fact.role, fact.sku,
        kind=kind, address=address,
    )  # fmt: skip


class BillingService:
    """Collects and answers the billing ledger while the state is unlocked (module notes)."""

    def __init__(
        self,
        providers: BillingProviders,
        state: Callable[[], LegionState],
        log_dir: Path,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._providers = providers
        self._state = state
        self._log_dir = log_dir
        self._clock = clock
        self._store: LedgerStore | None = None
        self._facts: dict[str, list[ServerFacts]] = {}
        self._forecasts: dict[str, Decimal] = {}
        self._lock = asyncio.Lock()

    # -- session service ---------------------------------------------------------------------

    async def __aenter__(self) -> BillingService:
        self._store = await asyncio.to_thread(LedgerStore.in_dir, self._log_dir)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the ledger store (idempotent); it opens again with the next session."""
        store, self._store = self._store, None
        self._facts.clear()
        self._forecasts.clear()
        if store is not None:
            await asyncio.to_thread(store.close)

    @property
    def store(self) -> LedgerStore:
        if self._store is None:
            raise LockedError("the billing ledger is closed: unlock the state first")
        return self._store

    # -- collection ------------------------------------------------------------------------

    async def collect(self, days: int = DEFAULT_WINDOW_DAYS) -> CollectReport:
        """One pass over every provider with credentials (module notes)."""
        store = self.store
        until = self._clock()
        since = month_start(until - dt.timedelta(days=days))
        report = CollectReport(since, until)
        async with self._lock:
            for provider in PROVIDERS:
                if not self._providers.has_credentials(provider):
                    continue
                try:
                    rows, listed = await self._collect_one(provider, since, until)
                except LegionError as exc:  # one provider down must not hide the others' costs
                    report.errors[provider] = exc.message
                    log.warning("billing collection for %s failed: %s", provider, exc.message)
                    continue
                await asyncio.to_thread(store.upsert, rows)
                await asyncio.to_thread(store.replace_listing, provider, listed)
                report.rows[provider] = len(rows)
        return report

    async def observe(self) -> int:
        """The ``billing`` concern: one collection pass; the ledger rows it wrote.

        As with catalogs, a provider failing while another collected is logged and the pass counts
        as done (the failing provider's earlier rows stay); when every provider failed, the pass
        fails and the scheduler records why.
        """
        report = await self.collect()
        if report.errors and not report.rows:
            named = "; ".join(f"{provider}: {message}" for provider, message in sorted(report.errors.items()))
            raise OperationError(f"billing collection failed - {named}")
        return sum(report.rows.values())

    async def _collect_one(
        self, provider: str, since: dt.datetime, until: dt.datetime
    ) -> tuple[list[LedgerRow], list[Listed]]:
        broker = self._providers.broker
        state = self._state()
        account = _account(state.credentials.get(provider))
        servers = await broker.read(provider, "list servers for billing", lambda a: a.list_servers())
        catalog = await self._providers.fetch_catalog(provider)
        ips: list[PublicIp] = []
        if Capability.FLOATING_IP in broker.adapter(provider).capabilities:
            ips = await broker.read(provider, "list public IPs for billing", lambda a: a.list_public_ips())
        apart = frozenset(
            ip.server_id for ip in ips if ip.kind == "primary" and ip.server_id and ip.ip_type == "ipv4"
        )
        facts = server_facts(state, provider, account, servers, catalog, billed_apart=apart)
        addresses = address_facts(state, provider, account, servers=servers, ips=ips, catalog=catalog)
        self._facts[provider] = facts
        rows = await asyncio.to_thread(estimate_rows, facts, since, until)
        rows += address_rows(addresses, since, until)
        if Capability.BILLING in broker.adapter(provider).capabilities:
            period = BillingPeriod(since.date(), until.date())
            entries = await broker.read(provider, "read billing", lambda a: a.list_billing(period))
            known = {f.resource_id: f for f in facts}
            rows += usage_rows(provider, account, entries, known, until=until)
            invoices = await broker.read(provider, "read invoices", lambda a: a.list_invoices(period))
            rows += invoice_rows(provider, account, invoices, until)
            ahead = await broker.read(provider, "read billing forecast", lambda a: a.forecast_billing())
            if ahead:
                self._forecasts[provider] = sum((e.amount for e in ahead), Decimal(0))
        listed = [_listed(f, "server", "") for f in facts]
        # an assigned address's server stands for it in the reconciliation
        listed += [_listed(x, x.kind, x.address) for x in addresses if not x.server]
        return rows, listed

    # -- answers ---------------------------------------------------------------------------

    async def rows(self, month: dt.datetime | None = None) -> list[LedgerRow]:
        """The ledger for the calendar month of ``month`` (every month when None)."""
        since = month_start(month) if month is not None else None
        until = next_month(month) if month is not None else None
        return await asyncio.to_thread(self.store.rows, since, until)

    async def reconciliation(self, month: dt.datetime) -> list[ReconciliationLine]:
        rows = await self.rows(month)
        listing = await asyncio.to_thread(self.store.listing)
        return reconcile(rows, listing, month)

    async def forecast(self) -> list[ForecastLine]:
        """This month's end from the stored rows and the servers listed at the last collection,
        next to each provider's own forecast where it published one."""
        now = self._clock()
        rows = await self.rows(now)
        return forecast(rows, self.facts(), now, self._forecasts)

    async def daily(self, month: dt.datetime | None = None) -> list[DayCost]:
        return anomalies(await self.rows(month))

    def facts(self) -> Sequence[ServerFacts]:
        return [f for group in self._facts.values() for f in group]
