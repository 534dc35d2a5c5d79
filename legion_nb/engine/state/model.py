"""The typed, immutable records of Legion's local state.

The state separates three views of every resource, as the seed does:

* **planned** (:class:`Scheme`): what the operator asked for; changed only by planning actions;
* **tracked** (:class:`Tracked`): what Legion believes it owns, written by provisioning (and the
  "create pending" intents written *before* a provider create call, so that a crash between the
  call and its record is settled by a lookup instead of a duplicate create);
* **observed** (:class:`ObservedProvider`): what the providers said when last read.

Beside them: provider credentials (secret fields never shown in a repr), refreshed provider catalogs,
the billing ledger, the operation log and the deployment material: each cluster's CA and operator
certificate, each node's secrets and disk-unlock (NBDE) record.

Every record is a frozen, slotted dataclass. Collections are tuples, or mappings keyed by the record's
identity, held as read-only dicts (:mod:`legion_nb.readonly`) so nobody mutates them in place, whoever
passed them in: a change rebuilds only the path from the root to the changed record with
:func:`dataclasses.replace` and shares everything else, so keeping the "last durable state" is keeping
a reference and comparing two states is cheap where they share.

The JSON codec lives at the bottom (:func:`encode_state`, :func:`decode_state`) with the schema
migration table :data:`MIGRATIONS`.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson

from legion_nb.engine.state.codec import IncrementalEncoder, codec_for, dumps
from legion_nb.errors import StateFormatError
from legion_nb.readonly import freeze_mappings

__all__ = [
    "MIGRATIONS",
    "PROVIDERS",
    "SCHEMA_VERSION",
    "BillingEntry",
    "ClusterMaterial",
    "CreatePending",
    "DeploymentMaterial",
    "LegionState",
    "NodeExecution",
    "NodeMaterial",
    "NodeNbde",
    "ObservedDnsZone",
    "ObservedFirewall",
    "ObservedProvider",
    "ObservedPublicIp",
    "ObservedServer",
    "OperationLogEntry",
    "PlannedAccess",
    "PlannedCluster",
    "PlannedDnsHost",
    "PlannedDnsZone",
    "PlannedDomain",
    "PlannedFirewall",
    "PlannedRule",
    "PlannedServer",
    "PlannedStream",
    "ProviderCatalog",
    "Scheme",
    "StoredCredentials",
    "Tracked",
    "TrackedDnsRecord",
    "TrackedDnsZone",
    "TrackedDomain",
    "TrackedFirewall",
    "TrackedFloatingIp",
    "TrackedServer",
    "TrackedSshKey",
    "decode_state",
    "empty_state",
    "encode_state",
    "state_encoder",
    "synthetic_state",
    "utcnow",
]

Provider = Literal["hetzner", "ovh", "scaleway"]
PROVIDERS: tuple[Provider, ...] = ("hetzner", "ovh", "scaleway")
Role = Literal["cluster", "satellite"]
ExecutionStatus = Literal["running", "succeeded", "failed", "interrupted"]
Direction = Literal["in", "out"]
Protocol = Literal["tcp", "udp", "icmp", "esp", "gre"]
NbdeMode = Literal["local", "tang", "quorum"]

SCHEMA_VERSION = 2
DEFAULT_CLUSTER = "default"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- planned scheme --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedServer:
    """A server the operator wants. Empty ``server_type``/``location``/``image`` mean "policy default":
    the provider catalog policy picks them at materialization time."""

    name: str
    provider: Provider
    server_type: str = ""
    location: str = ""
    image: str = ""
    role: Role = "cluster"


@dataclass(frozen=True, slots=True)
class PlannedCluster:
    """A Tribes cluster: its servers keyed by name. A single server is a one-node cluster."""

    name: str
    servers: Mapping[str, PlannedServer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "servers")


@dataclass(frozen=True, slots=True)
class PlannedDomain:
    """A registered domain Legion looks after at a provider (registration, delegation)."""

    name: str
    provider: Provider


@dataclass(frozen=True, slots=True)
class PlannedDnsZone:
    zone: str
    provider: Provider


@dataclass(frozen=True, slots=True)
class PlannedStream:
    """A Sender stream session the operator wants on a satellite: bytes pushed to ``endpoint``
    (a URL such as ``tcp://host:port``). ``running`` False keeps it planned but stopped."""

    name: str
    satellite: str
    endpoint: str
    running: bool = True


@dataclass(frozen=True, slots=True)
class PlannedDnsHost:
    """A DNS name in a zone that should point at servers' endpoints. Not a resource: an input to the
    zone's record synthesis. ``host`` is relative to the zone; ``@`` is the apex."""

    host: str
    zone: str
    servers: tuple[str, ...]

    @property
    def fqdn(self) -> str:
        return host_fqdn(self.host, self.zone)


def host_fqdn(host: str, zone: str) -> str:
    """The identity of a DNS host: its fully qualified name (the zone itself for ``@``)."""
    return zone if host == "@" else f"{host}.{zone}"


@dataclass(frozen=True, slots=True)
class PlannedRule:
    """One rule. ``port`` is ``"22"`` or ``"1024-2048"`` for tcp/udp, empty otherwise; ``sources`` are
    CIDRs (for "in") or destinations (for "out")."""

    direction: Direction
    protocol: Protocol
    port: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedFirewall:
    name: str
    provider: Provider
    rules: tuple[PlannedRule, ...] = ()
    servers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedAccess:
    """Who may reach the nodes' operator doors (SSH and the admin API): the operator's CIDRs, in
    canonical form, IPv4 first. Empty means "not planned": the cluster firewall then falls back to
    ``LEGION_OPERATOR_CIDRS`` or, without it, opens those doors to anywhere with a warning."""

    operator_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scheme:
    """The planned scheme: the operator's intent, changed only by :mod:`legion_nb.engine.planning`."""

    clusters: Mapping[str, PlannedCluster] = field(default_factory=dict)
    domains: Mapping[str, PlannedDomain] = field(default_factory=dict)
    dns_zones: Mapping[str, PlannedDnsZone] = field(default_factory=dict)
    dns_hosts: Mapping[str, PlannedDnsHost] = field(default_factory=dict)
    firewalls: Mapping[str, PlannedFirewall] = field(default_factory=dict)
    access: PlannedAccess = field(default_factory=PlannedAccess)
    streams: Mapping[str, PlannedStream] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "clusters", "domains", "dns_zones", "dns_hosts", "firewalls", "streams")

    def servers(self) -> dict[str, tuple[str, PlannedServer]]:
        """Every planned server by name, with its cluster name."""
        return {
            name: (cluster.name, server)
            for cluster in self.clusters.values()
            for name, server in cluster.servers.items()
        }

    def find_server(self, name: str) -> tuple[str, PlannedServer] | None:
        for cluster in self.clusters.values():
            server = cluster.servers.get(name)
            if server is not None:
                return cluster.name, server
        return None


# -- tracked resources -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeExecution:
    """The durable record of a long node operation (install, reinstall...): the crash-recovery unit.
    On start-up, ``running`` executions become ``interrupted`` and retryable."""

    operation: str
    phase: str
    status: ExecutionStatus
    started: dt.datetime
    updated: dt.datetime
    retryable: bool = False
    error: str | None = None
    phase_done: bool = False
    """``phase`` has finished (its end was persisted); a resume starts at the phase after it."""


@dataclass(frozen=True, slots=True)
class TrackedSshKey:
    """A provider SSH key created as a side effect of provisioning a server."""

    provider_id: str
    name: str
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class TrackedFloatingIp:
    provider_id: str
    address: str
    family: Literal["ipv4", "ipv6"] = "ipv4"


@dataclass(frozen=True, slots=True)
class TrackedServer:
    name: str
    provider: Provider
    provider_id: str
    created: dt.datetime
    cluster: str = DEFAULT_CLUSTER
    role: Role = "cluster"
    server_type: str = ""
    location: str = ""
    image: str = ""
    ipv4: str | None = None
    ipv6: str | None = None
    status: str = "unknown"
    labels: Mapping[str, str] = field(default_factory=dict)
    execution: NodeExecution | None = None
    ssh_keys: tuple[TrackedSshKey, ...] = ()
    floating_ips: tuple[TrackedFloatingIp, ...] = ()

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


@dataclass(frozen=True, slots=True)
class TrackedDnsRecord:
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TrackedDnsZone:
    zone: str
    provider: Provider
    provider_id: str
    records: tuple[TrackedDnsRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackedFirewall:
    name: str
    provider: Provider
    provider_id: str
    rules: tuple[PlannedRule, ...] = ()
    servers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackedDomain:
    name: str
    provider: Provider
    provider_id: str
    status: str = "unknown"


@dataclass(frozen=True, slots=True)
class CreatePending:
    """An intent written BEFORE a provider create call: if Legion dies before recording the result,
    the next run looks the resource up by these labels/name instead of creating it twice."""

    key: str
    provider: Provider
    kind: Literal["server", "dns_zone", "firewall", "domain", "ssh_key", "floating_ip"]
    name: str
    started: dt.datetime
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


@dataclass(frozen=True, slots=True)
class Tracked:
    servers: Mapping[str, TrackedServer] = field(default_factory=dict)
    dns_zones: Mapping[str, TrackedDnsZone] = field(default_factory=dict)
    firewalls: Mapping[str, TrackedFirewall] = field(default_factory=dict)
    domains: Mapping[str, TrackedDomain] = field(default_factory=dict)
    pending: Mapping[str, CreatePending] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "servers", "dns_zones", "firewalls", "domains", "pending")


# -- observed provider facts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservedServer:
    """One server as a provider last reported it. ``seen`` is when that report was taken: the
    refresh's listing, or a later read of the server by its own actor that changed what the
    refresh recorded (its status or addresses). It is the server's own time, not the provider's
    ``refreshed``: that one says which resources a listing could have seen, and moving it on one
    server's read would call every server created since the last listing gone."""

    provider_id: str
    name: str
    status: str = "unknown"
    server_type: str = ""
    location: str = ""
    image: str = ""
    ipv4: str | None = None
    ipv6: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    seen: dt.datetime | None = None

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


@dataclass(frozen=True, slots=True)
class ObservedDnsZone:
    zone: str
    provider_id: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


@dataclass(frozen=True, slots=True)
class ObservedFirewall:
    name: str
    provider_id: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")


@dataclass(frozen=True, slots=True)
class ObservedPublicIp:
    """A public address the provider keeps as a resource of its own: ``floating`` (Hetzner's
    floating IPs, Scaleway's flexible IPs) or ``primary`` (Hetzner's primary IPs). Kept because one
    Legion labelled and left assigned to nothing costs money and belongs in the orphan list;
    ``server_id`` is the provider id of the server it is assigned to now (None: to nothing).
    ``legion_id`` is the Legion id its ownership labels carry, judged when it was read ('': they
    claim none, the address is someone else's)."""

    provider_id: str
    kind: Literal["floating", "primary"]
    address: str
    name: str = ""
    family: Literal["ipv4", "ipv6"] = "ipv4"
    server_id: str | None = None
    location: str = ""
    legion_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "labels")

    @property
    def resource_id(self) -> str:
        """The address as the billing reconciliation and ``orphan_delete`` name it:
        ``<kind>_ip/<provider id>`` (a floating and a primary IP may share a provider id)."""
        return f"{self.kind}_ip/{self.provider_id}"


@dataclass(frozen=True, slots=True)
class ObservedProvider:
    """What one provider reported when last read; servers and firewalls keyed by provider id, zones by
    zone name, public IPs by :attr:`ObservedPublicIp.resource_id`. ``refreshed`` is None until the
    first refresh (then absence means "gone"). A state written before public IPs were read has
    none: they appear with the next refresh."""

    provider: Provider
    refreshed: dt.datetime | None = None
    servers: Mapping[str, ObservedServer] = field(default_factory=dict)
    dns_zones: Mapping[str, ObservedDnsZone] = field(default_factory=dict)
    firewalls: Mapping[str, ObservedFirewall] = field(default_factory=dict)
    public_ips: Mapping[str, ObservedPublicIp] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "servers", "dns_zones", "firewalls", "public_ips")


# -- credentials, catalogs, ledgers ----------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class StoredCredentials:
    """API credentials of one provider. ``secrets`` never appears in a repr (or anywhere but the
    encrypted state and the adapter that signs requests)."""

    provider: Provider
    endpoint: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "secrets")

    def __repr__(self) -> str:
        fields = ", ".join(sorted(self.secrets))
        return (
            f"StoredCredentials(provider={self.provider!r}, endpoint={self.endpoint!r}, secrets=[{fields}])"
        )

    def to_json(self) -> dict[str, Any]:
        """The non-secret facts: used whenever credentials would otherwise be serialized for output."""
        return {"provider": self.provider, "endpoint": self.endpoint, "fields": sorted(self.secrets)}


@dataclass(frozen=True, slots=True)
class ProviderCatalog:
    """A provider's catalog as fetched (raw-ish JSON: server types, locations, images, prices)."""

    provider: Provider
    fetched: dt.datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "data")


@dataclass(frozen=True, slots=True)
class BillingEntry:
    provider: Provider
    resource: str
    period: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class OperationLogEntry:
    id: str
    kind: str
    started: dt.datetime
    status: Literal["running", "succeeded", "failed", "interrupted", "cancelled"]
    finished: dt.datetime | None = None
    summary: str = ""


# -- deployment material -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class NodeNbde:
    """What Legion last configured for a node's disk unlock (NBDE), compared with the cluster-derived
    policy by the repair selection. The recovery passphrase (the human fallback) lives only here."""

    mode: NbdeMode = "local"
    local_boot_key: bool = True
    tang_peers: tuple[str, ...] = ()
    threshold: int = 1
    reconciled: dt.datetime | None = None
    recovery_passphrase: str = ""

    def __repr__(self) -> str:
        return f"NodeNbde(mode={self.mode!r}, peers={list(self.tang_peers)}, threshold={self.threshold})"

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "local_boot_key": self.local_boot_key,
            "tang_peers": list(self.tang_peers),
            "threshold": self.threshold,
            "reconciled": self.reconciled.isoformat() if self.reconciled else None,
        }


@dataclass(frozen=True, slots=True, repr=False)
class NodeMaterial:
    """A node's secrets as the deployment keeps them: ``security`` is ``NodeSecurity.to_dict()``."""

    node: str
    security: Mapping[str, Any] = field(default_factory=dict)
    nbde: NodeNbde | None = None
    execution: NodeExecution | None = None
    """Only while an ``add`` provisions a server that is not tracked yet; the write that tracks the
    server moves it onto ``TrackedServer.execution``."""

    def __post_init__(self) -> None:
        freeze_mappings(self, "security")

    def __repr__(self) -> str:
        return f"NodeMaterial(node={self.node!r}, security=[{', '.join(sorted(self.security))}])"

    def to_json(self) -> dict[str, Any]:
        nbde = self.nbde.to_json() if self.nbde else None
        return {"node": self.node, "nbde": nbde, "execution": self.execution}


@dataclass(frozen=True, slots=True, repr=False)
class ClusterMaterial:
    """A cluster's CA and operator certificate: ``security`` is ``ClusterSecurity.to_dict()``."""

    cluster: str
    security: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "security")

    def __repr__(self) -> str:
        return f"ClusterMaterial(cluster={self.cluster!r})"

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster}


@dataclass(frozen=True, slots=True)
class DeploymentMaterial:
    """Per-cluster and per-node deployment secrets, apart from the tracked records so that nothing
    that renders a tracked server can leak a key."""

    clusters: Mapping[str, ClusterMaterial] = field(default_factory=dict)
    nodes: Mapping[str, NodeMaterial] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_mappings(self, "clusters", "nodes")


# -- the root --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegionState:
    schema_version: int = SCHEMA_VERSION
    scheme: Scheme = field(default_factory=Scheme)
    tracked: Tracked = field(default_factory=Tracked)
    observed: Mapping[str, ObservedProvider] = field(default_factory=dict)
    credentials: Mapping[str, StoredCredentials] = field(default_factory=dict)
    catalogs: Mapping[str, ProviderCatalog] = field(default_factory=dict)
    billing: tuple[BillingEntry, ...] = ()
    operations: tuple[OperationLogEntry, ...] = ()
    deployment: DeploymentMaterial = field(default_factory=DeploymentMaterial)
    repair_attempts: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """The scheduled repairs' budget: per node, when each attempt within the last hour began
    (seconds since the epoch, oldest first). Kept here so that no restart, new unlock or killed
    process grants a node whose fault a repair does not fix a fresh budget."""

    def __post_init__(self) -> None:
        freeze_mappings(self, "observed", "credentials", "catalogs", "repair_attempts")


def empty_state() -> LegionState:
    return LegionState()


# -- codec and migrations --------------------------------------------------------------------

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _v1_add_access(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added ``scheme.access`` (planned operator CIDRs). Nothing to convert: a version 1
    state planned none. The version bump exists so that a legion-nb that predates the field refuses a
    newer file with "upgrade legion-nb" instead of an unknown-field error."""
    scheme = data.get("scheme")
    if type(scheme) is dict:
        scheme.setdefault("access", {"operator_cidrs": []})
    return data


#: ``from_version -> function(payload dict) -> payload dict of from_version + 1``; applied in order on
#: decode. Add an entry (and bump :data:`SCHEMA_VERSION`) whenever a change is not just a new field with
#: a default, or when a new field must make older legion-nb refuse the file with "upgrade legion-nb"
#: rather than misread it.
MIGRATIONS: dict[int, Migration] = {1: _v1_add_access}

_STATE_CODEC = codec_for(LegionState)


def encode_state(state: LegionState) -> bytes:
    """Compact JSON with a stable key order (sorted: equal states give equal bytes).

    orjson rather than :mod:`json`: serializing a 1,000-server state is about 8x faster with it, and
    every durable plan change pays this cost.
    """
    return dumps(_STATE_CODEC.encode(state))


def state_encoder() -> Callable[[LegionState], bytes]:
    """:func:`encode_state` for a writer that saves one state after another: the same bytes, with
    the records a commit left alone reused from the previous save (see
    :class:`~legion_nb.engine.state.codec.IncrementalEncoder`)."""
    return IncrementalEncoder(_STATE_CODEC)


def decode_state(payload: bytes, *, migrations: Mapping[int, Migration] | None = None) -> LegionState:
    """Decode, migrating older schema versions forward; a newer or unknown version is refused."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise StateFormatError(f"the state payload is not JSON ({exc.msg})") from exc
    if type(data) is not dict:
        raise StateFormatError("the state payload is not a JSON object: it was written by other software")
    data = migrate(data, MIGRATIONS if migrations is None else migrations)
    # Building tens of thousands of records would trigger several full cyclic-GC passes over a heap
    # that only grows; decoded records form no cycles, so the collector is paused meanwhile.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _STATE_CODEC.decode(data)
    finally:
        if paused:
            gc.enable()


def migrate(data: dict[str, Any], migrations: Mapping[int, Migration]) -> dict[str, Any]:
    version = data.get("schema_version", 1)
    if type(version) is not int or version < 1:
        raise StateFormatError(f"the state has an invalid schema_version {version!r}")
    target = max([SCHEMA_VERSION, *(v + 1 for v in migrations)])
    if version > target:
        raise StateFormatError(
            f"the state uses schema version {version}, newer than this legion-nb knows ({target}): "
            "upgrade legion-nb"
        )
    while version < target:
        step = migrations.get(version)
        if step is None:
            raise StateFormatError(f"no migration from state schema version {version}: upgrade legion-nb")
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


# -- synthetic states for tests and benchmarks -----------------------------------------------


def synthetic_state(servers: int, *, providers: tuple[Provider, ...] = PROVIDERS) -> LegionState:
    """A plausible state with ``servers`` planned AND tracked servers (plus observed facts, zones,
    hosts, a firewall per provider and a few ledger rows), for benchmarks and tests."""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    clusters: dict[str, dict[str, PlannedServer]] = {}
    tracked: dict[str, TrackedServer] = {}
    observed: dict[Provider, dict[str, ObservedServer]] = {p: {} for p in providers}
    for i in range(servers):
        provider = providers[i % len(providers)]
        name = f"node-{i:05d}"
        cluster = f"c{i // 50:03d}"
        clusters.setdefault(cluster, {})[name] = PlannedServer(
            name=name, provider=provider, server_type="cx22", location="fsn1", image="debian-12"
        )
        labels = {"legion/managed": "true", "legion/id": f"00000000-0000-4000-8000-{i:012d}"}
        ipv4 = f"127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}"
        tracked[name] = TrackedServer(
            name=name,
            provider=provider,
            provider_id=str(100000 + i),
            created=now,
            cluster=cluster,
            server_type="cx22",
            location="fsn1",
            image="debian-12",
            ipv4=ipv4,
            ipv6="::1",
            status="running",
            labels=labels,
            execution=NodeExecution(
                operation="install", phase="ready", status="succeeded", started=now, updated=now
            ),
            ssh_keys=(
                TrackedSshKey(provider_id=str(900000 + i), name=f"legion-{name}", fingerprint="ab:cd"),
            ),
        )
        observed[provider][str(100000 + i)] = ObservedServer(
            provider_id=str(100000 + i),
            name=name,
            status="running",
            server_type="cx22",
            location="fsn1",
            image="debian-12",
            ipv4=ipv4,
            ipv6="::1",
            labels=labels,
        )
    names = sorted(tracked)
    zones = {
        f"zone{z}.example.org": PlannedDnsZone(zone=f"zone{z}.example.org", provider=providers[0])
        for z in range(3)
    }
    hosts = {
        h.fqdn: h
        for h in (
            PlannedDnsHost(host=f"www{k}", zone=f"zone{k % 3}.example.org", servers=tuple(names[k : k + 3]))
            for k in range(0, min(servers, 30), 3)
        )
    }
    firewalls = {
        f"fw-{p}": PlannedFirewall(
            name=f"fw-{p}",
            provider=p,
            rules=(PlannedRule(direction="in", protocol="tcp", port="22", sources=("0.0.0.0/0", "::/0")),),
            servers=tuple(n for n in names if tracked[n].provider == p)[:20],
        )
        for p in providers
    }
    return LegionState(
        scheme=Scheme(
            clusters={c: PlannedCluster(name=c, servers=s) for c, s in clusters.items()},
            dns_zones=zones,
            dns_hosts=hosts,
            firewalls=firewalls,
        ),
        tracked=Tracked(servers=tracked),
        observed={p: ObservedProvider(provider=p, refreshed=now, servers=s) for p, s in observed.items()},
        billing=tuple(
            BillingEntry(
                provider=p, resource="servers", period="2026-01", amount=Decimal("12.34"), currency="EUR"
            )
            for p in providers
        ),
        operations=(
            OperationLogEntry(id="op-1", kind="materialize", started=now, finished=now, status="succeeded"),
        ),
    )
