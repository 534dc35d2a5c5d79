"""Which derived actors (DNS zones, firewall sets, domains) a change can move.

Why: a commit on a fleet of a thousand servers usually changes one record, and the supervisor
must not re-derive every zone and firewall for it. States are immutable and commits replace only
the records they change, so comparing the two sides of a commit by identity says which records
changed, and each derived actor's inputs say which of them it reads:

* a firewall set reads its cluster's servers (planned and tracked), the planned firewall of its
  name, its tracked record, the servers that record or the plan binds, and the operator access
  (every set);
* a DNS zone reads its planned and tracked zone, the hosts in it and the servers they point at;
* a domain reads its planned and tracked domain;
* any of them reads the pending creates of its own kind and name.

Servers whose actors started or finished work count as changed servers too (a set or zone waits
while a server it reads is busy); the supervisor adds those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from legion_nb.engine.cluster.firewall_plan import cluster_firewall_name
from legion_nb.engine.resources.snapshot import ResourceKey
from legion_nb.engine.state.model import PROVIDERS, LegionState

__all__ = ["affected_keys", "changed_names", "keys_reading_servers"]

V = TypeVar("V")


def changed_names(before: Mapping[str, V], after: Mapping[str, V]) -> set[str]:
    """Keys whose value was added, removed or replaced (by identity: records are immutable)."""
    if before is after:
        return set()
    changed = {name for name, value in after.items() if before.get(name) is not value}
    changed.update(name for name in before if name not in after)
    return changed


def _planned_clusters(state: LegionState, servers: set[str]) -> set[str]:
    return {c.name for c in state.scheme.clusters.values() if not servers.isdisjoint(c.servers)}


def keys_reading_servers(states: Iterable[LegionState], servers: set[str]) -> set[ResourceKey]:
    """The firewall sets and zones whose inputs include any of ``servers`` in any of ``states``."""
    keys: set[ResourceKey] = set()
    if not servers:
        return keys
    for state in states:
        clusters = _planned_clusters(state, servers)
        clusters.update(r.cluster for n, r in state.tracked.servers.items() if n in servers)
        for cluster in clusters:
            keys.update(ResourceKey("firewall", cluster_firewall_name(cluster, p)) for p in PROVIDERS)
        for planned in state.scheme.firewalls.values():
            if not servers.isdisjoint(planned.servers):
                keys.add(ResourceKey("firewall", planned.name))
        for tracked in state.tracked.firewalls.values():
            if not servers.isdisjoint(tracked.servers):
                keys.add(ResourceKey("firewall", tracked.name))
        for host in state.scheme.dns_hosts.values():
            if not servers.isdisjoint(host.servers):
                keys.add(ResourceKey("dns_zone", host.zone))
    return keys


def affected_keys(before: LegionState, after: LegionState) -> set[ResourceKey] | None:
    """The derived actors whose inputs differ between ``before`` and ``after``; None when the
    change reaches every firewall set (the operator access moved)."""
    if before.scheme.access != after.scheme.access:
        return None
    b, a = before.scheme, after.scheme
    servers = changed_names(before.tracked.servers, after.tracked.servers)
    if b.clusters is not a.clusters:
        for name in changed_names(b.clusters, a.clusters):
            old, new = b.clusters.get(name), a.clusters.get(name)
            servers |= changed_names(old.servers if old else {}, new.servers if new else {})
    keys = keys_reading_servers((before, after), servers)
    keys.update(ResourceKey("firewall", n) for n in changed_names(b.firewalls, a.firewalls))
    keys.update(
        ResourceKey("firewall", n) for n in changed_names(before.tracked.firewalls, after.tracked.firewalls)
    )
    keys.update(ResourceKey("dns_zone", n) for n in changed_names(b.dns_zones, a.dns_zones))
    keys.update(
        ResourceKey("dns_zone", n) for n in changed_names(before.tracked.dns_zones, after.tracked.dns_zones)
    )
    for fqdn in changed_names(b.dns_hosts, a.dns_hosts):
        for hosts in (b.dns_hosts, a.dns_hosts):
            host = hosts.get(fqdn)
            if host is not None:
                keys.add(ResourceKey("dns_zone", host.zone))
    keys.update(ResourceKey("domain", n) for n in changed_names(b.domains, a.domains))
    keys.update(
        ResourceKey("domain", n) for n in changed_names(before.tracked.domains, after.tracked.domains)
    )
    pending_before, pending_after = before.tracked.pending, after.tracked.pending
    for legion_id in changed_names(pending_before, pending_after):
        intent = pending_after.get(legion_id) or pending_before.get(legion_id)
        if intent is not None and intent.kind in ("dns_zone", "firewall"):
            keys.add(ResourceKey(intent.kind, intent.name))
    return keys
