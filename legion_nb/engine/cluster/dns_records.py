"""DNS records synthesized from planned DNS hosts and tracked server endpoints.

Why synthesized: a DNS host is the operator saying "www.example.org should reach web-1..3"; the
addresses are whatever the providers assigned, recorded on the tracked servers. So a zone's desired
RRsets are a pure function of the state, recomputed whenever it changes: one ``A`` RRset per host
with the IPv4 addresses of its servers, one ``AAAA`` RRset with their IPv6 addresses. A server that
is planned but has no endpoint yet is reported in ``missing``: the zone actor decides whether to
wait for it or to apply what is known. A server that is no longer planned contributes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from legion_nb.engine.state.model import LegionState, TrackedDnsRecord

__all__ = ["DEFAULT_TTL", "ZoneRecordPlan", "records_signature", "synthesize_zone_records"]

DEFAULT_TTL = 300
AddressType = Literal["A", "AAAA"]


@dataclass(frozen=True, slots=True)
class ZoneRecordPlan:
    """The RRsets a zone should hold (sorted by name, type) and the servers still without an endpoint."""

    zone: str
    records: tuple[TrackedDnsRecord, ...]
    missing: tuple[str, ...]
    hosts: tuple[str, ...]


def synthesize_zone_records(state: LegionState, zone: str, *, ttl: int = DEFAULT_TTL) -> ZoneRecordPlan:
    planned = state.scheme.servers()
    tracked = state.tracked.servers
    records: list[TrackedDnsRecord] = []
    missing: set[str] = set()
    hosts = sorted((h for h in state.scheme.dns_hosts.values() if h.zone == zone), key=lambda h: h.host)
    for host in hosts:
        values: dict[AddressType, set[str]] = {"A": set(), "AAAA": set()}
        for name in host.servers:
            if name not in planned:
                continue
            server = tracked.get(name)
            if server is None or not (server.ipv4 or server.ipv6):
                missing.add(name)
                continue
            if server.ipv4:
                values["A"].add(server.ipv4)
            if server.ipv6:
                values["AAAA"].add(server.ipv6)
        for rtype in ("A", "AAAA"):
            if values[rtype]:
                records.append(TrackedDnsRecord(host.host, rtype, ttl, tuple(sorted(values[rtype]))))
    return ZoneRecordPlan(
        zone=zone,
        records=tuple(sorted(records, key=lambda r: (r.name, r.type))),
        missing=tuple(sorted(missing)),
        hosts=tuple(h.fqdn for h in hosts),
    )


RecordKey = tuple[str, str, int, tuple[str, ...]]


def records_signature(records: tuple[TrackedDnsRecord, ...]) -> tuple[RecordKey, ...]:
    """A comparable form of a record set (order-free): equal signatures need no provider call."""
    return tuple(sorted((r.name, r.type, r.ttl, tuple(sorted(r.values))) for r in records))
