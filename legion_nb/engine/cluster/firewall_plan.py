"""The firewall sets a state calls for: derived cluster sets plus the operator's planned ones.

Why derived: the rule that Tribes peer sync (TCP 4413) is open only to the cluster's own nodes is a
function of which nodes exist and which addresses the providers gave them. Nobody should type those
addresses into a plan; they follow from tracked server endpoints. So the desired set is recomputed
from the state every time it changes, and the firewall actor converges on the latest one.

One derived set per (cluster, provider) with at least one planned cluster node there:

* TCP 22 (SSH) and TCP :data:`ADMIN_API_PORT` (the node admin API) from the operator's addresses:
  the plan's ``scheme.access.operator_cidrs`` (``legion plan access set``). A plan without them falls
  back to the engine setting ``admin_sources`` (``LEGION_OPERATOR_CIDRS``, kept for automation that
  predates planned access); once the plan has them the setting is ignored, with a warning if it
  differs, so that what ``legion diff`` shows never depends on the environment of the machine that
  runs it. With neither, they are open to anywhere, and the set carries a visible warning (also when
  the operator planned a ``/0`` on purpose).
* TCP 4413 (Tribes sync) only from the ``/32`` (IPv4) and ``/128`` (IPv6) addresses of the cluster's
  tracked nodes, on every provider of the cluster. No peer address known yet: no 4413 rule at all.
* Nothing else inbound.

On a provider without the firewall capability (OVH) the same set is kept as a *node-level* plan for
deployment to enforce on the node (``node_level``).

Every set here is wanted: refresh adopts a listed firewall of its name, so none is an orphan, in
refresh's report, the diff and ``orphan_delete`` alike (:func:`cluster_orphan_rule`).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from legion_nb.engine.orphans import OrphanRule
from legion_nb.engine.reports import FlaggedResource, PlanWarning
from legion_nb.engine.state.model import LegionState, PlannedRule
from legion_nb.errors import ValidationError
from legion_nb.providers.contract import Capability
from legion_nb.providers.records import FirewallRule, PortRange
from legion_nb.providers.registry import capabilities
from legion_nb.readonly import same_objects

__all__ = [
    "ADMIN_API_PORT",
    "ANYWHERE",
    "ENV_IGNORED_WARNING",
    "OPEN_WARNING",
    "SHADOW_WARNING",
    "SSH_PORT",
    "SYNC_PORT",
    "FirewallPlanCache",
    "FirewallSetPlan",
    "build_cluster_firewall_plan",
    "cluster_firewall_name",
    "cluster_orphan_rule",
    "flagged_firewalls",
    "normalize_sources",
    "operator_sources",
    "planned_rule",
    "rule_from_planned",
]

SSH_PORT = 22
ADMIN_API_PORT = 8443
"""The node admin API (HTTPS). Chosen here; deployment installs the API on this port."""
SYNC_PORT = 4413
ANYWHERE: tuple[str, ...] = ("0.0.0.0/0", "::/0")
OPEN_WARNING = PlanWarning(
    "open_access",
    "SSH (22) and the admin API (8443) are open to anywhere (0.0.0.0/0, ::/0): "
    "limit them with legion plan access set --operator-cidr CIDR",
)
ENV_IGNORED_WARNING = PlanWarning(
    "operator_cidrs_env_ignored",
    "LEGION_OPERATOR_CIDRS is ignored: the plan's operator CIDRs (legion plan access) win",
)
SHADOW_WARNING = PlanWarning(
    "replaces_derived_firewall", "replaces the derived cluster firewall of the same name"
)


@dataclass(frozen=True, slots=True)
class FirewallSetPlan:
    """One desired firewall set. ``servers`` are planned server names it must be applied to;
    ``cluster`` is None for a set the operator planned by hand."""

    name: str
    provider: str
    cluster: str | None
    rules: tuple[FirewallRule, ...]
    servers: tuple[str, ...]
    node_level: bool = False
    warnings: tuple[PlanWarning, ...] = ()


def cluster_firewall_name(cluster: str, provider: str) -> str:
    return f"legion-{cluster}-{provider}"


def _source_order(network: str) -> tuple[bool, str]:
    return (":" in network, network)


def normalize_sources(sources: Iterable[str]) -> tuple[str, ...]:
    """CIDRs in canonical form, deduplicated and sorted; ``ValidationError`` for a bad one."""
    found: set[str] = set()
    for text in sources:
        try:
            found.add(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError as exc:
            raise ValidationError(f"{text!r} is not an address or CIDR like 203.0.113.7/32") from exc
    return tuple(sorted(found, key=_source_order))


@functools.lru_cache(maxsize=65536)
def _host_cidr(address: str) -> str:
    """The canonical host network of one tracked address. Cached: a cluster's addresses change
    rarely, and parsing them with ``ipaddress`` dominates the plan of a large fleet."""
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def rule_from_planned(rule: PlannedRule) -> FirewallRule:
    """The provider-neutral rule for a rule as the state stores it."""
    port = PortRange.parse(rule.port) if rule.port else None
    if rule.direction == "in":
        return FirewallRule("in", rule.protocol, port, sources=rule.sources)
    return FirewallRule("out", rule.protocol, port, destinations=rule.sources)


def planned_rule(rule: FirewallRule) -> PlannedRule:
    """The state's form of a provider-neutral rule (what a tracked firewall records)."""
    addresses = rule.sources if rule.direction == "in" else rule.destinations
    return PlannedRule(
        direction=rule.direction,
        protocol=rule.protocol,
        port="" if rule.port is None else str(rule.port),
        sources=tuple(addresses),
    )


def _has_firewall(provider: str) -> bool:
    return Capability.FIREWALL in capabilities(provider)


def _cluster_sets(
    state: LegionState, admin: tuple[str, ...], warnings: tuple[PlanWarning, ...]
) -> dict[str, FirewallSetPlan]:
    tracked = state.tracked.servers
    sets: dict[str, FirewallSetPlan] = {}
    for cluster in sorted(state.scheme.clusters.values(), key=lambda c: c.name):
        nodes = sorted((s for s in cluster.servers.values() if s.role == "cluster"), key=lambda s: s.name)
        peers: set[str] = set()
        for node in nodes:
            record = tracked.get(node.name)
            if record is not None:
                peers.update(_host_cidr(a) for a in (record.ipv4, record.ipv6) if a)
        rules = [
            FirewallRule("in", "tcp", PortRange.single(SSH_PORT), sources=admin, description="ssh"),
            FirewallRule(
                "in", "tcp", PortRange.single(ADMIN_API_PORT), sources=admin, description="admin api"
            ),
        ]
        if peers:
            rules.append(
                FirewallRule(
                    "in",
                    "tcp",
                    PortRange.single(SYNC_PORT),
                    sources=tuple(sorted(peers, key=_source_order)),  # canonical already
                    description="tribes sync from cluster peers",
                )
            )
        for provider in sorted({n.provider for n in nodes}):
            name = cluster_firewall_name(cluster.name, provider)
            sets[name] = FirewallSetPlan(
                name=name,
                provider=provider,
                cluster=cluster.name,
                rules=tuple(rules),
                servers=tuple(n.name for n in nodes if n.provider == provider),
                node_level=not _has_firewall(provider),
                warnings=warnings,
            )
    return sets


def operator_sources(
    state: LegionState, admin_sources: Sequence[str] | None = None
) -> tuple[tuple[str, ...], tuple[PlanWarning, ...]]:
    """The sources of SSH and the admin API, and the warnings they carry (module notes: the plan
    first, then ``admin_sources``, then anywhere)."""
    planned = normalize_sources(state.scheme.access.operator_cidrs)
    fallback = normalize_sources(admin_sources or ())
    warnings: list[PlanWarning] = []
    admin = planned or fallback
    if planned and fallback and fallback != planned:
        warnings.append(ENV_IGNORED_WARNING)
    if not admin:
        admin = ANYWHERE
    if any(source.endswith("/0") for source in admin):
        warnings.append(OPEN_WARNING)
    return admin, tuple(warnings)


def build_cluster_firewall_plan(
    state: LegionState, *, admin_sources: Sequence[str] | None = None
) -> Mapping[str, FirewallSetPlan]:
    """Every desired firewall set, keyed by its name (the firewall actor's identity).

    SSH and the admin API are open to the plan's operator CIDRs, else to ``admin_sources``, else to
    anywhere with a warning (:func:`operator_sources`). A planned firewall whose name equals a
    derived set's wins (the derived one is dropped and the planned one carries a warning saying so).
    """
    admin, warnings = operator_sources(state, admin_sources)
    sets = _cluster_sets(state, admin, warnings)
    for planned in state.scheme.firewalls.values():
        shadowed = planned.name in sets
        sets[planned.name] = FirewallSetPlan(
            name=planned.name,
            provider=planned.provider,
            cluster=None,
            rules=tuple(rule_from_planned(r) for r in planned.rules),
            servers=tuple(sorted(planned.servers)),
            node_level=not _has_firewall(planned.provider),
            warnings=(SHADOW_WARNING,) if shadowed else (),
        )
    return dict(sorted(sets.items()))


def cluster_orphan_rule(state: LegionState, plans: Mapping[str, FirewallSetPlan] | None = None) -> OrphanRule:
    """The orphan rule over ``state`` that wants every firewall set of its plan (``plans`` when the
    caller has it built): the planned ones and the cluster's derived ones. Set names and providers
    do not depend on the operator's addresses, so any ``admin_sources`` the plan was built with fit."""
    if plans is None:
        plans = build_cluster_firewall_plan(state)
    return OrphanRule(state, firewalls={name: str(plan.provider) for name, plan in plans.items()})


def flagged_firewalls(plans: Mapping[str, FirewallSetPlan]) -> list[FlaggedResource]:
    """The firewall sets of a plan that carry warnings, by name (what materialize reports)."""
    return [
        FlaggedResource("firewall", plan.name, plan.warnings)
        for plan in sorted(plans.values(), key=lambda p: p.name)
        if plan.warnings
    ]


class FirewallPlanCache:
    """The derived firewall plan of the current state, built once per state value and shared.

    Why: the supervisor's key set, every firewall actor's guards and snapshot facts, the app
    snapshot and ``diff`` all read the plan of the same state, many times per commit. States are
    immutable, so identity says whether the last plan still holds: of the state, or else of the
    four parts the plan reads (clusters, tracked servers, operator access, planned firewalls), so a
    commit that leaves them alone (a zone, a host, an observation) keeps the plan object too. The
    owner (the resource supervisor) calls :meth:`clear` when the state is locked: the cache must not
    keep a decrypted state reachable after logout.
    """

    def __init__(self, admin_sources: Sequence[str] | None = None) -> None:
        self.admin_sources = None if admin_sources is None else tuple(admin_sources)
        self._state: LegionState | None = None
        self._inputs: tuple[object, ...] = ()
        self._plans: Mapping[str, FirewallSetPlan] = MappingProxyType({})
        self._members: Mapping[str, frozenset[str]] = MappingProxyType({})

    def plans(self, state: LegionState) -> Mapping[str, FirewallSetPlan]:
        """:func:`build_cluster_firewall_plan` of ``state`` (read-only; shared by every caller)."""
        if state is not self._state:
            inputs = _plan_inputs(state)
            if not same_objects(inputs, self._inputs):
                plans = build_cluster_firewall_plan(state, admin_sources=self.admin_sources)
                self._plans = MappingProxyType(dict(plans))
                self._members = MappingProxyType(_cluster_members(state))
                self._inputs = inputs
            self._state = state
        return self._plans

    def cluster_members(self, state: LegionState, cluster: str) -> frozenset[str]:
        """Every server of ``cluster``, planned or tracked there (an index over ``state``)."""
        self.plans(state)
        return self._members.get(cluster, frozenset())

    def clear(self) -> None:
        self._state = None
        self._inputs = ()
        self._plans = MappingProxyType({})
        self._members = MappingProxyType({})


def _plan_inputs(state: LegionState) -> tuple[object, ...]:
    """What :func:`build_cluster_firewall_plan` and :func:`_cluster_members` read of ``state``."""
    scheme = state.scheme
    return (scheme.clusters, state.tracked.servers, scheme.access, scheme.firewalls)


def _cluster_members(state: LegionState) -> dict[str, frozenset[str]]:
    members: dict[str, set[str]] = {}
    for cluster in state.scheme.clusters.values():
        members.setdefault(cluster.name, set()).update(cluster.servers)
    for name, record in state.tracked.servers.items():
        members.setdefault(record.cluster, set()).add(name)
    return {cluster: frozenset(names) for cluster, names in members.items()}
