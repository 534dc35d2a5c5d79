"""The provider adapter contract: capabilities, credentials, the errors it adds, the adapter protocol.

The engine never speaks a provider's wire format. It speaks the frozen records of
:mod:`legion_nb.providers.records`, which mean the same thing on Hetzner, Scaleway and OVH, and the one
:class:`ProviderAdapter` protocol of this module, which each provider package implements over an
injected ``httpx.AsyncClient`` (the transport is the seam: unit tests pass ``httpx.MockTransport``,
integration tests point the client at the sandbox).

Contract for adapter authors (``legion_nb.providers.<name>``):

* The package exports ``DESCRIPTOR: ProviderDescriptor``; the registry finds adapters through it.
  ``DESCRIPTOR.factory(client, credentials)`` builds the adapter; it performs no I/O.
* Every call is ``async`` and either returns a record of :mod:`~legion_nb.providers.records` or raises a
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
  Providers without an action model (Scaleway, OVH) return
  :func:`~legion_nb.providers.records.server_state_operation` data whose
  ``kind`` names the awaited resource state (e.g. ``"server_running"``) and answer polls by reading
  the resource.
* Everything Legion creates carries :class:`~legion_nb.providers.ownership.OwnershipLabels` (labels,
  or ``key=value`` tags where the provider has only tags, or an owned name where it has neither), so
  that a resource can be found again by labels after a crash.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from legion_nb.errors import CapabilityMissingError, ProviderAuthError, ProviderConflictError, ProviderError
from legion_nb.providers.records import (
    BillingEntry,
    BillingPeriod,
    Catalog,
    DnsRecord,
    DnsRecordType,
    DnsZone,
    Firewall,
    FirewallRule,
    Operation,
    OperationState,
    PendingServer,
    PublicIp,
    PublicIpKind,
    RateLimitInfo,
    Server,
    ServerSpec,
    SshKey,
)
from legion_nb.readonly import freeze_mappings

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AdapterFactory",
    "Capability",
    "OperationFailedError",
    "ProviderAdapter",
    "ProviderCredentials",
    "ProviderDescriptor",
    "UniquenessConflictError",
    "capability_missing",
    "require_capability",
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

    def __post_init__(self) -> None:
        freeze_mappings(self, "secrets", "options")

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

    # public ips: floating and primary addresses kept as resources of their own
    async def list_public_ips(self, labels: Mapping[str, str] | None = None) -> list[PublicIp]:
        """Every floating and primary IP of the account (``labels``: only those carrying them). The
        billing ledger prices them apart from servers where the provider does (Hetzner)."""
        ...

    async def create_floating_ip(
        self, name: str, ip_type: Literal["ipv4", "ipv6"], location: str, labels: Mapping[str, str]
    ) -> PublicIp: ...

    async def assign_floating_ip(self, floating_ip_id: str, server_id: str | None) -> Operation | None:
        """Assign to ``server_id``, or unassign when it is None."""
        ...

    async def delete_public_ip(self, kind: PublicIpKind, ip_id: str) -> None:
        """Delete. An address still assigned to a server is a ``ProviderConflictError``."""
        ...

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

    async def list_invoices(self, period: BillingPeriod) -> list[BillingEntry]:
        """Invoice totals (without tax) whose billing period overlaps ``period``, one entry each;
        empty where the provider publishes no invoices through its API."""
        ...

    async def forecast_billing(self) -> list[BillingEntry]:
        """The provider's own month-end forecast lines for the running month; empty where the
        provider publishes no forecast."""
        ...


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
