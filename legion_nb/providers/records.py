"""The provider-neutral domain records: servers, SSH keys, operations, firewalls, public IPs, DNS,
catalogs, billing and rate limits.

Each record means the same thing on Hetzner, Scaleway and OVH; each adapter's ``convert`` module
builds them from its wire shapes, and the engine reads nothing else. Records are frozen values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, cast, get_args

from legion_nb.errors import ValidationError
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.readonly import freeze_mappings

__all__ = [
    "PUBLIC_IP_KINDS",
    "AwaitedServerState",
    "BillingEntry",
    "BillingPeriod",
    "Catalog",
    "CatalogAddon",
    "CatalogImage",
    "CatalogLocation",
    "CatalogPrice",
    "CatalogServerType",
    "DnsRecord",
    "DnsRecordType",
    "DnsZone",
    "Firewall",
    "FirewallDirection",
    "FirewallProtocol",
    "FirewallRule",
    "Operation",
    "OperationState",
    "OperationStatus",
    "PendingServer",
    "PortRange",
    "PublicIp",
    "PublicIpKind",
    "RateLimitInfo",
    "Server",
    "ServerSpec",
    "ServerStatus",
    "SshKey",
    "rrsets_from_values",
    "server_state_operation",
]


# --------------------------------------------------------------------------------------------------
# Servers

ServerStatus = Literal["provisioning", "running", "off", "deleting", "error", "unknown"]
"""Provider-neutral server status. The raw provider value is kept in ``Server.provider_status``."""


@dataclass(frozen=True)
class ServerSpec:
    """What to create. ``labels`` must already include the ownership labels."""

    name: str
    server_type: str
    location: str
    image: str
    ssh_key_ids: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    # User data may carry bootstrap secrets: keep it out of reprs.
    user_data: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")

    @property
    def ownership(self) -> OwnershipLabels | None:
        return OwnershipLabels.from_labels(self.labels)


@dataclass(frozen=True)
class Server:
    provider: str
    id: str
    name: str
    status: ServerStatus
    provider_status: str
    ipv4: str | None = None
    ipv6: str | None = None
    server_type: str | None = None
    location: str | None = None
    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    created: datetime | None = None
    outgoing_traffic: int | None = None
    """Bytes sent in the current billing period, where the provider reports it (Hetzner)."""
    included_traffic: int | None = None
    """Bytes the current billing period includes before traffic is billed (Hetzner)."""

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")

    @property
    def ownership(self) -> OwnershipLabels | None:
        return OwnershipLabels.from_labels(self.labels)


@dataclass(frozen=True)
class SshKey:
    provider: str
    id: str
    name: str
    fingerprint: str | None
    public_key: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


# --------------------------------------------------------------------------------------------------
# Operations (long-running provider work, as data)

OperationStatus = Literal["running", "success", "error"]


@dataclass(frozen=True)
class Operation:
    """One piece of long-running provider work to wait for.

    ``id`` is the provider's action/task id, or, for providers without one, an adapter-chosen id
    that the same adapter understands in :meth:`ProviderAdapter.poll_operations` (for example
    ``"server:42:running"``). ``kind`` is the provider's command name (``create_server``,
    ``start_server``) or the awaited state (``server_running``).
    """

    provider: str
    id: str
    kind: str
    resource_id: str | None = None
    resource_type: str = "server"


AwaitedServerState = Literal["server_running", "server_off", "server_deleted"]
"""The server states a provider without action objects lets the broker wait for."""


def server_state_operation(provider: str, server_id: str, kind: AwaitedServerState) -> Operation:
    """An operation that is done once ``server_id`` reaches the state ``kind``, for providers with no
    action ids to poll. Its id is derived from server and state, so waiting twice for the same state of
    the same server is one operation."""
    return Operation(provider, f"server:{server_id}:{kind}", kind, resource_id=server_id)


@dataclass(frozen=True)
class OperationState:
    operation: Operation
    status: OperationStatus
    progress: int = 0
    error_code: str | None = None
    error_message: str | None = None

    @property
    def done(self) -> bool:
        return self.status != "running"


@dataclass(frozen=True)
class PendingServer:
    """A server the provider accepted, plus the operations to wait for until it is running."""

    server: Server
    operations: tuple[Operation, ...] = ()


# --------------------------------------------------------------------------------------------------
# Firewalls and public IPs


@dataclass(frozen=True, order=True)
class PortRange:
    first: int
    last: int

    def __post_init__(self) -> None:
        if not (1 <= self.first <= self.last <= 65535):
            raise ValidationError(f"port range {self.first}-{self.last} must lie within 1-65535, low to high")

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """``"80"`` or ``"1024-2048"`` (Hetzner's wire form)."""
        low, sep, high = text.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError as exc:
            raise ValidationError(f"port {text!r} is neither a number nor a range like 1024-2048") from exc
        return cls(first, last)

    @classmethod
    def single(cls, port: int) -> PortRange:
        return cls(port, port)

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


FirewallDirection = Literal["in", "out"]
FirewallProtocol = Literal["tcp", "udp", "icmp", "esp", "gre"]


@dataclass(frozen=True)
class FirewallRule:
    """One allow rule. ``sources`` (CIDRs) apply to inbound rules, ``destinations`` to outbound.

    ``port`` is None for protocols without ports (icmp, esp, gre) and means "all ports" for tcp/udp.
    """

    direction: FirewallDirection
    protocol: FirewallProtocol
    port: PortRange | None = None
    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    description: str | None = None

    def __post_init__(self) -> None:
        if self.port is not None and self.protocol not in ("tcp", "udp"):
            raise ValidationError(f"firewall rule: protocol {self.protocol} takes no port")
        if self.direction == "in" and not self.sources:
            raise ValidationError("firewall rule: an inbound rule needs at least one source address")
        if self.direction == "out" and not self.destinations:
            raise ValidationError("firewall rule: an outbound rule needs at least one destination address")


@dataclass(frozen=True)
class Firewall:
    """A provider firewall (a Scaleway security group). ``location`` is the zone a zonal one lives
    in (Scaleway keeps one "Default security group" per zone), None for a project-wide firewall."""

    provider: str
    id: str
    name: str
    rules: tuple[FirewallRule, ...] = ()
    applied_to: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    location: str | None = None

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


PublicIpKind = Literal["floating", "primary"]
"""What a public address is at its provider: ``floating`` is created on its own and moved between
servers (Hetzner's floating IPs, Scaleway's flexible IPs); ``primary`` is the address a server is
created with, kept as a resource of its own (Hetzner's primary IPs). OVH's additional (failover) IPs
are neither: its adapter has no floating IP capability."""

PUBLIC_IP_KINDS: tuple[PublicIpKind, ...] = get_args(PublicIpKind)


@dataclass(frozen=True)
class PublicIp:
    """A public address the provider keeps as a resource of its own. Hetzner bills each apart from
    any server, from its own creation until it is deleted, assigned or not; ``server_id`` is the
    server it is assigned to now."""

    provider: str
    kind: PublicIpKind
    id: str
    name: str
    ip: str
    ip_type: Literal["ipv4", "ipv6"]
    server_id: str | None = None
    location: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    created: datetime | None = None

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")

    @property
    def ownership(self) -> OwnershipLabels | None:
        return OwnershipLabels.from_labels(self.labels)


# --------------------------------------------------------------------------------------------------
# DNS

DnsRecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "PTR", "SOA"]


@dataclass(frozen=True)
class DnsZone:
    provider: str
    id: str
    name: str
    ttl: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


@dataclass(frozen=True)
class DnsRecord:
    """One RRset: every value for a (name, type) pair. ``name`` is relative to the zone, ``@`` is
    the apex. Values are kept sorted so that two reads of the same RRset compare equal."""

    name: str
    type: DnsRecordType
    ttl: int | None
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(sorted(self.values)))


_DNS_RECORD_TYPES: frozenset[str] = frozenset(get_args(DnsRecordType))


def rrsets_from_values(rows: Iterable[tuple[str, str, int, str]]) -> list[DnsRecord]:
    """RRsets from a provider that stores one value per record (OVHcloud, Scaleway).

    ``rows`` are ``(name, type, ttl, value)``; they are grouped by name and type, in that order. The
    apex ``""`` becomes ``@``, the RRset's ttl is the smallest of its rows (0, the zone's default, is
    None), and types Legion does not model are left out.
    """
    grouped: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for name, type_, ttl, value in rows:
        if type_ in _DNS_RECORD_TYPES:
            grouped.setdefault((name or "@", type_), []).append((ttl, value))
    return [
        DnsRecord(
            name=name,
            type=cast(DnsRecordType, type_),
            ttl=min(ttl for ttl, _ in members) or None,
            values=tuple(value for _, value in members),
        )
        for (name, type_), members in sorted(grouped.items())
    ]


# --------------------------------------------------------------------------------------------------
# Catalog


@dataclass(frozen=True)
class CatalogPrice:
    location: str
    hourly: Decimal
    monthly: Decimal
    per_tb_traffic: Decimal | None = None
    """Outgoing traffic beyond the included amount, per TB (Hetzner)."""


@dataclass(frozen=True)
class CatalogAddon:
    """An address priced per location: ``primary_ipv4`` / ``primary_ipv6`` and ``floating_ipv4`` /
    ``floating_ipv6`` at Hetzner. ``hourly`` is 0 where only a monthly price is published (floating
    IPs): every started calendar month then costs the monthly price."""

    name: str
    location: str
    hourly: Decimal
    monthly: Decimal


@dataclass(frozen=True)
class CatalogServerType:
    name: str
    cores: int
    memory_gb: float
    disk_gb: int
    arch: Literal["x86", "arm"]
    prices: tuple[CatalogPrice, ...]
    locations: tuple[str, ...]
    deprecated: bool = False
    description: str | None = None
    block_storage: bool = False
    """True when the root disk is a block volume sized at create time (Scaleway PLAY2/PRO2): then
    ``disk_gb`` is the local disk (often 0) and any disk minimum can be met."""

    def price_in(self, location: str) -> CatalogPrice | None:
        return next((p for p in self.prices if p.location == location), None)

    def available_in(self, location: str) -> bool:
        return not self.deprecated and location in self.locations


@dataclass(frozen=True)
class CatalogLocation:
    name: str
    city: str
    country: str
    description: str | None = None


@dataclass(frozen=True)
class CatalogImage:
    """A bootable system image. ``id`` is what the provider's create call takes; ``name`` is the
    stable human name (``debian-12``, ``debian_bookworm``, ``Debian 12``). ``locations`` empty means
    every location."""

    id: str
    name: str
    os_flavor: str
    os_version: str
    arch: Literal["x86", "arm"] = "x86"
    locations: tuple[str, ...] = ()
    deprecated: bool = False

    def available_in(self, location: str) -> bool:
        return not self.deprecated and (not self.locations or location in self.locations)


@dataclass(frozen=True)
class Catalog:
    """What a provider sells: server types with prices, locations and system images."""

    provider: str
    currency: str
    server_types: tuple[CatalogServerType, ...]
    locations: tuple[CatalogLocation, ...]
    images: tuple[CatalogImage, ...]
    source: Literal["embedded", "live"] = "live"
    fetched_at: datetime | None = None
    addons: tuple[CatalogAddon, ...] = ()

    def server_type(self, name: str) -> CatalogServerType | None:
        return next((t for t in self.server_types if t.name == name), None)

    def location(self, name: str) -> CatalogLocation | None:
        return next((loc for loc in self.locations if loc.name == name), None)

    def addon(self, name: str, location: str) -> CatalogAddon | None:
        return next((a for a in self.addons if a.name == name and a.location == location), None)

    def image(self, name_or_id: str) -> CatalogImage | None:
        return next((i for i in self.images if name_or_id in (i.name, i.id)), None)


# --------------------------------------------------------------------------------------------------
# Billing


@dataclass(frozen=True)
class BillingPeriod:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValidationError(f"billing period ends ({self.end}) before it starts ({self.start})")


Day = date
"""``date`` under a name the ``BillingEntry.date`` field does not shadow."""


@dataclass(frozen=True)
class BillingEntry:
    """One line of what a provider says it billed (usage or invoice), amount without tax.

    ``period_start``/``period_end`` bound the charge period the line covers (end exclusive), when
    the provider says; ``resource_name`` and ``sku`` are the provider's own words for the line.
    """

    provider: str
    id: str
    date: date
    amount: Decimal
    currency: str
    description: str | None = None
    resource_id: str | None = None
    period_start: Day | None = None
    period_end: Day | None = None
    resource_name: str | None = None
    sku: str | None = None


# --------------------------------------------------------------------------------------------------
# Rate limits


@dataclass(frozen=True)
class RateLimitInfo:
    """The provider's last published rate-limit budget (Hetzner ``RateLimit-*`` headers).

    ``reset`` is the unix time at which the budget is full again.
    """

    limit: int | None
    remaining: int | None
    reset: float | None
