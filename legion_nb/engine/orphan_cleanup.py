"""Deleting one orphan: re-read it at its provider, judge it by the orphan rule, delete, forget it.

The refresh or reconciliation that showed an orphan may be old: since then it may have been
adopted, assigned or deleted by hand. So the provider's listing of that one kind is read again
through the broker, the record found there is judged by
:class:`~legion_nb.engine.orphans.OrphanRule` against the state as it is now, and only then is it
deleted through resilience (idempotent: a resource already gone counts as deleted). When the
delete's outcome stays unknown, the listing is read once more and decides: gone is done, still
listed is the ambiguous error, never a guess. Afterwards the resource leaves the observed state, so
the diff stops showing it at once instead of at the next refresh.

Resource ids are as the diff's orphan notes and the billing reconciliation name them:
a server's provider id (or ``server/<id>``), ``dns_zone/<zone>``, ``firewall/<id>``,
``floating_ip/<id>`` and ``primary_ip/<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from legion_nb.engine.cluster.firewall_plan import cluster_orphan_rule
from legion_nb.engine.orphans import ObservedRecord, legion_made
from legion_nb.engine.providers_service import observed_public_ip
from legion_nb.engine.state.edits import ObservedKind, without_observed
from legion_nb.engine.state.model import (
    LegionState,
    ObservedDnsZone,
    ObservedFirewall,
    ObservedPublicIp,
    ObservedServer,
)
from legion_nb.errors import HeldByStateError, NotLegionsError, ProviderAmbiguousError, UnknownOrphanError
from legion_nb.providers.records import Operation

if TYPE_CHECKING:
    from legion_nb.engine.providers_service import ProviderService
    from legion_nb.engine.resources.ports import StatePort

__all__ = ["Orphan", "OrphanKind", "delete_orphan", "find_orphan"]

OrphanKind = Literal["server", "dns_zone", "firewall", "floating_ip", "primary_ip"]
_PREFIXES: tuple[OrphanKind, ...] = ("server", "dns_zone", "firewall", "floating_ip", "primary_ip")
_OBSERVED: dict[OrphanKind, ObservedKind] = {
    "server": "servers",
    "dns_zone": "dns_zones",
    "firewall": "firewalls",
    "floating_ip": "public_ips",
    "primary_ip": "public_ips",
}

_WHAT: dict[OrphanKind, str] = {
    "server": "server",
    "dns_zone": "DNS zone",
    "firewall": "firewall",
    "floating_ip": "public IP",
    "primary_ip": "public IP",
}


@dataclass(frozen=True)
class Orphan:
    """An orphan as its provider lists it now: what to delete and how the state keys it."""

    provider: str
    resource: str
    kind: OrphanKind
    record: ObservedRecord
    applied_to: tuple[str, ...] = ()
    """Servers a firewall is applied to (released before the delete)."""

    @property
    def title(self) -> str:
        """The resource as an operator reads it in the operation log: id and name or address."""
        record = self.record
        if isinstance(record, ObservedPublicIp):
            return f"{self.provider} {self.resource} ({record.address})"
        name = record.zone if isinstance(record, ObservedDnsZone) else record.name
        return f"{self.provider} {self.resource} ({name})"

    @property
    def observed_key(self) -> str:
        record = self.record
        if isinstance(record, ObservedPublicIp):
            return record.resource_id
        return record.zone if isinstance(record, ObservedDnsZone) else record.provider_id


def _target(resource: str) -> tuple[OrphanKind, str]:
    prefix, sep, key = resource.partition("/")
    kind = next((k for k in _PREFIXES if sep and prefix == k), None)
    if kind is None:
        return "server", resource
    return kind, key


async def _listing(providers: ProviderService, provider: str, kind: OrphanKind) -> list[Orphan]:
    """One broker read: ``provider``'s resources of ``kind`` as orphan candidates."""
    broker = providers.broker
    if kind == "server":
        servers = await broker.read(provider, "list servers", lambda a: a.list_servers())
        return [
            Orphan(provider, s.id, kind, ObservedServer(s.id, s.name, labels=dict(s.labels))) for s in servers
        ]
    if kind == "dns_zone":
        zones = await broker.read(provider, "list DNS zones", lambda a: a.list_zones())
        return [
            Orphan(provider, f"dns_zone/{z.name}", kind, ObservedDnsZone(z.name, z.id, dict(z.labels)))
            for z in zones
        ]
    if kind == "firewall":
        firewalls = await broker.read(provider, "list firewalls", lambda a: a.list_firewalls())
        return [
            Orphan(
                provider,
                f"firewall/{f.id}",
                kind,
                ObservedFirewall(f.name, f.id, dict(f.labels)),
                applied_to=tuple(f.applied_to),
            )
            for f in firewalls
        ]
    ips = await broker.read(provider, "list public IPs", lambda a: a.list_public_ips())
    found = (observed_public_ip(ip) for ip in ips)
    return [Orphan(provider, ip.resource_id, kind, ip) for ip in found if ip.kind == kind.removesuffix("_ip")]


def _labelled(record: ObservedRecord) -> bool:
    if isinstance(record, ObservedPublicIp):
        return bool(record.legion_id)
    return legion_made(record.labels)


async def find_orphan(providers: ProviderService, state: LegionState, provider: str, resource: str) -> Orphan:
    """``resource`` at ``provider`` when it is an orphan now (module notes); one broker read.

    Raises :class:`UnknownOrphanError` when the provider lists no such resource,
    :class:`NotLegionsError` when it lacks Legion's labels, :class:`HeldByStateError` when the state
    holds it, :class:`~legion_nb.errors.CapabilityMissingError` where the provider has no such kind.
    """
    kind, _ = _target(resource)
    wanted = resource if kind != "server" else _target(resource)[1]
    orphan = next((o for o in await _listing(providers, provider, kind) if o.resource == wanted), None)
    if orphan is None:
        raise UnknownOrphanError(
            f"{provider} {resource} is not an orphan: {provider} lists no such {_WHAT[kind]}; "
            "'legion refresh' lists the orphans"
        )
    why = cluster_orphan_rule(state).refusal(provider, orphan.record)
    if why:
        error = HeldByStateError if _labelled(orphan.record) else NotLegionsError
        raise error(f"{orphan.title} is not an orphan: {why}")
    return orphan


async def delete_orphan(providers: ProviderService, state: StatePort, orphan: Orphan) -> None:
    """Delete ``orphan`` through resilience, settle an unknown outcome by reading again, then drop it
    from the observed state. Raises :class:`ProviderAmbiguousError` when it is still listed."""
    try:
        await _delete(providers, orphan)
    except ProviderAmbiguousError:
        listed = await _listing(providers, orphan.provider, orphan.kind)
        if any(o.resource == orphan.resource for o in listed):
            raise  # still there: the delete did not happen, say so
    await state.mutate(
        lambda s: (without_observed(s, orphan.provider, _OBSERVED[orphan.kind], orphan.observed_key), None),
        reason=f"deleted orphan {orphan.resource} at {orphan.provider}",
    )


async def _delete(providers: ProviderService, orphan: Orphan) -> None:
    resilience = providers.resilience
    provider, record = orphan.provider, orphan.record
    if isinstance(record, ObservedServer):
        await resilience.delete_server(provider, record.provider_id)
    elif isinstance(record, ObservedDnsZone):
        zone = record.zone
        await resilience.delete(provider, f"delete DNS zone {zone}", lambda a: a.delete_zone(zone))
    elif isinstance(record, ObservedFirewall):
        firewall_id = record.provider_id
        if orphan.applied_to:
            released: list[Operation] | None = await resilience.delete(
                provider, f"release firewall {record.name}", lambda a: a.apply_firewall(firewall_id, [])
            )
            await providers.broker.wait(released or [])
        await resilience.delete(
            provider, f"delete firewall {record.name}", lambda a: a.delete_firewall(firewall_id)
        )
    else:
        await resilience.delete_public_ip(provider, record.kind, record.provider_id)
