"""Pure edits of :class:`~legion_nb.engine.state.model.LegionState`, one function per change.

Why one module: the actors, the deployment runtime and the pending-intent recorder all change the
same few places of the state (the tracked mappings, the observed records, the create intents, the
nodes' deployment material). Each edit is written once here and takes a state and returns a new
one, so it composes inside one ``StatePort.mutate`` write (a tracked server and the intent it
settles leave and arrive in the same durable write) and is tested without I/O.

Every edit rebuilds only the path from the root to the changed record (:func:`dataclasses.replace`)
and returns ``state`` itself when there is nothing to change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, Literal

from legion_nb.engine.state.model import (
    ClusterMaterial,
    CreatePending,
    LegionState,
    NodeExecution,
    NodeMaterial,
    TrackedServer,
    utcnow,
)
from legion_nb.readonly import with_item

__all__ = [
    "ObservedKind",
    "mark_interrupted",
    "track_server",
    "with_cluster_material",
    "with_execution",
    "with_material",
    "with_observed_read",
    "with_pending",
    "with_repair_attempts",
    "with_tracked",
    "with_tracked_server",
    "without_observed",
    "without_pending",
    "without_tracked_server",
]

ObservedKind = Literal["servers", "dns_zones", "firewalls", "public_ips"]


def with_tracked(state: LegionState, **changes: Any) -> LegionState:
    """``state`` with some of its tracked mappings replaced (``servers=...``, ``dns_zones=...``)."""
    return replace(state, tracked=replace(state.tracked, **changes))


def with_tracked_server(state: LegionState, record: TrackedServer) -> LegionState:
    """``state`` with ``record`` as the tracked server of its name (added or replaced as given)."""
    return with_tracked(state, servers=with_item(state.tracked.servers, record.name, record))


def track_server(state: LegionState, record: TrackedServer) -> LegionState:
    """Track ``record``, carrying over a pre-tracking execution record in the same write.

    Why: a node operation that starts before its server is tracked keeps its durable record in
    the node's deployment material; once the server is tracked the record lives on it, and moving
    it in the tracking write means no crash can leave it in both places or in neither.
    """
    material = state.deployment.nodes.get(record.name)
    execution = record.execution
    if material is not None and material.execution is not None:
        execution = material.execution
        state = with_material(state, replace(material, execution=None))
    return with_tracked_server(state, replace(record, execution=execution))


def without_tracked_server(state: LegionState, name: str) -> LegionState:
    """``state`` without the tracked server ``name`` and without its observed record (Legion has
    just deleted it, or the provider no longer has it: see :func:`without_observed`)."""
    record = state.tracked.servers.get(name)
    if record is None:
        return state
    state = with_tracked(state, servers={k: v for k, v in state.tracked.servers.items() if k != name})
    return without_observed(state, record.provider, "servers", record.provider_id)


def with_observed_read(
    state: LegionState,
    record: TrackedServer,
    *,
    status: str,
    ipv4: str | None,
    ipv6: str | None,
    at: dt.datetime,
) -> LegionState:
    """``state`` with what a provider read of the tracked server ``record`` found (its status and
    addresses) as that server's observation, seen ``at`` (unchanged when no refresh observed it,
    or it says so already): a read of the server by its actor is newer than the last refresh, so
    the observation follows it, with the time of that read (the provider's ``refreshed`` stays the
    listing's: ``ObservedServer.seen``)."""
    observed = state.observed.get(record.provider)
    seen = None if observed is None else observed.servers.get(record.provider_id)
    if observed is None or seen is None or (seen.status, seen.ipv4, seen.ipv6) == (status, ipv4, ipv6):
        return state
    read = replace(seen, status=status, ipv4=ipv4, ipv6=ipv6, seen=at)
    servers = with_item(observed.servers, record.provider_id, read)
    observed = replace(observed, servers=servers)
    return replace(state, observed=with_item(state.observed, record.provider, observed))


def without_observed(state: LegionState, provider: str, kind: ObservedKind, key: str) -> LegionState:
    """``state`` without the observation of one resource Legion has just deleted at ``provider``.

    Why: the deletion is itself news about the provider. Keeping the last refresh's record would
    make the diff and the snapshot show a resource that no longer exists as an orphan until the next
    refresh. ``key`` is the observed mapping's key (provider id for servers and firewalls, the zone
    name for DNS zones, the resource id ``<kind>_ip/<provider id>`` for public IPs).
    """
    observed = state.observed.get(provider)
    if observed is None:
        return state
    if kind == "servers" and key in observed.servers:
        observed = replace(observed, servers={k: v for k, v in observed.servers.items() if k != key})
    elif kind == "dns_zones" and key in observed.dns_zones:
        observed = replace(observed, dns_zones={k: v for k, v in observed.dns_zones.items() if k != key})
    elif kind == "firewalls" and key in observed.firewalls:
        observed = replace(observed, firewalls={k: v for k, v in observed.firewalls.items() if k != key})
    elif kind == "public_ips" and key in observed.public_ips:
        observed = replace(observed, public_ips={k: v for k, v in observed.public_ips.items() if k != key})
    else:
        return state
    return replace(state, observed=with_item(state.observed, provider, observed))


def with_pending(state: LegionState, entry: CreatePending) -> LegionState:
    """``state`` with the create intent ``entry`` (keyed by its Legion id)."""
    return with_tracked(state, pending=with_item(state.tracked.pending, entry.key, entry))


def without_pending(state: LegionState, legion_id: str) -> LegionState:
    """``state`` without the create intent ``legion_id`` (unchanged when there is none)."""
    if legion_id not in state.tracked.pending:
        return state
    return with_tracked(state, pending={k: v for k, v in state.tracked.pending.items() if k != legion_id})


def with_material(state: LegionState, material: NodeMaterial) -> LegionState:
    """``state`` with ``material`` as its node's deployment material."""
    nodes = with_item(state.deployment.nodes, material.node, material)
    return replace(state, deployment=replace(state.deployment, nodes=nodes))


def with_cluster_material(state: LegionState, material: ClusterMaterial) -> LegionState:
    """``state`` with ``material`` as its cluster's deployment material (the cluster CA)."""
    clusters = with_item(state.deployment.clusters, material.cluster, material)
    return replace(state, deployment=replace(state.deployment, clusters=clusters))


def with_repair_attempts(state: LegionState, attempts: Mapping[str, tuple[float, ...]]) -> LegionState:
    """``state`` with the repair budget's attempts (by node) replaced as given."""
    return replace(state, repair_attempts=dict(attempts))


def with_execution(state: LegionState, node: str, execution: NodeExecution | None) -> LegionState:
    """``state`` with ``node``'s execution record replaced where it lives: on the tracked server,
    else (before the server is tracked) in the node's deployment material."""
    server = state.tracked.servers.get(node)
    if server is not None:
        return with_tracked_server(state, replace(server, execution=execution))
    material = state.deployment.nodes.get(node) or NodeMaterial(node=node)
    return with_material(state, replace(material, execution=execution))


def mark_interrupted(
    state: LegionState, now: dt.datetime | None = None, *, nodes: Collection[str] | None = None
) -> tuple[LegionState, tuple[str, ...]]:
    """Every ``running`` execution (tracked or pre-tracking; of ``nodes`` only, when given: those no
    live process runs) becomes ``interrupted, retryable``, and the names of those nodes. Why:
    nothing runs once its process is gone, and pretending otherwise (or pretending it succeeded)
    would lie to the operator; a resume continues from the recorded phase.

    One pass and one rebuilt mapping per place a record can live, so a large state costs linear
    time (this runs inside the unlock's first state write).
    """
    stamp = now or utcnow()

    def stopped(execution: NodeExecution) -> NodeExecution:
        return replace(
            execution,
            status="interrupted",
            retryable=True,
            updated=stamp,
            error=f"interrupted during {execution.phase}: Legion stopped; resume to continue from there",
        )

    servers = {
        name: replace(server, execution=stopped(server.execution))
        for name, server in state.tracked.servers.items()
        if server.execution is not None
        and server.execution.status == "running"
        and (nodes is None or name in nodes)
    }
    nodes = {
        name: replace(material, execution=stopped(material.execution))
        for name, material in state.deployment.nodes.items()
        if material.execution is not None
        and material.execution.status == "running"
        and (nodes is None or name in nodes)
    }
    if servers:
        state = with_tracked(state, servers={**state.tracked.servers, **servers})
    if nodes:
        deployment = replace(state.deployment, nodes={**state.deployment.nodes, **nodes})
        state = replace(state, deployment=deployment)
    return state, tuple(sorted({*servers, *nodes}))
