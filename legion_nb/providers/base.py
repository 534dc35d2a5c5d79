"""The provider adapter contract: capabilities, provider-neutral domain records, the adapter protocol.

The engine never speaks a provider's wire format. It speaks this module: frozen records that mean the
same thing on Hetzner, Scaleway and OVH, and one :class:`ProviderAdapter` protocol that each provider
package implements over an injected ``httpx.AsyncClient`` (the transport is the seam: unit tests pass
``httpx.MockTransport``, integration tests point the client at the sandbox).

Contract for adapter authors (``legion_nb.providers.<name>``):

* The package exports ``DESCRIPTOR: ProviderDescriptor``; the registry finds adapters through it.
  ``DESCRIPTOR.factory(client, credentials)`` builds the adapter; it performs no I/O.
* Every call is ``async`` and either returns a record from this module or raises a
  :class:`legion_nb.errors.ProviderError` subclass. Foreign exceptions never escape: every request
  goes through ``http.ApiClient``, which maps them (with the adapter's error-body parser) and
  applies the broker's per-request read retries (``http.READ_RETRY``).
* A call the provider cannot do at all raises :class:`CapabilityMissingError` via
  :func:`require_capability` before any I/O, so the engine can plan around it (OVH has no provider
  firewall: the cluster firewall is then enforced on the node).
* Mutations are sent ONCE. A mutation whose outcome is unknown (timeout or dropped connection after
  the request was written, 5xx) raises ``http.OutcomeUnknownError``; ``resilience.py`` settles it by
  re-reading the provider. Adapters never retry mutations themselves.
* Long-running provider work is returned as :class:`Operation` data, never awaited inside the
  adapter. :meth:`ProviderAdapter.poll_operations` reads the state of many operations at once, so the
  broker can poll every waiter with one request per tick (Hetzner ``GET /actions?id=..&id=..``).
  Providers without an action model (Scaleway, OVH) return :func:`server_state_operation` data whose
  ``kind`` names the awaited resource state (e.g. ``"server_running"``) and answer polls by reading
  the resource.
* Everything Legion creates carries :class:`OwnershipLabels` (labels, or ``key=value`` tags where the
  provider has only tags, or :func:`encode_owned_name` where it has neither), so that a resource can
  be found again by labels after a crash.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol, cast, get_args, runtime_checkable

from legion_nb.errors import (
    CapabilityMissingError,
    ProviderAuthError,
    ProviderConflictError,
    ProviderError,
    ValidationError,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "LEGION_ID_LABEL",
    "LEGION_MANAGED_LABEL",
    "AwaitedServerState",
    "BillingEntry",
    "BillingPeriod",
    "Capability",
    "Catalog",
    "CatalogImage",
    "CatalogLocation",
    "CatalogPrice",
    "CatalogServerType",
    "DnsRecord",
    "DnsRecordType",
    "DnsZone",
    "Firewall",
    "FirewallRule",
    "FloatingIp",
    "Operation",
    "OperationFailedError",
    "OperationState",
    "OperationStatus",
    "OwnershipLabels",
    "PendingServer",
    "PortRange",
    "ProviderAdapter",
    "ProviderCredentials",
    "ProviderDescriptor",
    "RateLimitInfo",
    "Server",
    "ServerSpec",
    "ServerStatus",
    "SshKey",
    "UniquenessConflictError",
    "capability_missing",
    "decode_owned_name",
    "deterministic_name",
    "encode_owned_name",
    "labels_from_tags",
    "labels_match",
    "require_capability",
    "rrsets_from_values",
    "server_state_operation",
]


# --------------------------------------------------------------------------------------------------
# Capabilities


class Capability(enum.StrEnum):
    """What a provider can do at all. An adapter's ``capabilities`` is a frozenset of these."""

    COMPUTE = "compute"
    SSH_KEYS = "ssh_keys"
    FIREWALL = "firewall"
    FLOATING_IP = "floating_ip"
    DNS = "dns"
    BILLING = "billing"
    REBUILD = "rebuild"
    RESCUE = "rescue"


_CAPABILITY_FALLBACK: dict[Capability, str] = {
    Capability.FIREWALL: "enforce the cluster firewall on the node instead",
    Capability.FLOATING_IP: "use the server's own address instead",
    Capability.DNS: "host the DNS zone at another provider",
    Capability.BILLING: "read costs from the provider's console",
    Capability.REBUILD: "delete and recreate the server instead",
    Capability.RESCUE: "use the provider's console",
    Capability.SSH_KEYS: "pass the key in user data instead",
    Capability.COMPUTE: "choose another provider for servers",
}


def require_capability(provider: str, capabilities: frozenset[Capability], needed: Capability) -> None:
    """Raise :class:`CapabilityMissingError` unless ``needed`` is among ``capabilities``.

    Adapters call this first thing in every capability-bound method, before any I/O, so that a
    missing capability never half-creates anything.
    """
    if needed not in capabilities:
        raise capability_missing(provider, needed)


def capability_missing(provider: str, missing: Capability) -> CapabilityMissingError:
    """The one-line error for a capability the provider lacks, with what to do instead."""
    return CapabilityMissingError(
        provider,
        f"has no {missing.value.replace('_', ' ')} capability; {_CAPABILITY_FALLBACK[missing]}",
        provider_code=f"no_{missing.value}",
    )


# --------------------------------------------------------------------------------------------------
# Errors the contract adds to the tree


class UniquenessConflictError(ProviderConflictError):
    """The provider refused a create because a resource with that unique key (name, fingerprint)
    already exists. After an ambiguous create this PROVES the first attempt landed: resilience reads
    the resource back instead of failing. Adapters raise it from their error parser."""

    code = "provider_uniqueness"


# --------------------------------------------------------------------------------------------------
# Ownership

LEGION_MANAGED_LABEL = "legion/managed"
LEGION_ID_LABEL = "legion/id"

_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class OwnershipLabels:
    """The two labels that mark a provider resource as Legion's: ``legion/managed=true`` and
    ``legion/id=<uuid>``.

    The id is minted by the engine when it first plans the resource and stored with its intent, so
    that after a crash or an ambiguous create the resource can be found by labels alone.
    """

    legion_id: str

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.legion_id)
        except ValueError as exc:
            raise ValidationError(f"legion id {self.legion_id!r} is not a UUID") from exc

    @classmethod
    def new(cls) -> OwnershipLabels:
        return cls(str(uuid.uuid4()))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> OwnershipLabels | None:
        """The ownership a resource's labels claim, or None when it is not Legion-managed."""
        if labels.get(LEGION_MANAGED_LABEL) != "true":
            return None
        legion_id = labels.get(LEGION_ID_LABEL)
        if legion_id is None:
            return None
        try:
            return cls(legion_id)
        except ValidationError:
            return None

    def as_labels(self) -> dict[str, str]:
        return {LEGION_MANAGED_LABEL: "true", LEGION_ID_LABEL: self.legion_id}

    def merged_into(self, labels: Mapping[str, str]) -> dict[str, str]:
        """``labels`` plus the ownership labels (which win over any clash)."""
        return {**labels, **self.as_labels()}

    def as_tags(self) -> tuple[str, ...]:
        """The labels as ``key=value`` strings, for providers with tags instead of labels."""
        return tuple(f"{key}={value}" for key, value in self.as_labels().items())


_OWNED_NAME_SEPARATOR = "--"


def encode_owned_name(name: str, labels: Mapping[str, str]) -> str:
    """The provider-side name of a resource that can hold neither labels nor tags (OVHcloud instances
    and SSH keys, Scaleway IAM SSH keys): ``name--<legion uuid>`` when ``labels`` carry ownership,
    else ``name`` unchanged.

    Writing the Legion id into the name is what lets resilience find such a resource again after an
    ambiguous create: exactly the resources whose name carries the id belong to the intent, however
    many others share the plain name. :func:`decode_owned_name` reads it back.
    """
    ownership = OwnershipLabels.from_labels(labels)
    return f"{name}{_OWNED_NAME_SEPARATOR}{ownership.legion_id}" if ownership else name


def decode_owned_name(provider_name: str) -> tuple[str, dict[str, str]]:
    """The plain name and the ownership labels that :func:`encode_owned_name` put into a provider-side
    name; a name without a UUID after its last ``--`` is someone else's and comes back as it is."""
    head, sep, tail = provider_name.rpartition(_OWNED_NAME_SEPARATOR)
    if sep and head:
        try:
            legion_id = str(uuid.UUID(tail))
        except ValueError:
            return provider_name, {}
        if legion_id == tail.lower():
            return head, OwnershipLabels(legion_id).as_labels()
    return provider_name, {}


def labels_from_tags(tags: Iterable[str]) -> dict[str, str]:
    """Read ``key=value`` tags back into labels; a tag without ``=`` becomes a key with value ``""``."""
    labels: dict[str, str] = {}
    for tag in tags:
        key, _, value = tag.partition("=")
        labels[key] = value
    return labels


def labels_match(labels: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """True when every wanted key is present with the wanted value (None matches everything)."""
    if not wanted:
        return True
    return all(labels.get(key) == value for key, value in wanted.items())


def deterministic_name(kind: str, name: str, legion_id: str | None = None) -> str:
    """A provider-safe, reproducible name for a resource Legion creates on the operator's behalf.

    ``deterministic_name("key", "fra-1", id)`` -> ``legion-key-fra-1-1a2b3c4d``. The same inputs
    always give the same name, so a re-run after a crash looks for, and finds, the same resource.
    """
    parts = ["legion", kind, name] + ([legion_id.split("-")[0]] if legion_id else [])
    raw = "-".join(parts).lower()
    return _NAME_UNSAFE.sub("-", raw).strip("-")[:63].rstrip("-")


# --------------------------------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True)
class ProviderCredentials:
    """Where a provider lives and the secrets that open it.

    ``secrets`` hold tokens and keys and never appear in a repr; ``options`` hold non-secret settings
    (Scaleway project id and zone, OVH service name). Key names per provider are listed by its
    :class:`ProviderDescriptor` (``secret_keys``, ``option_keys``).
    """

    provider: str
    endpoint: str
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        hidden = ", ".join(sorted(self.secrets))
        return (
            f"ProviderCredentials(provider={self.provider!r}, endpoint={self.endpoint!r}, "
            f"secrets=<redacted: {hidden}>, options={dict(self.options)!r})"
        )

    def secret(self, key: str) -> str:
        """The secret ``key``; a missing or empty one is an auth error naming the key, never the value."""
        value = self.secrets.get(key)
        if not value:
            raise ProviderAuthError(
                self.provider,
                f"credentials lack {key!r}; set them with `legion credentials set {self.provider}`",
            )
        return value

    def option(self, key: str, default: str | None = None) -> str:
        value = self.options.get(key, default)
        if not value:
            raise ProviderAuthError(
                self.provider,
                f"credentials lack option {key!r}; set it with `legion credentials set {self.provider}`",
            )
        return value


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


class OperationFailedError(ProviderError):
    """The provider ran the operation and reports that it failed."""

    code = "provider_operation_failed"

    @classmethod
    def from_state(cls, state: OperationState) -> OperationFailedError:
        op = state.operation
        target = f" on {op.resource_type} {op.resource_id}" if op.resource_id else ""
        return cls(
            op.provider,
            f"{op.kind}{target} failed: {state.error_message or 'no reason given'}",
            provider_code=state.error_code,
        )


@dataclass(frozen=True)
class PendingServer:
    """A server the provider accepted, plus the operations to wait for until it is running."""

    server: Server
    operations: tuple[Operation, ...] = ()


# --------------------------------------------------------------------------------------------------
# Firewalls and floating IPs


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
    provider: str
    id: str
    name: str
    rules: tuple[FirewallRule, ...] = ()
    applied_to: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FloatingIp:
    provider: str
    id: str
    name: str
    ip: str
    ip_type: Literal["ipv4", "ipv6"]
    server_id: str | None = None
    location: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


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

    def server_type(self, name: str) -> CatalogServerType | None:
        return next((t for t in self.server_types if t.name == name), None)

    def location(self, name: str) -> CatalogLocation | None:
        return next((loc for loc in self.locations if loc.name == name), None)

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


@dataclass(frozen=True)
class BillingEntry:
    provider: str
    id: str
    date: date
    amount: Decimal
    currency: str
    description: str | None = None
    resource_id: str | None = None


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


# --------------------------------------------------------------------------------------------------
# The adapter protocol


@runtime_checkable
class ProviderAdapter(Protocol):
    """One cloud provider, provider-neutral. See the module docstring for the rules.

    Every method raises a :class:`legion_nb.errors.ProviderError` subclass on failure:
    ``ProviderAuthError`` (credentials), ``ProviderNotFoundError`` (no such id),
    ``ProviderConflictError`` (``UniquenessConflictError`` for a taken name),
    ``ProviderInvalidInputError`` (bad type, location, image), ``ProviderRateLimitedError`` (429),
    ``ProviderUnavailableError`` (5xx, unreachable; its subclass
    ``http.OutcomeUnknownError`` when a mutation may have landed), ``CapabilityMissingError``.
    """

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        """The budget the provider last reported, or None when it publishes none."""
        ...

    async def verify_credentials(self) -> None:
        """One cheap authenticated read; ``ProviderAuthError`` when the credentials are refused."""
        ...

    async def fetch_catalog(self) -> Catalog: ...

    # servers
    async def list_servers(self, labels: Mapping[str, str] | None = None) -> list[Server]: ...

    async def get_server(self, server_id: str) -> Server: ...

    async def find_servers_by_name(self, name: str) -> list[Server]: ...

    async def create_server(self, spec: ServerSpec) -> PendingServer:
        """Create and start a server. Returns once the provider accepted it; wait for the operations."""
        ...

    async def delete_server(self, server_id: str) -> Operation | None:
        """Delete; None when the provider finishes synchronously. A missing server is NotFound."""
        ...

    async def reboot_server(self, server_id: str) -> Operation | None: ...

    async def rebuild_server(self, server_id: str, image: str) -> Operation | None: ...

    async def power_on(self, server_id: str) -> Operation | None: ...

    async def power_off(self, server_id: str) -> Operation | None: ...

    async def poll_operations(self, operations: Sequence[Operation]) -> list[OperationState]:
        """The current state of each operation, in order, with as few requests as the provider
        allows. An operation whose resource vanished as intended (delete) reports success."""
        ...

    # ssh keys
    async def list_ssh_keys(self) -> list[SshKey]: ...

    async def create_ssh_key(self, name: str, public_key: str, labels: Mapping[str, str]) -> SshKey: ...

    async def delete_ssh_key(self, key_id: str) -> None: ...

    # firewalls
    async def list_firewalls(self, labels: Mapping[str, str] | None = None) -> list[Firewall]: ...

    async def create_firewall(
        self, name: str, rules: Sequence[FirewallRule], labels: Mapping[str, str]
    ) -> Firewall: ...

    async def set_firewall_rules(self, firewall_id: str, rules: Sequence[FirewallRule]) -> list[Operation]:
        """Replace every rule of the firewall."""
        ...

    async def apply_firewall(self, firewall_id: str, server_ids: Sequence[str]) -> list[Operation]:
        """Make the firewall applied to exactly ``server_ids``: apply where missing, remove where
        stale. Level-based, so the reconciler can call it with the full desired set every time."""
        ...

    async def delete_firewall(self, firewall_id: str) -> None:
        """Delete. A firewall still applied to servers is a ``ProviderConflictError``: call
        ``apply_firewall(id, [])`` and wait for its operations first."""
        ...

    # floating ips
    async def list_floating_ips(self, labels: Mapping[str, str] | None = None) -> list[FloatingIp]: ...

    async def create_floating_ip(
        self, name: str, ip_type: Literal["ipv4", "ipv6"], location: str, labels: Mapping[str, str]
    ) -> FloatingIp: ...

    async def assign_floating_ip(self, floating_ip_id: str, server_id: str | None) -> Operation | None:
        """Assign to ``server_id``, or unassign when it is None."""
        ...

    async def delete_floating_ip(self, floating_ip_id: str) -> None: ...

    # dns
    async def list_zones(self) -> list[DnsZone]: ...

    async def create_zone(self, name: str, ttl: int, labels: Mapping[str, str]) -> DnsZone: ...

    async def delete_zone(self, zone: str) -> None: ...

    async def list_records(self, zone: str) -> list[DnsRecord]:
        """Every RRset of the zone (``zone`` is the zone's name)."""
        ...

    async def set_records(
        self, zone: str, name: str, type: DnsRecordType, ttl: int | None, values: Sequence[str]
    ) -> None:
        """Upsert one RRset: afterwards (name, type) holds exactly ``values``."""
        ...

    async def delete_records(self, zone: str, name: str, type: DnsRecordType) -> None:
        """Remove one RRset; removing an absent RRset is not an error."""
        ...

    # billing
    async def list_billing(self, period: BillingPeriod) -> list[BillingEntry]: ...


AdapterFactory = Callable[["httpx.AsyncClient", ProviderCredentials], ProviderAdapter]


@dataclass(frozen=True)
class ProviderDescriptor:
    """How the registry knows a provider: exported as ``DESCRIPTOR`` by each provider package.

    ``secret_keys`` and ``option_keys`` name the credential fields (``legion credentials set``
    validates against them); ``default_endpoint`` is the real API base URL.
    """

    name: str
    title: str
    capabilities: frozenset[Capability]
    default_endpoint: str
    secret_keys: tuple[str, ...]
    factory: AdapterFactory = field(repr=False)
    option_keys: tuple[str, ...] = ()
