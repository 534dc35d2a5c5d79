"""The pure diff: planned vs tracked vs observed, field by field, with the action each resource needs.

No I/O: the diff reads one immutable state. Actions:

``create``     planned, and not tracked (or tracked but gone at a provider refreshed after its creation);
``update``     planned and tracked, with a planned choice that differs from what is tracked;
``delete``     tracked but no longer planned;
``unchanged``  planned and tracked alike;
``adopt``      planned, not tracked, but the provider shows a resource of that name: take it over
               instead of creating a duplicate;
``orphan``     the provider shows a resource Legion made that nothing in the state holds
               (:class:`~legion_nb.engine.orphans.OrphanRule`, the rule refresh, the billing
               reconciliation and ``orphan_delete`` apply too); its note names the id
               ``orphan_delete`` takes.

Public IPs are never planned or tracked on their own (a tracked server holds its floating IPs), so
they have rows only as orphans: a floating or primary IP the last refresh saw with Legion's labels
and assigned to nothing.

Planned choices left empty ("policy default": the catalog policy picks them at materialization)
show as ``(policy)`` and never count as a difference. DNS hosts are synthesis inputs, not resources,
so they feed zone records and have no row of their own. The planned operator access
(``scheme.access``) is not a resource either: it shows as the :data:`ACCESS_FIELD` of every cluster
firewall row (:func:`access_field`), whose action becomes ``update`` when it differs from the
sources the tracked firewall lets in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from legion_nb.engine.orphans import OrphanRule, orphan_note
from legion_nb.engine.reports import PlanWarning
from legion_nb.engine.state.model import (
    LegionState,
    ObservedProvider,
    ObservedServer,
    PlannedRule,
    PlannedServer,
    TrackedFirewall,
    TrackedServer,
)
from legion_nb.readonly import same_objects

__all__ = [
    "ACCESS_FIELD",
    "POLICY",
    "Action",
    "Diff",
    "FieldDiff",
    "ResourceDiff",
    "ServerRows",
    "access_field",
    "diff",
]

Action = Literal["create", "update", "delete", "unchanged", "adopt", "orphan"]
Kind = Literal["server", "dns_zone", "firewall", "domain", "floating_ip", "primary_ip"]
POLICY = "(policy)"


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field of one resource in the three views (None: that view has no such resource)."""

    field: str
    planned: str | None
    tracked: str | None
    observed: str | None

    @property
    def changed(self) -> bool:
        """Does the plan ask for something other than what is tracked? (Policy choices never do.)"""
        return (
            self.planned is not None
            and self.tracked is not None
            and self.planned not in (POLICY, self.tracked)
        )


@dataclass(frozen=True, slots=True)
class ResourceDiff:
    kind: Kind
    name: str
    provider: str
    action: Action
    fields: tuple[FieldDiff, ...]
    note: str = ""
    """Why the row reads as it does, in words (explanation only: see ``warnings``)."""
    warnings: tuple[PlanWarning, ...] = ()
    """What the operator should decide about before applying this row (e.g. access open to anywhere)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "provider": self.provider,
            "action": self.action,
            "note": self.note,
            "warnings": [w.to_json() for w in self.warnings],
            "fields": [
                {
                    "field": f.field,
                    "planned": f.planned,
                    "tracked": f.tracked,
                    "observed": f.observed,
                    "changed": f.changed,
                }
                for f in self.fields
            ],
        }


@dataclass(frozen=True, slots=True)
class Diff:
    resources: tuple[ResourceDiff, ...]
    cost: Mapping[str, Any] | None = None
    """The plan's monthly cost now, planned and the change per currency, when the engine priced it
    (:func:`legion_nb.engine.billing.plan_cost.plan_cost`, as JSON)."""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for resource in self.resources:
            out[resource.action] = out.get(resource.action, 0) + 1
        return out

    def pending(self) -> tuple[ResourceDiff, ...]:
        """The resources materialization would touch."""
        return tuple(r for r in self.resources if r.action != "unchanged")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"counts": self.counts(), "resources": [r.to_json() for r in self.resources]}
        if self.cost is not None:
            out["cost"] = dict(self.cost)
        return out


_View = Mapping[str, str | None]


def _choice(value: str) -> str:
    return value or POLICY


def _fields(
    names: tuple[str, ...], planned: _View | None, tracked: _View | None, observed: _View | None
) -> tuple[FieldDiff, ...]:
    return tuple(
        FieldDiff(
            field=name,
            planned=None if planned is None else planned.get(name),
            tracked=None if tracked is None else tracked.get(name),
            observed=None if observed is None else observed.get(name),
        )
        for name in names
    )


def _row(
    kind: Kind,
    name: str,
    provider: str,
    *,
    names: tuple[str, ...],
    planned: _View | None,
    tracked: _View | None,
    observed: _View | None,
    gone: bool = False,
    note: str = "",
) -> ResourceDiff:
    """Decide the action from which views hold the resource, and whether its fields differ."""
    fields = _fields(names, planned, tracked, observed)
    action: Action
    if planned is not None and tracked is not None:
        if gone:
            action, note = "create", note or f"tracked {kind} is gone at {provider}: it will be created again"
        elif any(f.changed for f in fields):
            action = "update"
            if any(f.changed and f.field == "provider" for f in fields):
                note = note or f"the plan moves this {kind} to another provider: that replaces it"
        else:
            action = "unchanged"
    elif planned is not None:
        action = "adopt" if observed is not None else "create"
    elif tracked is not None:
        action = "delete"
    else:
        action = "orphan"
    return ResourceDiff(kind=kind, name=name, provider=provider, action=action, fields=fields, note=note)


_Indexes = dict[str, dict[str, Any]]


def _index(
    cache: _Indexes,
    observed: ObservedProvider,
    items: Callable[[ObservedProvider], Mapping[str, Any]],
    key: Callable[[Any], str],
) -> dict[str, Any]:
    """Observed records of one provider by ``key``, built once per diff (lookups stay O(1))."""
    index = cache.get(observed.provider)
    if index is None:
        index = cache[observed.provider] = {key(o): o for o in items(observed).values()}
    return index


CREATION_GRACE = dt.timedelta(seconds=2)
"""How long after a provider's creation time a refresh surely saw the resource (whole-second
timestamps, and a provider clock a little ahead of ours)."""


def _seen_by(observed: ObservedProvider, track: object) -> bool:
    """Whether the refresh behind ``observed`` could have seen ``track`` at all.

    A resource Legion created after the provider's last refresh is missing from that refresh
    because it did not exist yet, not because it is gone; only a refresh after its creation can
    say it is gone. Providers report creation in whole seconds on their own clocks, so a refresh
    counts only when it started :data:`CREATION_GRACE` after that. Records that keep no creation
    time count as seen.
    """
    created = getattr(track, "created", None)
    return created is None or observed.refreshed is None or created + CREATION_GRACE <= observed.refreshed


def _refreshed(state: LegionState, provider: str) -> ObservedProvider | None:
    observed = state.observed.get(provider)
    return observed if observed is not None and observed.refreshed is not None else None


_SERVER_FIELDS = ("provider", "cluster", "role", "server_type", "location", "image", "status", "ipv4", "ipv6")


class ServerRows:
    """The server rows of the last diff, reused while the records a row comes from are the same
    objects. States are immutable and a commit replaces only the records it changes, so a fleet's
    diff after a commit rebuilds the changed rows only, and one that left every part the rows read
    alone (a zone, a host, a firewall) takes them all at once. One diff at a time may use a cache."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[tuple[object, ...], ResourceDiff, tuple[str, str] | None]] = {}
        self.inputs: tuple[object, ...] = ()
        """The parts of the state the last rows were read from."""
        self.result: list[ResourceDiff] = []
        """The last server rows, orphans included, in order."""


def _server_inputs(state: LegionState) -> tuple[object, ...]:
    """Every part of ``state`` the server rows read."""
    return (state.scheme.clusters, state.tracked.servers, state.tracked.pending, state.observed)


def _server_row(
    name: str,
    provider: str,
    plan: tuple[str, PlannedServer] | None,
    track: TrackedServer | None,
    seen: ObservedServer | None,
    *,
    gone: bool,
    pending: bool,
) -> ResourceDiff:
    plan_view: dict[str, str | None] | None = None
    if plan is not None:
        cluster, server = plan
        plan_view = {
            "provider": server.provider,
            "cluster": cluster,
            "role": server.role,
            "server_type": _choice(server.server_type),
            "location": _choice(server.location),
            "image": _choice(server.image),
        }
    track_view: dict[str, str | None] | None = None
    if track is not None:
        track_view = {
            "provider": track.provider,
            "cluster": track.cluster,
            "role": track.role,
            "server_type": track.server_type,
            "location": track.location,
            "image": track.image,
            "status": track.status,
            "ipv4": track.ipv4,
            "ipv6": track.ipv6,
        }
    seen_view: dict[str, str | None] | None = None
    if seen is not None:
        seen_view = {
            "provider": provider,
            "server_type": seen.server_type,
            "location": seen.location,
            "image": seen.image,
            "status": seen.status,
            "ipv4": seen.ipv4,
            "ipv6": seen.ipv6,
        }
    note = "a create is pending: it will be settled by lookup first" if pending else ""
    return _row(
        "server",
        name,
        provider,
        names=_SERVER_FIELDS,
        planned=plan_view,
        tracked=track_view,
        observed=seen_view,
        gone=gone,
        note=note,
    )


def _servers(state: LegionState, rule: OrphanRule, cache: ServerRows | None = None) -> list[ResourceDiff]:
    inputs = _server_inputs(state)  # a server's orphan verdict reads none of the rule's firewalls
    if cache is not None and same_objects(cache.inputs, inputs):
        return list(cache.result)
    rows = _server_rows_of(state, rule, cache)
    if cache is not None:
        cache.inputs, cache.result = inputs, list(rows)
    return rows


def _server_rows_of(state: LegionState, rule: OrphanRule, cache: ServerRows | None) -> list[ResourceDiff]:
    planned = state.scheme.servers()
    tracked = state.tracked.servers
    pending = {p.name for p in state.tracked.pending.values() if p.kind == "server"}
    rows: list[ResourceDiff] = []
    claimed: set[tuple[str, str]] = set()
    by_name: _Indexes = {}
    previous = cache.rows if cache is not None else {}
    kept: dict[str, tuple[tuple[object, ...], ResourceDiff, tuple[str, str] | None]] = {}
    for name in sorted(planned.keys() | tracked.keys()):
        plan = planned.get(name)
        track = tracked.get(name)
        provider: str = track.provider if track is not None else plan[1].provider if plan is not None else ""
        observed_provider = _refreshed(state, provider)
        seen = None
        gone = False
        if observed_provider is not None:
            if track is not None:
                seen = observed_provider.servers.get(track.provider_id)
                gone = seen is None and _seen_by(observed_provider, track)
            else:
                seen = _index(by_name, observed_provider, lambda o: o.servers, lambda o: o.name).get(name)
        inputs = (
            None if plan is None else plan[1],
            None if plan is None else plan[0],
            track,
            seen,
            observed_provider is not None,
            name in pending,
        )
        hit = previous.get(name)
        if hit is not None and same_objects(hit[0], inputs):
            kept[name] = hit
            rows.append(hit[1])
            if hit[2] is not None:
                claimed.add(hit[2])
            continue
        claim = None if seen is None else (provider, seen.provider_id)
        if claim is not None:
            claimed.add(claim)
        pending_note = name in pending and track is None
        row = _server_row(name, provider, plan, track, seen, gone=gone, pending=pending_note)
        kept[name] = (inputs, row, claim)
        rows.append(row)
    if cache is not None:
        cache.rows = kept
    for provider_name, observed in sorted(state.observed.items()):
        for found in observed.servers.values():
            if (provider_name, found.provider_id) in claimed or not rule.is_orphan(provider_name, found):
                continue
            view = {"provider": provider_name, "status": found.status, "ipv4": found.ipv4, "ipv6": found.ipv6}
            rows.append(
                _row(
                    "server",
                    found.name,
                    provider_name,
                    names=_SERVER_FIELDS,
                    planned=None,
                    tracked=None,
                    observed=view,
                    note=orphan_note(found),
                )
            )
    return rows


def _simple(
    state: LegionState,
    rule: OrphanRule,
    kind: Kind,
    *,
    planned: Mapping[str, Any],
    tracked: Mapping[str, Any],
    observed_of: Callable[[ObservedProvider], Mapping[str, Any]] | None,
    observed_name: Callable[[Any], str],
    planned_view: Callable[[Any], dict[str, str | None]],
    tracked_view: Callable[[Any], dict[str, str | None]],
    names: tuple[str, ...],
) -> list[ResourceDiff]:
    """Zones, firewalls and domains: identity by name, observed matched by provider id or name."""
    rows: list[ResourceDiff] = []
    claimed: set[tuple[str, str]] = set()
    by_name: _Indexes = {}
    by_id: _Indexes = {}
    for name in sorted(planned.keys() | tracked.keys()):
        plan = planned.get(name)
        track = tracked.get(name)
        record: Any = track if track is not None else plan
        provider = str(record.provider)
        observed_provider = _refreshed(state, provider) if observed_of is not None else None
        seen = None
        gone = False
        if observed_provider is not None and observed_of is not None:
            if track is not None:
                seen = _index(by_id, observed_provider, observed_of, lambda o: o.provider_id).get(
                    track.provider_id
                )
                gone = seen is None and _seen_by(observed_provider, track)
            else:
                seen = _index(by_name, observed_provider, observed_of, observed_name).get(name)
        if seen is not None:
            claimed.add((provider, seen.provider_id))
        rows.append(
            _row(
                kind,
                name,
                provider,
                names=names,
                planned=None if plan is None else planned_view(plan),
                tracked=None if track is None else tracked_view(track),
                observed=None if seen is None else {"provider": provider, "provider_id": seen.provider_id},
                gone=gone,
            )
        )
    if observed_of is None:
        return rows
    for provider, observed in sorted(state.observed.items()):
        for item in observed_of(observed).values():
            if (provider, item.provider_id) not in claimed and rule.is_orphan(provider, item):
                view = {"provider": provider, "provider_id": item.provider_id}
                note = orphan_note(item)
                rows.append(
                    _row(
                        kind,
                        observed_name(item),
                        provider,
                        names=names,
                        planned=None,
                        tracked=None,
                        observed=view,
                        note=note,
                    )
                )
    return rows


def _rules(rules: tuple[PlannedRule, ...]) -> str:
    return "; ".join(" ".join(filter(None, (r.direction, r.protocol, r.port, *r.sources))) for r in rules)


ACCESS_FIELD = "operator_cidrs"


def _cidr_list(sources: Iterable[str]) -> str:
    return ",".join(sorted(set(sources))) or "(none)"


def access_field(planned: Iterable[str], tracked: TrackedFirewall | None, *, port: str) -> FieldDiff:
    """The operator access of one cluster firewall: the sources it should let reach TCP ``port``
    (SSH) against those the tracked firewall lets in. A tracked firewall that has recorded no rules
    yet has no tracked view (nothing to compare, not "closed")."""
    tracked_view = None
    if tracked is not None and tracked.rules:
        tracked_view = _cidr_list(
            source
            for rule in tracked.rules
            if (rule.direction, rule.protocol, rule.port) == ("in", "tcp", port)
            for source in rule.sources
        )
    return FieldDiff(field=ACCESS_FIELD, planned=_cidr_list(planned), tracked=tracked_view, observed=None)


_IP_FIELDS = ("provider", "provider_id", "address", "location")


def _orphan_ips(state: LegionState, rule: OrphanRule) -> list[ResourceDiff]:
    """A row per orphan public IP of each refreshed provider, named by its address; its
    ``provider_id`` is the resource id ``orphan_delete`` takes (``floating_ip/<id>``)."""
    rows: list[ResourceDiff] = []
    for provider, observed in sorted(state.observed.items()):
        if not observed.public_ips:
            continue
        for ip in sorted(observed.public_ips.values(), key=lambda i: (i.kind, i.address)):
            if not rule.is_orphan(provider, ip):
                continue
            kind: Kind = "floating_ip" if ip.kind == "floating" else "primary_ip"
            view = {
                "provider": provider,
                "provider_id": ip.resource_id,
                "address": ip.address,
                "location": ip.location or None,
            }
            named = f" {ip.name!r}" if ip.name and ip.name != ip.address else ""
            rows.append(
                _row(
                    kind,
                    ip.address,
                    provider,
                    names=_IP_FIELDS,
                    planned=None,
                    tracked=None,
                    observed=view,
                    note=f"{ip.kind} IP{named} with Legion's labels, assigned to no server",
                )
            )
    return rows


def diff(
    state: LegionState, *, server_rows: ServerRows | None = None, orphans: OrphanRule | None = None
) -> Diff:
    """Every resource's three views and the action it needs; pure and deterministic (sorted).
    ``server_rows`` keeps the server rows between diffs of successive states (same result).
    ``orphans`` is the rule over ``state`` that refresh and ``orphan_delete`` apply: callers that
    derive the cluster's firewall sets pass it built with them
    (:func:`~legion_nb.engine.cluster.firewall_plan.cluster_orphan_rule`), so a listed firewall with
    a derived set's name is wanted here too; the default knows the planned firewalls only."""
    rule = orphans if orphans is not None else OrphanRule(state)
    rows = _servers(state, rule, server_rows)
    rows += _simple(
        state,
        rule,
        "dns_zone",
        planned=state.scheme.dns_zones,
        tracked=state.tracked.dns_zones,
        observed_of=lambda o: o.dns_zones,
        observed_name=lambda o: o.zone,
        planned_view=lambda p: {"provider": p.provider},
        tracked_view=lambda t: {
            "provider": t.provider,
            "provider_id": t.provider_id,
            "records": str(len(t.records)),
        },
        names=("provider", "provider_id", "records"),
    )
    rows += _simple(
        state,
        rule,
        "firewall",
        planned=state.scheme.firewalls,
        tracked=state.tracked.firewalls,
        observed_of=lambda o: o.firewalls,
        observed_name=lambda o: o.name,
        planned_view=lambda p: {
            "provider": p.provider,
            "rules": _rules(p.rules),
            "servers": ",".join(p.servers),
        },
        tracked_view=lambda t: {
            "provider": t.provider,
            "provider_id": t.provider_id,
            "rules": _rules(t.rules),
            "servers": ",".join(t.servers),
        },
        names=("provider", "provider_id", "rules", "servers"),
    )
    rows += _simple(
        state,
        rule,
        "domain",
        planned=state.scheme.domains,
        tracked=state.tracked.domains,
        observed_of=None,
        observed_name=lambda o: str(o.name),
        planned_view=lambda p: {"provider": p.provider},
        tracked_view=lambda t: {"provider": t.provider, "provider_id": t.provider_id, "status": t.status},
        names=("provider", "provider_id", "status"),
    )
    rows += _orphan_ips(state, rule)
    return Diff(resources=tuple(rows))
