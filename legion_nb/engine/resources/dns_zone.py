"""The DNS zone actor: creates the zone once and keeps its synthesized records converged.

Desired records come from :func:`legion_nb.engine.cluster.dns_records.synthesize_zone_records`
(planned hosts + tracked endpoints). Idempotency is the actor's own: the tracked zone records what
was last applied, and a wave whose synthesized set equals it makes no provider call. While a server
a host points at is still being created, the zone waits with a visible reason instead of applying a
half-known set; a server that failed or was never created does not hold the zone up (its host gets
what is known, and the snapshot says which endpoints are missing).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

from legion_nb.engine.cluster.dns_records import ZoneRecordPlan, records_signature, synthesize_zone_records
from legion_nb.engine.resources.converging import ConvergingActor
from legion_nb.engine.state.edits import with_tracked, without_observed, without_pending
from legion_nb.engine.state.model import LegionState, Provider, TrackedDnsRecord, TrackedDnsZone
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.records import DnsRecordType, DnsZone

__all__ = ["DnsZoneActor"]

ZONE_TTL = 3600


class DnsZoneActor(ConvergingActor):
    """``key.identity`` is the zone name (``example.org``)."""

    @property
    def zone(self) -> str:
        return self.key.identity

    def tracked(self) -> TrackedDnsZone | None:
        return self._state.tracked.dns_zones.get(self.zone)

    def plan(self) -> ZoneRecordPlan:
        return synthesize_zone_records(self._state, self.zone, ttl=self.context.settings.dns_ttl)

    # -- guards -----------------------------------------------------------------------------------

    def is_tracked(self) -> bool:
        return self.tracked() is not None

    def wanted(self) -> bool:
        return self.zone in self._state.scheme.dns_zones

    def must_wait(self) -> bool:
        return bool(self.context.busy_servers(self.plan().missing))

    def must_apply(self) -> bool:
        tracked = self.tracked()
        if tracked is None:
            return False
        if self.has_intent("dns_zone", self.zone):
            return True  # a stale create intent: settle it while applying
        return records_signature(self.plan().records) != records_signature(tracked.records)

    # -- provider work ------------------------------------------------------------------------------

    async def on_invoke_creating(self) -> None:
        self.require_provider()
        settled = await self.settle_intent("dns_zone", self.zone)
        if settled is not None and isinstance(settled[0], DnsZone):
            await self._track(settled[0], settled[1])
            return
        resilience = self.context.providers.resilience
        zone, legion_id = await self.create_once(
            f"DNS zone {self.zone}",
            lambda legion_id: resilience.create_zone(self.provider, self.zone, ZONE_TTL, legion_id),
        )
        await self._track(zone, legion_id)

    async def on_invoke_applying(self) -> None:
        self.require_provider()
        tracked = self.tracked()
        if tracked is None:
            return
        if self.has_intent("dns_zone", self.zone):
            await self.settle_stale_intent("dns_zone", self.zone, tracked.provider_id)
        desired = self.plan().records
        current = {(r.name, r.type): r for r in tracked.records}
        wanted = {(r.name, r.type): r for r in desired}
        resilience = self.context.providers.resilience
        zone = self.zone
        for key, record in wanted.items():
            old = current.get(key)
            if old is not None and records_signature((old,)) == records_signature((record,)):
                continue
            await resilience.converge(
                self.provider,
                f"set {record.type} {record.name} in {zone}",
                functools.partial(_set_rrset, zone=zone, record=record),
            )
        for name, rtype in sorted(current.keys() - wanted.keys()):
            await resilience.converge(
                self.provider,
                f"delete {rtype} {name} in {zone}",
                functools.partial(_delete_rrset, zone=zone, name=name, rtype=rtype),
            )
        await self._record(desired)

    async def on_invoke_deleting(self) -> None:
        self.require_provider()
        tracked = self.tracked()
        if tracked is None:
            return
        zone = self.zone
        await self.context.providers.resilience.delete(
            self.provider, f"delete DNS zone {zone}", lambda a: a.delete_zone(zone)
        )

        def drop(state: LegionState) -> tuple[LegionState, None]:
            zones = {k: v for k, v in state.tracked.dns_zones.items() if k != zone}
            state = with_tracked(state, dns_zones=zones)
            return without_observed(state, tracked.provider, "dns_zones", zone), None

        await self.context.state.mutate(drop, reason=f"deleted DNS zone {zone}")

    # -- state writes -----------------------------------------------------------------------------------

    async def _track(self, found: DnsZone, legion_id: str) -> None:
        zone = self.zone
        provider: Provider = _provider_of(self._state, zone, self.provider)

        def track(state: LegionState) -> tuple[LegionState, None]:
            record = TrackedDnsZone(zone=zone, provider=provider, provider_id=found.id)
            state = without_pending(state, legion_id)
            zones = {**state.tracked.dns_zones, zone: record}
            return with_tracked(state, dns_zones=zones), None

        await self.context.state.mutate(track, reason=f"track DNS zone {zone} ({found.id})")

    async def _record(self, records: tuple[TrackedDnsRecord, ...]) -> None:
        zone = self.zone

        def write(state: LegionState) -> tuple[LegionState, None]:
            current = state.tracked.dns_zones.get(zone)
            if current is None:
                return state, None
            zones = {**state.tracked.dns_zones, zone: dataclasses.replace(current, records=records)}
            return with_tracked(state, dns_zones=zones), None

        await self.context.state.mutate(write, reason=f"applied {len(records)} records to DNS zone {zone}")

    # -- snapshot ---------------------------------------------------------------------------------------

    def waiting(self) -> str | None:
        if not self.wanted() or self.settled():
            return None
        busy = self.context.busy_servers(self.plan().missing)
        if busy:
            return f"waiting for endpoints of {', '.join(busy)}"
        return None

    def facts(self) -> Mapping[str, str]:
        facts: dict[str, str] = {}
        tracked = self.tracked()
        if tracked is not None:
            facts["provider_id"] = tracked.provider_id
            facts["records"] = str(len(tracked.records))
        if self.wanted():
            plan = self.plan()
            facts["hosts"] = str(len(plan.hosts))
            if plan.missing:
                facts["missing_endpoints"] = ",".join(plan.missing)
        return facts


def _record_type(name: str) -> DnsRecordType:
    if name == "A":
        return "A"
    if name == "AAAA":
        return "AAAA"
    raise ValueError(f"synthesized records are A or AAAA, not {name}")


async def _set_rrset(adapter: ProviderAdapter, *, zone: str, record: TrackedDnsRecord) -> None:
    await adapter.set_records(zone, record.name, _record_type(record.type), record.ttl, record.values)


async def _delete_rrset(adapter: ProviderAdapter, *, zone: str, name: str, rtype: str) -> None:
    await adapter.delete_records(zone, name, _record_type(rtype))


def _provider_of(state: LegionState, zone: str, fallback: str) -> Provider:
    planned = state.scheme.dns_zones.get(zone)
    if planned is not None:
        return planned.provider
    tracked = state.tracked.dns_zones.get(zone)
    if tracked is not None:
        return tracked.provider
    raise ValueError(f"DNS zone {zone} at {fallback} is neither planned nor tracked")
