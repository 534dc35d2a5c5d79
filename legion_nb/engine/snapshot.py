"""The app snapshot assembler: actor beliefs joined with desired, tracked and observed records.

Why a join and not a second read model: the resource actors say what Legion *believes* about each
resource (lifecycle, current operation, why it waits, the last error); the state says what was
*planned*, what is *tracked* and what the providers last *reported*. The panels, the CLI and the
daemon need both on one row, so this module joins them, purely, from one state value and one set
of actor snapshots. It never creates an actor: a record whose actor has not reported yet gets an
``unknown`` row until it does.

Row keys (the widgets' schema, :mod:`legion_nb.widgets.rows`, plus detail for ``--json``)::

    kind name provider action state operation substage waiting error note warnings
    system health checked_at reason settled facts fields revision

``note`` explains the row in words; ``warnings`` (``[{code, message}]``) are what the operator
should decide about, such as SSH and the admin API open to anywhere: a field of their own, so
that the CLI, ``--json``, the panels and the frames show them without parsing the note.

``checked_at`` and ``reason`` say when observation last polled a deployed node and why its
``health`` is not ``healthy`` (both null for other rows).

``action`` is the pure diff's verdict; ``state`` is the actor's lifecycle. Firewall sets derived
from the cluster plan (:mod:`engine.cluster.firewall_plan`) are planned by derivation, not by the
operator: the diff does not know them, so their action is ``create`` until tracked (``adopt`` when
the provider already lists a Legion-labelled firewall of that name, which refresh takes over) and
``unchanged`` afterwards (the actor converges their rules), never the diff's ``delete``; except that a
change of the planned operator access reads ``update`` until the tracked rules let in the new CIDRs.
A planned server whose explicit server type, location or image its provider's catalog does not
offer carries a :data:`NOT_IN_CATALOG` warning (:func:`with_catalog_warnings`), so the diff says
"cx999 is not in the hetzner catalog" rather than only that it cannot price it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from legion_nb.engine.billing.plan_cost import PlanCostCache
from legion_nb.engine.cluster.firewall_plan import (
    SSH_PORT,
    FirewallSetPlan,
    build_cluster_firewall_plan,
    cluster_orphan_rule,
)
from legion_nb.engine.diff import (
    POLICY,
    Action,
    Diff,
    FieldDiff,
    ResourceDiff,
    ServerRows,
    access_field,
    diff,
)
from legion_nb.engine.events import EventHub
from legion_nb.engine.redaction import redact_data
from legion_nb.engine.reports import PlanWarning
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey, key_order
from legion_nb.engine.results import AppSnapshot, SnapshotRow, WarningView
from legion_nb.engine.state.model import LegionState
from legion_nb.engine.tasks import ServiceTasks
from legion_nb.legion_labels import claimed_legion_id
from legion_nb.providers.catalog import CatalogMiss, catalog_misses
from legion_nb.providers.records import Catalog
from legion_nb.readonly import same_objects

if TYPE_CHECKING:
    from legion_nb.engine.providers_service import ProviderService
    from legion_nb.engine.resources.ports import StatePort
    from legion_nb.engine.resources.supervisor import ResourceSupervisor

__all__ = [
    "NOT_IN_CATALOG",
    "UNKNOWN",
    "CatalogWarnings",
    "SnapshotPublisher",
    "SnapshotRows",
    "StateView",
    "assemble",
    "locked_snapshot",
    "row_of",
    "with_catalog_warnings",
    "with_derived_firewalls",
]

UNKNOWN = "unknown"


def row_of(
    resource: ResourceDiff | None,
    actor: ActorSnapshot | None,
    *,
    fields: list[dict[str, Any]] | None = None,
) -> SnapshotRow:
    """One row from a diff row and/or an actor snapshot (an ``unknown`` row without the actor).
    ``fields`` is ``resource``'s field diffs as JSON, when the caller built them already."""
    if resource is not None:
        kind, name, provider = resource.kind, resource.name, resource.provider
    elif actor is not None:
        kind, name, provider = actor.key.kind, actor.key.identity, actor.provider
    else:
        raise ValueError("a snapshot row needs a diff row or an actor snapshot")
    if not provider and actor is not None:
        provider = actor.provider
    if fields is None:
        fields = resource.to_json()["fields"] if resource is not None else []
    facts: dict[str, Any] = dict(actor.facts) if actor is not None else {}
    return {
        "kind": kind,
        "name": name,
        "provider": provider,
        "action": resource.action if resource is not None else "",
        "note": resource.note if resource is not None else "",
        "warnings": [WarningView(code=w.code, message=w.message) for w in resource.warnings]
        if resource is not None
        else [],
        "fields": fields,
        "state": actor.lifecycle if actor is not None else UNKNOWN,
        "system": actor.system if actor is not None else None,
        "health": actor.health if actor is not None else UNKNOWN,
        "operation": (actor.operation or "") if actor is not None else "",
        "substage": (actor.substage or "") if actor is not None else "",
        "waiting": (actor.waiting or "") if actor is not None else "",
        "error": (actor.error or "") if actor is not None else "",
        "settled": actor.settled if actor is not None else False,
        "facts": facts,
        "revision": actor.revision if actor is not None else 0,
        "checked_at": facts.get("checked_at"),
        "reason": facts.get("reason"),
    }


NOT_IN_CATALOG = "not_in_catalog"
"""The code of the warning on a planned server whose explicit choice the catalog does not offer."""


def _listed_for_adoption(state: LegionState, plan: FirewallSetPlan) -> bool:
    """Whether the plan's provider lists an untracked firewall of the set's name with both Legion
    labels: the one refresh adopts for it, so the diff must not promise a create."""
    observed = state.observed.get(plan.provider)
    if observed is None:
        return False
    tracked_ids = {t.provider_id for t in state.tracked.firewalls.values() if t.provider == plan.provider}
    return any(
        found.name == plan.name
        and found.provider_id not in tracked_ids
        and claimed_legion_id(found.labels) is not None
        for found in observed.firewalls.values()
    )


def with_derived_firewalls(
    result: Diff,
    state: LegionState,
    admin_sources: tuple[str, ...] | None = None,
    *,
    plans: Mapping[str, FirewallSetPlan] | None = None,
) -> Diff:
    """``result`` with the cluster's derived firewall sets as planned resources (module notes):
    ``create`` until tracked (``adopt`` when refresh would take over a Legion-labelled firewall of
    that name the provider lists), ``update`` while the tracked rules let in other operator CIDRs than
    planned, else ``unchanged``; the actor converges their rules either way. Every firewall row,
    derived or planned by hand, carries its set's warnings (access open to anywhere, a planned set
    replacing a derived one). ``plans`` is the derived plan of ``state`` when the caller has it
    (built from ``admin_sources`` otherwise)."""
    if plans is None:
        plans = build_cluster_firewall_plan(state, admin_sources=admin_sources)
    derived = {plan.name: plan for plan in plans.values() if plan.cluster is not None}
    flagged = {plan.name: plan.warnings for plan in plans.values() if plan.warnings}
    if not derived and not flagged:
        return result

    def access(plan: FirewallSetPlan) -> FieldDiff:
        ssh = next(r for r in plan.rules if r.port is not None and r.port.first == SSH_PORT)
        return access_field(ssh.sources, state.tracked.firewalls.get(plan.name), port=str(SSH_PORT))

    def action(plan: FirewallSetPlan, field: FieldDiff) -> Action:
        if plan.name not in state.tracked.firewalls:
            return "adopt" if _listed_for_adoption(state, plan) else "create"
        return "update" if field.changed else "unchanged"

    def note(plan: FirewallSetPlan) -> str:
        where = ("enforced on the nodes",) if plan.node_level else ()
        return "; ".join((f"derived from cluster {plan.cluster}", *where))

    resources: list[ResourceDiff] = []
    for resource in result.resources:
        if resource.kind != "firewall":
            resources.append(resource)
            continue
        plan = derived.pop(resource.name, None)
        if plan is None:  # planned by hand: only its warnings come from the plan
            warnings = flagged.get(resource.name, ())
            resources.append(replace(resource, warnings=warnings) if warnings else resource)
            continue
        field = access(plan)
        resources.append(
            replace(
                resource,
                action=action(plan, field),
                fields=(*resource.fields, field),
                note=note(plan),
                warnings=plan.warnings,
            )
        )
    for plan in derived.values():
        field = access(plan)
        resources.append(
            ResourceDiff(
                "firewall",
                plan.name,
                plan.provider,
                action(plan, field),
                (field,),
                note(plan),
                plan.warnings,
            )
        )
    return Diff(tuple(resources))


def _catalog_warning(miss: CatalogMiss, catalog: Catalog) -> PlanWarning:
    nearest = f"; nearest: {', '.join(miss.choices)}" if miss.choices else ""
    which = "the embedded snapshot" if catalog.source == "embedded" else "the catalog read from it"
    return PlanWarning(
        NOT_IN_CATALOG,
        f"{miss.sentence()} ({which}){nearest}: materialize fails unless {miss.provider} offers it "
        f"(see 'legion catalog {miss.provider}')",
    )


_CatalogKey = tuple[str, str, str, str]
"""A planned server's provider, server type, location and image (empty: the policy picks it)."""


_WarnedRow = tuple[ResourceDiff, _CatalogKey | None, tuple[PlanWarning, ...], ResourceDiff]


class CatalogWarnings:
    """The :data:`NOT_IN_CATALOG` warnings of the last views, reused while their inputs are the
    same: a choice's warnings are checked once per (provider, server type, location, image) and
    that provider's catalog (catalogs are immutable: identity says whether it changed), and a server
    row keeps its choices and its warned copy while the diff row and its warnings are the same
    objects. So a commit that leaves the servers and catalogs alone builds no row again, and the
    views and the snapshot rows downstream, which reuse rows by identity, rebuild nothing either.
    One view at a time may use a cache."""

    def __init__(self) -> None:
        self.checked: dict[_CatalogKey, tuple[Catalog, tuple[PlanWarning, ...]]] = {}
        self.rows: dict[int, _WarnedRow] = {}
        """By the identity of the diff row: the row, its choices, the warnings it got and the row out."""


def _planned_choice(row: ResourceDiff) -> _CatalogKey | None:
    """The planned provider and explicit choices of a server row (the diff wrote them from the
    planned server), or None when the row has no planned server or it leaves every choice to the
    policy."""
    if row.kind != "server":
        return None
    planned = {f.field: f.planned for f in row.fields}
    provider = planned.get("provider")
    if provider is None:
        return None

    def explicit(name: str) -> str:
        value = planned.get(name)
        return "" if value is None or value == POLICY else value

    server_type, location, image = explicit("server_type"), explicit("location"), explicit("image")
    if not (server_type or location or image):
        return None
    return provider, server_type, location, image


def with_catalog_warnings(
    resources: tuple[ResourceDiff, ...],
    catalog_of: Callable[[str], Catalog],
    cache: CatalogWarnings | None = None,
) -> tuple[ResourceDiff, ...]:
    """``resources`` with a :data:`NOT_IN_CATALOG` warning on each planned server row whose explicit
    server type, location or image ``catalog_of(provider)`` does not offer; every other row is the
    same object (the views reuse rows by identity), and ``cache`` keeps a warned row the same
    object while its diff row, choices and catalog are."""
    cache = cache or CatalogWarnings()
    catalogs: dict[str, Catalog] = {}
    checked: dict[_CatalogKey, tuple[Catalog, tuple[PlanWarning, ...]]] = {}
    kept: dict[int, _WarnedRow] = {}
    out: list[ResourceDiff] = []
    for row in resources:
        if row.kind != "server":
            out.append(row)
            continue
        hit = cache.rows.get(id(row))
        if hit is not None and hit[0] is not row:
            hit = None
        key = hit[1] if hit is not None else _planned_choice(row)
        warnings: tuple[PlanWarning, ...] = ()
        if key is not None:
            catalog = catalogs.get(key[0])
            if catalog is None:
                catalog = catalogs[key[0]] = catalog_of(key[0])
            found = checked.get(key)
            if found is None:
                found = cache.checked.get(key)
                if found is None or found[0] is not catalog:
                    misses = catalog_misses(catalog, server_type=key[1], location=key[2], image=key[3])
                    found = (catalog, tuple(_catalog_warning(miss, catalog) for miss in misses))
                checked[key] = found
            warnings = found[1]
        if hit is None or hit[2] is not warnings:
            warned = replace(row, warnings=(*row.warnings, *warnings)) if warnings else row
            hit = (row, key, warnings, warned)
        kept[id(row)] = hit
        out.append(hit[3])
    cache.checked, cache.rows = checked, kept
    return tuple(out)


@dataclass(frozen=True, slots=True)
class StateView:
    """The state's side of the join, computed once per state value: the diff rows, derived firewall
    sets included. Actor changes far outnumber state commits, so the publisher reuses it until the
    state changes (states are immutable: identity says whether it did)."""

    state: LegionState
    resources: tuple[ResourceDiff, ...]
    entries: tuple[tuple[ResourceKey, ResourceDiff, list[dict[str, Any]]], ...]
    """One per row key, sorted by key, with its field diffs as JSON (an orphan seen under a planned
    name at another provider is left out: the first resource of a key wins)."""
    cost: Mapping[str, Any] | None = None
    """The plan's monthly cost (:func:`~legion_nb.engine.billing.plan_cost.plan_cost` as JSON), when
    the view was given catalogs to price it with."""

    @classmethod
    def of(
        cls,
        state: LegionState,
        admin_sources: tuple[str, ...] | None = None,
        *,
        plans: Mapping[str, FirewallSetPlan] | None = None,
        previous: StateView | None = None,
        server_rows: ServerRows | None = None,
        catalog_of: Callable[[str], Catalog] | None = None,
        costs: PlanCostCache | None = None,
        warnings: CatalogWarnings | None = None,
    ) -> StateView:
        """The view of ``state``; ``previous`` (the view of an earlier state) and ``server_rows``
        let it reuse the rows and their JSON that the commits since then left alone; ``catalog_of``
        (a provider's catalog) prices the plan and warns about planned choices it lacks, ``costs``
        reuses the last price while the servers and catalogs are the same, and ``warnings`` the
        warned rows."""
        if plans is None:
            plans = build_cluster_firewall_plan(state, admin_sources=admin_sources)
        result = diff(state, server_rows=server_rows, orphans=cluster_orphan_rule(state, plans))
        resources = with_derived_firewalls(result, state, admin_sources, plans=plans).resources
        if catalog_of is not None:
            resources = with_catalog_warnings(resources, catalog_of, warnings)
        # A row the last view had (the same object) keeps its key and field JSON.
        built = {} if previous is None else {id(r): (key, fields) for key, r, fields in previous.entries}
        first: dict[ResourceKey, ResourceDiff] = {}
        for resource in resources:
            hit = built.get(id(resource))
            first.setdefault(ResourceKey(resource.kind, resource.name) if hit is None else hit[0], resource)
        entries = tuple(
            (key, first[key], _fields_json(first[key], built)) for key in sorted(first, key=key_order)
        )
        cost = None
        if catalog_of is not None:
            costs = costs or PlanCostCache()
            cost = costs.cost_json(state, catalog_of)
        return cls(state, resources, entries, cost)


def _fields_json(
    resource: ResourceDiff, built: Mapping[int, tuple[ResourceKey, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    hit = built.get(id(resource))
    return hit[1] if hit is not None else resource.to_json()["fields"]


class SnapshotRows:
    """The rows of the last assembly, each reused while its diff row, field diffs and actor
    snapshot are the same objects: a commit or an actor change rebuilds the rows it moved, not the
    fleet's. Rows are shared between the snapshots they appear in, which every reader only reads.
    One assembly at a time may use a cache."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[tuple[object, ...], SnapshotRow]] = {}
        """By the identity of the diff row each came from, with the objects it was built from."""


def assemble(
    state: LegionState,
    revision: int,
    actors: Iterable[ActorSnapshot],
    *,
    providers: Iterable[Mapping[str, Any]] = (),
    admin_sources: tuple[str, ...] | None = None,
    view: StateView | None = None,
    built: SnapshotRows | None = None,
) -> AppSnapshot:
    """The app snapshot: one row per resource the diff or an actor knows, sorted by kind and name.
    ``view`` is :meth:`StateView.of` ``state``, when the caller has it already; ``built`` keeps the
    rows between assemblies."""
    if view is None or view.state is not state:
        view = StateView.of(state, admin_sources)
    by_key = {snapshot.key: snapshot for snapshot in actors}
    previous = built.rows if built is not None else {}
    kept: dict[int, tuple[tuple[object, ...], SnapshotRow]] = {}
    rows: list[SnapshotRow] = []
    for key, resource, fields in view.entries:
        actor = by_key.get(key)
        inputs = (resource, fields, actor)
        hit = previous.get(id(resource))  # a diff row names its row: each is kept alive by its entry
        if hit is not None and same_objects(hit[0], inputs):
            row = hit[1]
        else:
            row = row_of(resource, actor, fields=fields)
        kept[id(resource)] = (inputs, row)
        rows.append(row)
    if built is not None:
        built.rows = kept
    # An actor the state no longer calls for is about to be stopped: shown only while it works.
    working = [a for a in by_key.values() if not a.settled]
    if working:
        listed = {key for key, _resource, _fields in view.entries}
        extra = [(a.key, row_of(None, a)) for a in working if a.key not in listed]
        if extra:  # rare: the view's rows are in key order already
            keyed = [(entry[0], row) for entry, row in zip(view.entries, rows, strict=True)] + extra
            rows = [row for _key, row in sorted(keyed, key=lambda pair: key_order(pair[0]))]
    snapshot: AppSnapshot = {
        "locked": False,
        "revision": revision,
        "rows": rows,
        "providers": [redact_data(dict(p)) for p in providers],  # last_error quotes provider replies
    }
    if view.cost is not None:  # the totals only: the per-server list would grow every publication
        snapshot["cost"] = {k: view.cost[k] for k in ("period", "currencies", "unpriced")}
    return snapshot


def locked_snapshot() -> AppSnapshot:
    """What a locked engine publishes: no rows, nothing from the state."""
    return {"locked": True, "revision": None, "rows": []}


class SnapshotPublisher:
    """Publishes the assembled snapshot on "snapshot" after state commits and actor changes.

    Both sources only mark the snapshot dirty. The hub builds it at most once per loop tick, and
    this publisher paces it further: at most one publication per ``min_interval`` seconds (the first
    change goes out at once, later ones in that window are folded into one trailing publication),
    since nobody reads faster than the panels' ~10 redraws a second. A burst of thousands of
    changes costs one assembly; an apply of hundreds of resources a few per second.

    The state's side of the join (:class:`StateView`: the diff of every resource) is built once per
    state. The first one after unlock holds every row, tens of milliseconds for a fleet of thousands:
    it is built in a worker thread (it is pure on the immutable state) and the publication waits
    for it, the loop does not. After that each commit's view reuses the rows of the records it left
    alone (:class:`~legion_nb.engine.diff.ServerRows`) and costs a few milliseconds on the loop.

    A session service: entering it publishes the first unlocked snapshot; :meth:`aclose` publishes
    the locked one, so every subscriber sees the state lock.
    """

    def __init__(
        self,
        hub: EventHub,
        state: StatePort,
        resources: ResourceSupervisor,
        providers: ProviderService,
        *,
        min_interval: float = 0.1,
    ) -> None:
        self._hub = hub
        self._state = state
        self._resources = resources
        self._providers = providers
        self._min_interval = min_interval
        self._subscriptions: list[Callable[[], None]] = []
        self._view: StateView | None = None
        self._last = float("-inf")
        self._trailing: asyncio.TimerHandle | None = None
        self._viewing: asyncio.Task[None] | None = None
        self._server_rows = ServerRows()
        self._costs = PlanCostCache()
        self._warnings = CatalogWarnings()
        self._rows = SnapshotRows()
        self._tasks = ServiceTasks("the snapshot publisher")
        self._closed = False
        self._sections: dict[str, Callable[[], Any]] = {}

    def add_section(self, name: str, build: Callable[[], Any]) -> None:
        """Publish ``build()`` under ``name`` in every snapshot (e.g. the scheduler's ``observation``)."""
        self._sections[name] = build

    def current(self) -> AppSnapshot:
        """The snapshot as of now."""
        state = self._state.state
        admin = self._resources.settings.admin_sources
        if self._stale(state):
            self._view = self._view_of(state)
        snapshot = assemble(
            state,
            self._state.revision,
            self._resources.snapshots() if self._resources.running else (),
            providers=self._providers.status(),
            admin_sources=admin,
            view=self._view,
            built=self._rows,
        )
        sections = cast(dict[str, Any], snapshot)  # the sections are declared on AppSnapshot
        for name, build in self._sections.items():
            sections[name] = build()
        return snapshot

    async def fresh(self) -> AppSnapshot:
        """:meth:`current`, with the state's side built off the loop when the state moved."""
        await self.view()
        return self.current()

    async def view(self) -> StateView | None:
        """The view of the current state (None once closed); ``engine.diff`` reads its rows."""
        while not self._closed and self._stale(self._state.state):
            if self._view is not None and self._viewing is None:
                self._view = self._view_of(self._state.state)
                break
            await asyncio.shield(self._cold_view())
        return None if self._closed else self._view

    def _view_of(self, state: LegionState) -> StateView:
        """The view of ``state`` on the loop, from the last one (its rows reused where the records
        are the same); the row cache only while no worker thread uses it."""
        return StateView.of(
            state,
            self._resources.settings.admin_sources,
            plans=self._plans(state),
            previous=self._view,
            server_rows=self._server_rows if self._viewing is None else None,
            catalog_of=self._providers.catalog,
            costs=self._costs if self._viewing is None else None,
            warnings=self._warnings if self._viewing is None else None,
        )

    def _cold_view(self) -> asyncio.Task[None]:
        if self._viewing is None:
            self._viewing = self._tasks.spawn(self._prepare_view(), name="legion-snapshot-view")
        return self._viewing

    def _stale(self, state: LegionState) -> bool:
        return self._view is None or self._view.state is not state

    def _plans(self, state: LegionState) -> Mapping[str, FirewallSetPlan] | None:
        return self._resources.firewall_plans.plans(state) if self._resources.running else None

    async def _prepare_view(self) -> None:
        """Build the first view of the unlocked state in a worker thread, then publish what waited
        for it (a commit meanwhile is folded in on the loop, from this view's rows)."""
        try:
            if not self._closed and self._view is None:
                state = self._state.state
                admin = self._resources.settings.admin_sources
                view = await asyncio.to_thread(
                    StateView.of,
                    state,
                    admin,
                    plans=self._plans(state),
                    server_rows=self._server_rows,  # the loop leaves it alone while this runs
                    catalog_of=self._providers.catalog,
                    costs=self._costs,  # and these
                    warnings=self._warnings,
                )
                if not self._closed:
                    self._view = view
        finally:
            self._viewing = None
        if not self._closed:
            self.mark()  # paced like any change

    def mark(self, *_: object) -> None:
        """Something changed: publish now, or once at the end of the current pacing window."""
        if self._closed or self._trailing is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self._min_interval - loop.time()
        if wait <= 0:
            self._publish()
        else:
            self._trailing = loop.call_later(wait, self._publish)

    def _publish(self) -> None:
        self._trailing = None
        if self._closed or self._viewing is not None:
            return  # locked, or a view in the making publishes when it is ready
        if self._view is None:
            self._cold_view()
            return
        if self._stale(self._state.state):
            # Now, in its own turn of the loop: the hub assembles the rows in the next one.
            self._view = self._view_of(self._state.state)
        self._last = asyncio.get_running_loop().time()
        self._hub.publish_snapshot(self.current)

    async def __aenter__(self) -> SnapshotPublisher:
        self._subscriptions = [self._state.subscribe(self.mark), self._resources.subscribe(self.mark)]
        self.mark()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop publishing and publish the locked snapshot (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._subscriptions:
            unsubscribe()
        self._subscriptions.clear()
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        await self._tasks.aclose()
        self._viewing = None
        self._view = None
        self._server_rows = ServerRows()  # the rows hold records of the state: gone with it
        self._costs = PlanCostCache()
        self._warnings = CatalogWarnings()
        self._rows = SnapshotRows()
        self._hub.forget_snapshot()
        self._hub.publish("snapshot", locked_snapshot())
