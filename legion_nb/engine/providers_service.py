"""The engine's provider service: adapters from stored credentials, one broker, durable resilience.

Why one service: every provider call of the engine (actors, refresh, server commands) must share one
:class:`~legion_nb.providers.broker.ProviderBroker`, because a provider's request budget is per
project, not per caller. This service owns that broker while the state is unlocked:

* at unlock it builds an adapter for every provider with stored credentials (through
  :func:`legion_nb.providers.registry.open_adapter`, so httpx stays inside the provider layer) and
  registers it on the broker. Later changes to the stored credentials reach the broker inside the
  state's commit (a synchronous listener: opening an adapter sends nothing), so the caller of
  ``credentials set`` resumes only once its provider is usable, and a provider whose credentials
  are gone is unregistered before anyone can call it again;
* it offers a :class:`~legion_nb.providers.resilience.Resilience` whose ``PendingRecorder`` writes
  ``CreatePending`` intents into the encrypted state before any create is sent;
* ``catalog(provider)`` answers from the live catalog fetched in this session, else the one the
  state keeps for the provider's endpoint, else the embedded one: each live catalog read is kept
  in the state (``catalogs``, with the endpoint it came from), so that planning in a later session
  (every CLI command is one) refuses what the provider does not sell (``live_catalog``) and the
  diff judges and prices the plan by that same catalog;
* :class:`ProviderPersistence` (refresh and adoption) writes what the providers report.

At logout everything is closed: the broker's pollers stop, every HTTP client closes, and the
adapters (which hold the decrypted credentials) are dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from legion_nb.engine.cluster.firewall_plan import (
    build_cluster_firewall_plan,
    cluster_orphan_rule,
    planned_rule,
)
from legion_nb.engine.redaction import redact
from legion_nb.engine.reports import RefreshReport, refresh_failure
from legion_nb.engine.resources.node import tracked_server_from
from legion_nb.engine.resources.pending import StatePendingRecorder
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.results import CatalogView
from legion_nb.engine.state.model import (
    DEFAULT_CLUSTER,
    LegionState,
    ObservedDnsZone,
    ObservedFirewall,
    ObservedProvider,
    ObservedPublicIp,
    ObservedServer,
    Provider,
    ProviderCatalog,
    StoredCredentials,
    TrackedDnsZone,
    TrackedFirewall,
    utcnow,
)
from legion_nb.engine.state.validation import validate_provider
from legion_nb.errors import LegionError, ProviderAuthError
from legion_nb.providers import registry
from legion_nb.providers.broker import BrokerPolicy, ProviderBroker, ProviderStatus
from legion_nb.providers.catalog import catalog_from_json, embedded_catalog
from legion_nb.providers.contract import Capability, ProviderAdapter, ProviderCredentials
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import Catalog, DnsZone, Firewall, PublicIp, Server
from legion_nb.providers.resilience import Resilience, SettlePolicy
from legion_nb.readonly import with_item

if TYPE_CHECKING:
    from legion_nb.engine.state.persistence import StateChange

__all__ = [
    "ProviderPersistence",
    "ProviderService",
    "RefreshReport",
    "adapter_credentials",
    "catalog_json",
    "observed_public_ip",
    "record_inventory",
]

log = logging.getLogger(__name__)


def adapter_credentials(stored: StoredCredentials) -> ProviderCredentials:
    """The adapter's view of stored credentials: fields the provider's descriptor names as secrets
    stay secret, every other field (Scaleway project and zone, OVH service name) is an option."""
    info = registry.descriptor(stored.provider)
    secrets = {k: v for k, v in stored.secrets.items() if k in info.secret_keys}
    options = {k: v for k, v in stored.secrets.items() if k not in info.secret_keys}
    return ProviderCredentials(stored.provider, stored.endpoint or info.default_endpoint, secrets, options)


class ProviderService:
    """The session service implementing ``ProviderAccess`` (see the module notes).

    Built complete when the state unlocks: the broker and the resilience layer exist from the
    start; entering it registers an adapter for every stored credential, :meth:`aclose` closes
    them all and forgets the decrypted credentials.
    """

    def __init__(
        self,
        state: StatePort,
        *,
        policy: BrokerPolicy | None = None,
        settle: SettlePolicy | None = None,
        transport: Any = None,
    ) -> None:
        """``policy`` paces the broker (tests and the sandbox pass short poll intervals);
        ``transport`` is an optional ``httpx.AsyncBaseTransport`` handed to every adapter's client."""
        self._state = state
        self._transport = transport
        self._broker = ProviderBroker(policy)
        self._resilience = Resilience(self._broker, StatePendingRecorder(state), settle)
        self._stack = AsyncExitStack()
        self._loaded: dict[str, StoredCredentials] = {}
        self._failed: dict[str, str] = {}
        self._live: dict[str, Catalog] = {}
        self._kept: dict[str, tuple[ProviderCatalog, Catalog]] = {}
        """The catalog the state keeps per provider, decoded once per kept record."""
        self._embedded: dict[str, Catalog] = {}
        """The embedded snapshots, built once: one object per provider, so a reader that keys a
        result on the catalog it priced with (the plan cost) sees it unchanged."""
        self._subscriptions: list[Callable[[], None]] = []

    async def __aenter__(self) -> ProviderService:
        self._sync(self._state.state.credentials)
        self._subscriptions.append(self._state.subscribe(self._changed))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the broker's pollers, close every HTTP client and drop the adapters (idempotent)."""
        for unsubscribe in self._subscriptions:
            unsubscribe()
        self._subscriptions.clear()
        self._loaded.clear()
        self._failed.clear()
        self._live.clear()
        self._kept.clear()
        await self._broker.aclose()
        await self._stack.aclose()

    def _changed(self, change: StateChange[LegionState]) -> None:
        if change.after.credentials is not change.before.credentials:
            self._sync(change.after.credentials)

    def _sync(self, credentials: Mapping[str, StoredCredentials]) -> None:
        """Route exactly the stored providers: drop the removed ones, register an adapter for every
        new or changed credential set. It never waits, so it runs inside the state's commit (see the
        module notes). A replaced or removed adapter's HTTP client closes at logout with the others,
        so a call already under way on it ends normally."""
        for provider in sorted((self._loaded.keys() | self._failed.keys()) - credentials.keys()):
            self._loaded.pop(provider, None)
            self._failed.pop(provider, None)
            self._live.pop(provider, None)
            self._broker.unregister(provider)
        for provider, stored in credentials.items():
            if self._loaded.get(provider) is stored:
                continue
            try:
                given = adapter_credentials(stored)
                adapter, aclose = registry.open_adapter(given, transport=self._transport)
            except LegionError as exc:  # unusable credentials: remembered and shown, never fatal
                self._failed[provider] = redact(exc.message)
                log.warning("%s credentials unusable: %s", provider, self._failed[provider])
                continue
            self._stack.push_async_callback(aclose)
            self._failed.pop(provider, None)
            self._loaded[provider] = stored
            self._live.pop(provider, None)
            self._broker.register(adapter)

    # -- ProviderAccess --------------------------------------------------------------------------

    @property
    def broker(self) -> ProviderBroker:
        return self._broker

    @property
    def resilience(self) -> Resilience:
        return self._resilience

    def has_credentials(self, provider: str) -> bool:
        return provider in self._loaded

    def adapter(self, provider: str) -> ProviderAdapter:
        """The registered adapter; ``ProviderAuthError`` naming the command that fixes it otherwise."""
        if provider not in self._loaded:
            reason = self._failed.get(provider)
            detail = f" ({reason})" if reason else ""
            raise ProviderAuthError(
                provider, f"no usable credentials{detail}; run `legion credentials set {provider}`"
            )
        return self.broker.adapter(provider)

    def catalog(self, provider: str) -> Catalog:
        """The catalog every reader uses (the diff's warnings and prices, materialization's choices):
        :meth:`live_catalog` (this session's read, else the one kept for the current endpoint), else
        the embedded snapshot. Planning refuses by the same order, so a choice it accepts against a
        catalog read from the provider is never called "not in the catalog" by the diff."""
        live = self.live_catalog(provider)
        if live is not None:
            return live
        if provider not in self._embedded:
            self._embedded[provider] = embedded_catalog(provider)
        return self._embedded[provider]

    async def fetch_catalog(self, provider: str) -> Catalog:
        """Read the provider's live catalog (through the broker) and use it from now on."""
        self.adapter(provider)
        catalog = await self.broker.read(provider, "read catalog", lambda a: a.fetch_catalog())
        self._live[provider] = catalog
        await self._keep(provider, catalog)
        return catalog

    def has_live_catalog(self, provider: str) -> bool:
        return provider in self._live

    def live_catalog(self, provider: str) -> Catalog | None:
        """The catalog read from the provider: in this session, else the one the state keeps from
        an earlier session at the provider's current endpoint; None when there is neither.
        Planning refuses what it does not sell, and only warns against the embedded snapshot."""
        live = self._live.get(provider)
        if live is not None:
            return live
        kept = self._state.state.catalogs.get(provider)
        stored = self._loaded.get(provider)
        if kept is None or stored is None or kept.data.get("endpoint") != (stored.endpoint or ""):
            return None  # none kept, or read from another endpoint (the sandbox, say)
        decoded = self._kept.get(provider)
        if decoded is None or decoded[0] is not kept:
            decoded = (kept, catalog_from_json(kept.data, fetched_at=kept.fetched))
            self._kept[provider] = decoded
        return decoded[1]

    async def _keep(self, provider: str, catalog: Catalog) -> None:
        """Keep ``catalog`` in the state with the endpoint it came from, when it differs from the
        one kept (an unchanged catalog costs no write). A failed write loses nothing this session
        needs: it is logged and the catalog is used from memory."""
        stored = self._loaded.get(provider)
        data: dict[str, Any] = {
            **{k: v for k, v in catalog_json(catalog).items() if k not in ("source", "fetched_at")},
            "endpoint": (stored.endpoint or "") if stored is not None else "",
        }
        kept = self._state.state.catalogs.get(provider)
        if kept is not None and kept.data == data:
            return
        entry = ProviderCatalog(_provider_name(provider), catalog.fetched_at or utcnow(), data)

        def step(state: LegionState) -> tuple[LegionState, None]:
            return replace(state, catalogs=with_item(state.catalogs, provider, entry)), None

        try:
            await self._state.mutate(step, reason=f"keep the {provider} catalog")
        except LegionError as exc:  # the catalog still serves this session from memory
            log.warning("%s catalog not kept in the state: %s", provider, exc.message)

    def status(self) -> list[dict[str, Any]]:
        """Per loaded provider: the broker's lane status; per unusable one: why (no secrets)."""
        out = [_status_json(self._broker.status(provider)) for provider in sorted(self._loaded)]
        for provider, reason in sorted(self._failed.items()):
            out.append({"provider": provider, "last_error": reason, "usable": False})
        return out


def _status_json(status: ProviderStatus) -> dict[str, Any]:
    return {
        "provider": status.provider,
        "usable": True,
        "queue_depth": status.queue_depth,
        "in_flight": status.in_flight,
        "last_error": status.last_error,
        "remaining_budget": status.remaining_budget,
        "calls_total": status.calls_total,
        "waiting_operations": status.waiting_operations,
    }


# -- refresh and adoption (the seed's ProviderPersistence) ---------------------------------------


@dataclass(frozen=True, slots=True)
class _Inventory:
    servers: list[Server]
    zones: list[DnsZone]
    firewalls: list[Firewall]
    public_ips: list[PublicIp]
    skipped: tuple[str, ...]


class ProviderPersistence:
    """Refresh: read a provider's inventory, store it as observed facts, adopt Legion's own resources.

    Adoption takes a resource into ``tracked`` only when it carries both ownership labels
    (``legion/managed=true`` and ``legion/id``) AND either a pending create of that Legion id or a
    planned resource of that name: a labelled resource nobody plans is reported as an orphan instead,
    because tracking it would make the next materialize delete it.
    """

    def __init__(self, providers: ProviderService) -> None:
        self._providers = providers

    async def refresh(self, persistence: StatePort, provider: str) -> RefreshReport:
        self._providers.adapter(provider)  # no credentials -> ProviderAuthError before any I/O
        try:
            inventory = await self._read(provider)
        except LegionError as exc:
            # The report names its provider; a provider error's message need not say it again.
            error = redact(exc.message.removeprefix(f"{provider}: "))
            return RefreshReport(provider=provider, error=error, failure=refresh_failure(exc))

        def apply(state: LegionState) -> tuple[LegionState, RefreshReport]:
            return record_inventory(
                state,
                provider,
                inventory.servers,
                inventory.zones,
                inventory.firewalls,
                public_ips=inventory.public_ips,
            )

        report = await persistence.mutate(apply, reason=f"refresh {provider}")
        return replace(report, skipped=inventory.skipped)

    async def _read(self, provider: str) -> _Inventory:
        broker = self._providers.broker
        capabilities = broker.adapter(provider).capabilities
        skipped: list[str] = []
        servers = await broker.read(provider, "list servers", lambda a: a.list_servers())
        zones: list[DnsZone] = []
        if Capability.DNS in capabilities:
            zones = await broker.read(provider, "list DNS zones", lambda a: a.list_zones())
        else:
            skipped.append("dns")
        firewalls: list[Firewall] = []
        if Capability.FIREWALL in capabilities:
            firewalls = await broker.read(provider, "list firewalls", lambda a: a.list_firewalls())
        else:
            skipped.append("firewall")
        public_ips: list[PublicIp] = []
        if Capability.FLOATING_IP in capabilities:
            public_ips = await broker.read(provider, "list public IPs", lambda a: a.list_public_ips())
        else:
            skipped.append("public_ip")
        return _Inventory(servers, zones, firewalls, public_ips, tuple(skipped))


def record_inventory(
    state: LegionState,
    provider: str,
    servers: list[Server],
    zones: list[DnsZone],
    firewalls: list[Firewall],
    *,
    public_ips: list[PublicIp] | None = None,
) -> tuple[LegionState, RefreshReport]:
    """Pure: ``state`` with ``provider``'s observed facts replaced and Legion's resources adopted
    (servers and zones planned under that name, firewalls whose name is a desired firewall set).
    Public IPs are observed, never adopted. The report's orphans are what the adopted state's
    :class:`~legion_nb.engine.orphans.OrphanRule` finds, public IPs with their kind and address."""
    ips = [observed_public_ip(ip) for ip in public_ips or ()]
    refreshed = utcnow()
    observed = ObservedProvider(
        provider=_provider_name(provider),
        refreshed=refreshed,
        servers={s.id: _observed_server(s, refreshed) for s in servers},
        dns_zones={z.name: ObservedDnsZone(z.name, z.id, dict(z.labels)) for z in zones},
        firewalls={f.id: ObservedFirewall(f.name, f.id, dict(f.labels)) for f in firewalls},
        public_ips={ip.resource_id: ip for ip in ips},
    )
    adoption = _Adoption(state, provider)
    for server in servers:
        adoption.server(server)
    for zone in zones:
        adoption.zone(zone)
    for firewall in firewalls:
        adoption.firewall(firewall)
    tracked = replace(
        state.tracked,
        servers=adoption.servers,
        dns_zones=adoption.zones,
        firewalls=adoption.firewalls,
        pending=adoption.pending,
    )
    after = replace(state, observed={**state.observed, provider: observed}, tracked=tracked)
    orphans = _orphans(after, provider, observed, {f.id: f.location or "" for f in firewalls})
    report = RefreshReport(
        provider=provider,
        servers=len(servers),
        dns_zones=len(zones),
        firewalls=len(firewalls),
        public_ips=len(ips),
        adopted=tuple(adoption.adopted),
        unmanaged=tuple(adoption.unmanaged),
        orphans=tuple(orphans),
    )
    return after, report


def _orphans(
    state: LegionState, provider: str, observed: ObservedProvider, zones_of: Mapping[str, str]
) -> list[str]:
    """What ``provider`` lists that is an orphan once this refresh adopted what it could, by the
    rule the diff shows orphans with; a zonal firewall says its zone (``zones_of`` by id), since
    Scaleway has a default security group in every zone."""
    rule = cluster_orphan_rule(state)
    found = [f"server {s.name}" for s in observed.servers.values() if rule.is_orphan(provider, s)]
    found += [f"dns zone {z.zone}" for z in observed.dns_zones.values() if rule.is_orphan(provider, z)]
    for firewall in observed.firewalls.values():
        if rule.is_orphan(provider, firewall):
            where = zones_of.get(firewall.provider_id, "")
            found.append(f"firewall {firewall.name}" + (f" in {where}" if where else ""))
    ips = sorted((ip.kind, ip.address) for ip in observed.public_ips.values() if rule.is_orphan(provider, ip))
    return found + [f"{kind} IP {address}" for kind, address in ips]


class _Adoption:
    """The tracked records of one refresh as they grow, and what was adopted or is unmanaged
    (what is left Legion-labelled and unheld is an orphan: :func:`_orphans` judges it after)."""

    def __init__(self, state: LegionState, provider: str) -> None:
        self.state = state
        self.provider = provider
        tracked = state.tracked
        self.servers = dict(tracked.servers)
        self.zones = dict(tracked.dns_zones)
        self.firewalls = dict(tracked.firewalls)
        self.pending = dict(tracked.pending)
        self.adopted: list[str] = []
        self.unmanaged: list[str] = []
        self._server_ids = {t.provider_id for t in tracked.servers.values() if t.provider == provider}
        self._firewall_ids = {f.provider_id for f in tracked.firewalls.values()}
        self._planned = state.scheme.servers()

    def _take(self, what: str, ownership: OwnershipLabels) -> None:
        self.pending.pop(ownership.legion_id, None)
        self.adopted.append(what)

    def server(self, server: Server) -> None:
        if server.id in self._server_ids:
            return
        ownership = server.ownership
        if ownership is None:
            self.unmanaged.append(f"server {server.name}")
            return
        intent = self.pending.get(ownership.legion_id)
        plan = self._planned.get(server.name)
        wanted = (intent is not None and intent.kind == "server") or (
            plan is not None and plan[1].provider == self.provider
        )
        if not wanted or server.name in self.servers:
            return
        cluster, role = (plan[0], plan[1].role) if plan is not None else (DEFAULT_CLUSTER, "cluster")
        self.servers[server.name] = tracked_server_from(
            server, _provider_name(self.provider), cluster=cluster, role=role
        )
        self._take(f"server {server.name}", ownership)

    def zone(self, zone: DnsZone) -> None:
        if zone.name in self.zones:
            return
        ownership = OwnershipLabels.from_labels(zone.labels)
        planned = self.state.scheme.dns_zones.get(zone.name)
        if ownership is None:
            if planned is None:
                self.unmanaged.append(f"dns zone {zone.name}")
            return  # a planned zone without our labels is the diff's "adopt" case, not ours
        if planned is None or planned.provider != self.provider:
            return
        self.zones[zone.name] = TrackedDnsZone(zone.name, _provider_name(self.provider), zone.id)
        self._take(f"dns zone {zone.name}", ownership)

    def firewall(self, firewall: Firewall) -> None:
        if firewall.id in self._firewall_ids:
            return
        ownership = OwnershipLabels.from_labels(firewall.labels)
        # A zonal firewall says its zone: Scaleway has a "Default security group" in every zone.
        where = f" in {firewall.location}" if firewall.location else ""
        if ownership is None:
            self.unmanaged.append(f"firewall {firewall.name}{where}")
            return
        wanted = build_cluster_firewall_plan(self.state).get(firewall.name)
        if wanted is None or wanted.provider != self.provider or firewall.name in self.firewalls:
            return
        names = {s.provider_id: n for n, s in self.servers.items() if s.provider == self.provider}
        self.firewalls[firewall.name] = TrackedFirewall(
            name=firewall.name,
            provider=_provider_name(self.provider),
            provider_id=firewall.id,
            rules=tuple(planned_rule(r) for r in firewall.rules),
            servers=tuple(sorted(names.get(i, i) for i in firewall.applied_to)),
        )
        self._take(f"firewall {firewall.name}", ownership)


def _provider_name(provider: str) -> Provider:
    """The provider as the state's literal type (the registry has validated it already)."""
    return validate_provider(provider)


def _observed_server(server: Server, seen: dt.datetime) -> ObservedServer:
    return ObservedServer(
        provider_id=server.id,
        name=server.name,
        status=server.status,
        server_type=server.server_type or "",
        location=server.location or "",
        image=server.image or "",
        ipv4=server.ipv4,
        ipv6=server.ipv6,
        labels=dict(server.labels),
        seen=seen,
    )


def observed_public_ip(ip: PublicIp) -> ObservedPublicIp:
    """A provider's public IP record as the state observes it, its ownership labels judged."""
    ownership = ip.ownership
    return ObservedPublicIp(
        provider_id=ip.id,
        kind=ip.kind,
        address=ip.ip,
        name=ip.name,
        family=ip.ip_type,
        server_id=ip.server_id or None,
        location=ip.location or "",
        legion_id=ownership.legion_id if ownership is not None else "",
        labels=dict(ip.labels),
    )


def catalog_json(catalog: Catalog) -> CatalogView:
    """A catalog as JSON types (prices as decimal strings, so no rounding on the way)."""
    return {
        "provider": catalog.provider,
        "currency": catalog.currency,
        "source": catalog.source,
        "fetched_at": catalog.fetched_at.isoformat() if catalog.fetched_at else None,
        "server_types": [
            {
                "name": t.name,
                "cores": t.cores,
                "memory_gb": t.memory_gb,
                "disk_gb": t.disk_gb,
                "arch": t.arch,
                "deprecated": t.deprecated,
                "description": t.description,
                "block_storage": t.block_storage,
                "locations": list(t.locations),
                "prices": [
                    {"location": p.location, "hourly": str(p.hourly), "monthly": str(p.monthly)}
                    for p in t.prices
                ],
            }
            for t in catalog.server_types
        ],
        "locations": [
            {"name": loc.name, "city": loc.city, "country": loc.country, "description": loc.description}
            for loc in catalog.locations
        ],
        "images": [
            {
                "id": i.id,
                "name": i.name,
                "os_flavor": i.os_flavor,
                "os_version": i.os_version,
                "arch": i.arch,
                "locations": list(i.locations),
                "deprecated": i.deprecated,
            }
            for i in catalog.images
        ],
    }
