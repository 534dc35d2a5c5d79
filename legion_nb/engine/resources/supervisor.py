"""The resource supervisor: one actor per (kind, identity) while the state is unlocked.

Why a supervisor: actors are the engine's read model and its only reconcilers, so something must
keep exactly one of each alive, route waves to them, and turn their many small changes into few
publications.

* **Actors follow the state.** After every committed state change the supervisor (re)computes the
  resource keys the state calls for (planned or tracked servers, zones, domains, and every firewall
  set of the derived plan) and starts actors for new keys. An actor whose key vanished is stopped
  once it has nothing in flight. Locking the state stops them all.
* **Waves.** :meth:`ResourceSupervisor.sync_wave` sends SYNC to servers first and then to the
  zones, firewalls and domains, so that the derived actors see servers already at work and wait
  for their endpoints instead of applying a half-known set. A state change feeds waiting actors a
  ``recheck``: they go on once their prerequisites are in the state. When tracked servers change
  (an address learned or moved), zones and firewalls already applied are rechecked too and apply
  the new full set (a firewall only while a wave is at work, see :meth:`ResourceSupervisor.wave_running`);
  plan edits alone wait for the next wave. A pass touches only the derived
  actors the commit can move (:func:`~legion_nb.engine.resources.affected.affected_keys`, plus
  those reading a server whose actor started or finished work), never every one.
* **Time slices.** Starting, rechecking, waving and stopping actors are loops of small steps:
  each yields to the loop once a slice (``ResourceSettings.loop_slice``) is used up, so a fleet of
  thousands never holds the kernel's loop for long (:class:`TimeSlice`).
* **Coalesced publication.** Actors report each new snapshot synchronously; the supervisor keeps
  the latest per key and schedules ONE flush per loop tick (``loop.call_soon``), which hands every
  listener the changed snapshots together. A burst of 10,000 changes in one tick is one call.
* **Repairs.** :meth:`ResourceSupervisor.run_repairs` re-sends work to the actors whose last wave
  ended in a temporary provider error: the one repair that is always safe. It then runs the safe
  node repairs the selection names (:mod:`~legion_nb.engine.cluster.repairs`: NBDE drift, a Tang
  peer dropped on a node, diverged membership), each dispatched as RUN_REPAIR to that node's actor,
  which calls the deployment runtime for its own node. :meth:`ResourceSupervisor.plan_repairs`
  says beforehand what the next run would do and why; the supervisor's :class:`RepairBudget` holds
  back a node whose fault outlives its attempts. Materialize uses the unbudgeted
  :meth:`ResourceSupervisor.run_nbde_repairs`: each deployed node whose disk binding differs from
  its cluster's policy runs ``nbde_promote`` or ``nbde_reconcile`` through its actor, round after
  round, so NBDE moves local -> tang -> quorum as a cluster grows to three healthy nodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from legion_nb.engine.cluster.firewall_plan import FirewallPlanCache, FirewallSetPlan
from legion_nb.engine.cluster.nbde import nbde_repairs
from legion_nb.engine.cluster.repairs import (
    NodeReport,
    RepairBudget,
    RepairDecision,
    RepairTarget,
    nbde_operation,
    select_repairs,
)
from legion_nb.engine.heap import HeapFreeze
from legion_nb.engine.resources.actor import ActorContext, NodeDeployer, ResourceActor, ResourceSettings
from legion_nb.engine.resources.affected import affected_keys, changed_names, keys_reading_servers
from legion_nb.engine.resources.dns_zone import DnsZoneActor
from legion_nb.engine.resources.domain import DomainActor
from legion_nb.engine.resources.firewall import FirewallActor
from legion_nb.engine.resources.node import ServerNodeActor
from legion_nb.engine.resources.ports import ProviderAccess, StatePort
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey, ResourceKind, key_order
from legion_nb.engine.resources.timeslice import TimeSlice
from legion_nb.engine.resources.tracing import ActorTracer, tracing_enabled
from legion_nb.engine.state.edits import with_repair_attempts
from legion_nb.engine.state.model import LegionState
from legion_nb.engine.tasks import ServiceTasks
from legion_nb.errors import LockedError
from legion_nb.readonly import same_objects

if TYPE_CHECKING:
    from legion_nb.engine.state.persistence import StateChange

__all__ = [
    "NBDE_REPAIR_ROUNDS",
    "ResourceSupervisor",
    "SnapshotListener",
    "desired_keys",
    "nbde_operation",
    "server_keys",
]

log = logging.getLogger(__name__)

SnapshotListener = Callable[[list[ActorSnapshot]], None]
_ACTORS: dict[ResourceKind, type[ResourceActor]] = {
    "server": ServerNodeActor,
    "dns_zone": DnsZoneActor,
    "firewall": FirewallActor,
    "domain": DomainActor,
}
_WAVE_ORDER: tuple[ResourceKind, ...] = ("server", "dns_zone", "firewall", "domain")

NBDE_REPAIR_ROUNDS = 3
"""NBDE repair rounds per pass: enough for local -> tang -> quorum, and a bound if a node flaps."""


def desired_keys(
    state: LegionState,
    firewall_plans: Mapping[str, FirewallSetPlan],
    *,
    servers: Mapping[ResourceKey, str] | None = None,
) -> dict[ResourceKey, str]:
    """Every resource key the state calls for, with the provider its actor talks to
    (``firewall_plans``: the derived plan of ``state``; ``servers``: its :func:`server_keys`, when
    the caller has them)."""
    keys = dict(server_keys(state) if servers is None else servers)
    for zone, tracked_zone in state.tracked.dns_zones.items():
        keys[ResourceKey("dns_zone", zone)] = tracked_zone.provider
    for zone, planned_zone in state.scheme.dns_zones.items():
        keys.setdefault(ResourceKey("dns_zone", zone), planned_zone.provider)
    for name, firewall in state.tracked.firewalls.items():
        keys[ResourceKey("firewall", name)] = firewall.provider
    for name, plan in firewall_plans.items():
        keys.setdefault(ResourceKey("firewall", name), plan.provider)
    for name, domain in state.tracked.domains.items():
        keys[ResourceKey("domain", name)] = domain.provider
    for name, planned_domain in state.scheme.domains.items():
        keys.setdefault(ResourceKey("domain", name), planned_domain.provider)
    return keys


def server_keys(state: LegionState) -> dict[ResourceKey, str]:
    """The server keys of :func:`desired_keys`: tracked, planned or about to be created."""
    keys: dict[ResourceKey, str] = {}
    for name, server in state.tracked.servers.items():
        keys[ResourceKey("server", name)] = server.provider
    for name, (_cluster, planned) in state.scheme.servers().items():
        keys.setdefault(ResourceKey("server", name), planned.provider)
    for pending in state.tracked.pending.values():
        if pending.kind == "server":
            keys.setdefault(ResourceKey("server", pending.name), pending.provider)
    return keys


def _server_inputs(state: LegionState) -> tuple[object, ...]:
    """What :func:`server_keys` reads of ``state``."""
    return (state.tracked.servers, state.scheme.clusters, state.tracked.pending)


class ResourceSupervisor:
    """A session service: one actor per resource key while the state is unlocked (module notes).

    Entering it starts the actors the state calls for and follows every commit from then on;
    :meth:`aclose` stops every actor (cancelling work in flight) and refuses waves afterwards.
    ``settings`` default to :meth:`ResourceSettings.from_env` (fallback operator CIDRs from the
    environment, used only while the plan has none); ``trace`` defaults to ``LEGION_TRACE_ACTORS``
    and writes its JSONL transitions under ``log_dir``.
    """

    def __init__(
        self,
        state: StatePort,
        providers: ProviderAccess,
        *,
        settings: ResourceSettings | None = None,
        trace: bool | None = None,
        deployment: NodeDeployer | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self._state = state
        self._providers = providers
        self._deployment = deployment
        self.settings = settings or ResourceSettings.from_env()
        self._heap = HeapFreeze(enabled=self.settings.freeze_heap)
        self.firewall_plans = FirewallPlanCache(self.settings.admin_sources)
        """The derived firewall plan of the current state, shared by the actors and the snapshot."""
        self._trace = (tracing_enabled() if trace is None else trace) and log_dir is not None
        self._log_dir = log_dir
        self._tracer: ActorTracer | None = None
        self._actors: dict[ResourceKey, ResourceActor] = {}
        self._listeners: list[SnapshotListener] = []
        self._dirty: dict[ResourceKey, ActorSnapshot] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._changed = asyncio.Event()
        self._subscriptions: list[Callable[[], None]] = []
        self._tasks = ServiceTasks("the resource supervisor")
        self._reconcile_task: asyncio.Task[None] | None = None
        self._reconcile_again = False
        self._endpoints_moved = False
        self._affected: set[ResourceKey] | None = set()
        """Derived actors the commits since the last pass can move (None: all of them)."""
        self._busy_moved: set[str] = set()
        """Servers whose actors started or finished work since the last pass."""
        self._server_settled: dict[str, bool] = {}
        self._synced: tuple[LegionState, Mapping[str, FirewallSetPlan]] | None = None
        """The state (and its firewall plan) whose keys the actors match one to one, if they do."""
        self._servers: tuple[tuple[object, ...], dict[ResourceKey, str]] = ((), {})
        """The server keys of the last sync and the parts of its state they came from."""
        self._lock = asyncio.Lock()
        self._closed = False
        self._wave_open = False
        """A wave is at work (:meth:`wave_running`)."""
        self._sending = 0
        """Waves still sending their SYNCs: a wave cannot end before its last actor heard it."""
        self.publications = 0
        self.repair_budget = RepairBudget()
        """Attempts per node for the scheduled repairs, restored from the state at unlock and
        written back before each repair runs (``LegionState.repair_attempts``)."""

    # -- service lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> ResourceSupervisor:
        """Start actors for what the state holds and follow its commits."""
        if self._trace and self._log_dir is not None:
            self._tracer = ActorTracer(self._log_dir)
        self._subscriptions.append(self._state.subscribe(self._state_changed))
        self.repair_budget.restore(self._state.state.repair_attempts)
        try:
            self._heap.settle()  # the decoded state: out of full collections while the actors start
            await self.sync_from_state()
            self._heap.settle()
        except BaseException:
            await self.aclose()  # the actors started so far stop, and the heap claim ends with them
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every actor (cancelling work in flight); waves are refused from here on (idempotent)."""
        self._closed = True  # first: nothing may start actors or reconcile from here on
        for unsubscribe in self._subscriptions:
            unsubscribe()
        self._subscriptions.clear()
        await self._tasks.aclose()
        self._reconcile_task = None
        async with self._lock:
            actors, self._actors = self._actors, {}
            self._synced, self._servers = None, ((), {})
            budget = self._slice()
            for actor in actors.values():
                try:
                    await actor.stop()
                except Exception:  # one actor failing to stop must not keep the others running
                    log.exception("stopping actor %s failed", actor.key)
                await budget.checkpoint()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._dirty.clear()
        self._affected, self._busy_moved, self._server_settled = set(), set(), {}
        self.firewall_plans.clear()
        if self._tracer is not None:
            self._tracer.close()
            self._tracer = None
        self._changed.set()
        self._heap.release()

    @property
    def running(self) -> bool:
        return not self._closed

    def _require_state(self) -> StatePort:
        if self._closed:
            raise LockedError("resource actors are stopped: unlock the state first")
        return self._state

    # -- actors ---------------------------------------------------------------------------------

    async def sync_from_state(self) -> None:
        """Start actors for new keys and stop settled ones whose key the state no longer has."""
        async with self._lock:
            state = self._require_state()
            current = state.state
            plans = self.firewall_plans.plans(current)
            if self._synced is not None and self._synced[0] is current and self._synced[1] is plans:
                return  # the actors are exactly this state's keys already (a pass after a settle)
            self._synced = None
            inputs = _server_inputs(current)
            if not same_objects(inputs, self._servers[0]):  # a fleet's worth of keys: rebuilt when they move
                self._servers = (inputs, server_keys(current))
            keys = desired_keys(current, plans, servers=self._servers[1])
            budget = self._slice()
            for key, provider in keys.items():
                if key not in self._actors:
                    actor = _ACTORS[key.kind](key, provider, self._context(state))
                    self._actors[key] = actor
                    await actor.start()
                    if await budget.checkpoint():
                        self._heap.settle()  # full collections would walk every actor started so far
            for key in [k for k in self._actors if k not in keys]:
                actor = self._actors[key]
                if actor.snapshot().settled:
                    del self._actors[key]
                    await actor.stop()
                    await budget.checkpoint()
            if len(self._actors) == len(keys):  # every key has its actor and no other is left
                self._synced = (current, plans)

    def _slice(self) -> TimeSlice:
        return TimeSlice(self.settings.loop_slice)

    def _context(self, state: StatePort) -> ActorContext:
        return ActorContext(
            providers=self._providers,
            state=state,
            changed=self._actor_changed,
            busy_servers=self.busy_servers,
            settings=self.settings,
            wave_running=self.wave_running,
            tracer=self._tracer,
            deployment=self._deployment,
            firewall_plans=self.firewall_plans,
        )

    def actor(self, key: ResourceKey) -> ResourceActor | None:
        return self._actors.get(key)

    def keys(self) -> list[ResourceKey]:
        return sorted(self._actors, key=key_order)

    def busy_servers(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` have a server actor with work in flight."""
        busy = []
        for name in names:
            actor = self._actors.get(ResourceKey("server", name))
            if actor is not None and not actor.snapshot().settled:
                busy.append(name)
        return sorted(busy)

    # -- snapshots and publication ----------------------------------------------------------------

    def snapshots(self) -> list[ActorSnapshot]:
        return [self._actors[key].snapshot() for key in sorted(self._actors, key=key_order)]

    def snapshot(self, key: ResourceKey) -> ActorSnapshot | None:
        actor = self._actors.get(key)
        return None if actor is None else actor.snapshot()

    def subscribe(self, listener: SnapshotListener) -> Callable[[], None]:
        """Call ``listener`` with the changed snapshots, at most once per loop tick."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _actor_changed(self, snapshot: ActorSnapshot) -> None:
        """Every actor reports here, synchronously; publication waits for the end of the tick."""
        self._dirty[snapshot.key] = snapshot
        if snapshot.key.kind == "server":
            name = snapshot.key.identity
            if self._server_settled.get(name, True) != snapshot.settled:
                self._busy_moved.add(name)  # zones and firewalls reading it may wait or go on
            self._server_settled[name] = snapshot.settled
        self._changed.set()
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._dirty:
            return
        changed = sorted(self._dirty.values(), key=lambda s: key_order(s.key))
        self._dirty = {}
        self.publications += 1
        for listener in tuple(self._listeners):
            try:
                listener(changed)
            except Exception:  # a broken listener must not stop the others
                log.exception("snapshot listener %s failed", getattr(listener, "__qualname__", "?"))
        if any(s.settled for s in changed):
            # A settled server may release waiting zones and firewalls; a settled teardown may
            # leave an actor whose key is gone.
            self._schedule_reconcile()

    # -- reacting to the state ------------------------------------------------------------------------

    def _state_changed(self, change: StateChange[LegionState]) -> None:
        before, after = change.before.tracked.servers, change.after.tracked.servers
        replaced = changed_names(before, after)
        for name in replaced:
            actor = self._actors.get(ResourceKey("server", name))
            if actor is not None and name in after:
                actor.touch()  # a deployment phase moved: the node's substage follows it
        affected = affected_keys(change.before, change.after)
        if affected is None or self._affected is None:
            self._affected = None
        else:
            self._affected |= affected
        moved = any(before.get(name) != after.get(name) for name in replaced)
        self._schedule_reconcile(endpoints_moved=moved)

    def _schedule_reconcile(self, *, endpoints_moved: bool = False) -> None:
        """Coalesce state changes and server settlements into one reconcile pass at a time."""
        if self._closed:
            return
        self._endpoints_moved |= endpoints_moved
        if self._reconcile_task is not None and not self._reconcile_task.done():
            self._reconcile_again = True
            return
        self._reconcile_task = self._tasks.spawn(self._reconcile(), name="legion-resource-reconcile")

    async def _reconcile(self) -> None:
        """Start/stop actors for the state, then ``recheck`` the derived ones: those waiting for
        prerequisites, and (when tracked servers changed) those that converge on endpoints. A plan
        edit alone never reaches a provider: creating and deleting wait for a wave."""
        while True:
            self._reconcile_again = False
            endpoints_moved, self._endpoints_moved = self._endpoints_moved, False
            affected, self._affected = self._affected, set()
            busy, self._busy_moved = self._busy_moved, set()
            try:
                await self.sync_from_state()
                if affected is not None and busy:
                    affected |= keys_reading_servers((self._require_state().state,), busy)
                budget = self._slice()
                for actor in list(self._actors.values()):
                    moved = actor.key.kind != "server" and (affected is None or actor.key in affected)
                    if actor.waits_for_prerequisites() or (
                        moved and endpoints_moved and actor.follows_endpoints()
                    ):
                        await actor.send("recheck")
                        actor.touch()  # a recheck that may not follow now shows why it rests
                    elif moved:
                        actor.touch()  # their waiting reasons name other actors: keep them fresh
                    await budget.checkpoint()
            except LockedError:
                return
            except Exception:  # the next change tries again; never let the task die silently
                log.exception("reconciling resource actors with the state failed")
            if not self._reconcile_again:
                self._reconcile_task = None
                self._end_wave_at_rest()
                self._changed.set()  # waiters re-check now that every recheck was delivered
                return

    # -- waves --------------------------------------------------------------------------------------

    async def sync_wave(
        self, keys: Sequence[ResourceKey] | None = None, *, run_id: str | None = None
    ) -> None:
        """Send SYNC to ``keys`` (None: every actor), servers first; the wave is at work from here
        until every actor rests again (:meth:`wave_running`)."""
        self._require_state()
        await self.sync_from_state()
        self._wave_open = True
        self._sending += 1
        try:
            wanted = set(self._actors) if keys is None else set(keys)
            budget = self._slice()
            for kind in _WAVE_ORDER:
                for key in sorted((k for k in wanted if k.kind == kind), key=key_order):
                    actor = self._actors.get(key)
                    if actor is not None:
                        await actor.sync(run_id)
                        await budget.checkpoint()
        finally:
            self._sending -= 1
        if not self._reconciling():
            self._end_wave_at_rest()

    def wave_running(self) -> bool:
        """True from a :meth:`sync_wave` until every actor has settled with no state change left to
        turn into rechecks: the same moment :meth:`wait_settled` ends. While it holds, what the
        wave's own work changes belongs to the wave (a server it creates learns its address after
        the firewall was applied; the firewall follows it); outside it, a firewall set that falls
        out of date waits for the next wave (:class:`~legion_nb.engine.resources.firewall.FirewallActor`).
        An actor that settled early keeps following while the others still work, because the
        moment its own part ends says nothing about the addresses still to come."""
        return self._wave_open and not self._closed

    def _end_wave_at_rest(self) -> None:
        """Close the wave once every actor rests (called at the end of a wave's SYNCs and of each
        reconcile pass: a settling actor always schedules one)."""
        if (
            self._wave_open
            and not self._sending
            and all(actor.snapshot().settled for actor in self._actors.values())
        ):
            self._wave_open = False

    async def follow_node_operation(self, name: str) -> None:
        """Let the server actor ``name`` show where an operation the runtime ran outside its chart
        (a node command) left the node, without the install request a wave makes."""
        actor = self._actors.get(ResourceKey("server", name))
        if isinstance(actor, ServerNodeActor) and not self._closed:
            await actor.follow_operation()

    async def follow_observation(self) -> None:
        """Let every resting server actor show what a refresh just observed (a server powered off
        or on at the provider); reads the state only, starts no provider or node work."""
        for key in sorted(k for k in self._actors if k.kind == "server"):
            actor = self._actors.get(key)
            if isinstance(actor, ServerNodeActor) and not self._closed:
                await actor.follow_observation()

    async def wait_settled(
        self,
        keys: Sequence[ResourceKey] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the contract with ops: a deadline, not a cancel
    ) -> list[ActorSnapshot]:
        """The snapshots of ``keys`` (None: all) once every one is settled; after ``timeout``
        seconds, whatever they are then (check ``settled``). Keys without an actor are left out."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._changed.clear()
                    current = self._select(keys)
                    if self._closed or (all(s.settled for s in current) and not self._reconciling()):
                        return current
                    await self._changed.wait()
        except TimeoutError:
            return self._select(keys)

    def _reconciling(self) -> bool:
        """A state change is still being turned into rechecks: settled-looking actors may move."""
        return self._reconcile_task is not None and not self._reconcile_task.done()

    def _select(self, keys: Sequence[ResourceKey] | None) -> list[ActorSnapshot]:
        chosen = sorted(self._actors if keys is None else set(keys), key=key_order)
        return [self._actors[k].snapshot() for k in chosen if k in self._actors]

    def plan_repairs(
        self, reports: Mapping[str, NodeReport] | None = None, *, now: float, blocked: str | None = None
    ) -> list[RepairDecision]:
        """What :meth:`run_repairs` would do at ``now`` for the safe node repairs, and why: each
        target runs, or is held (``blocked`` names an apply that runs; a node operation in progress;
        the budget). ``reports``: what the nodes said of themselves, by name."""
        state = self._require_state()
        deployer = self._deployment
        busy = [
            key.identity
            for key in self._actors
            if key.kind == "server" and deployer is not None and deployer.busy(key.identity)
        ]
        decisions: list[RepairDecision] = []
        for target in select_repairs(state.state, reports or {}, busy=busy):
            if blocked is not None:
                decisions.append(RepairDecision(target, "held", blocked))
            elif target.node in busy:
                decisions.append(RepairDecision(target, "held", f"a node operation runs on {target.node}"))
            else:
                decisions.append(self.repair_budget.decide(target, now))
        return decisions

    async def run_repairs(
        self,
        reports: Mapping[str, NodeReport] | None = None,
        *,
        now: float | None = None,
        blocked: str | None = None,
    ) -> list[ResourceKey]:
        """Retry the actors whose last wave failed with a temporary provider error, then dispatch
        RUN_REPAIR to each node :meth:`plan_repairs` lets run (its attempt counts against the
        budget). The keys of the actors that were retried or repaired successfully."""
        self._require_state()
        repaired: list[ResourceKey] = []
        for key in sorted(self._actors, key=lambda k: (_WAVE_ORDER.index(k.kind), k.identity)):
            actor = self._actors.get(key)
            if actor is not None and await actor.repair():
                repaired.append(key)
        for key, _ok in await self.run_node_repairs(reports, now=now, blocked=blocked):
            if _ok and key not in repaired:
                repaired.append(key)
        return repaired

    async def run_node_repairs(
        self,
        reports: Mapping[str, NodeReport] | None = None,
        *,
        now: float | None = None,
        blocked: str | None = None,
    ) -> list[tuple[ResourceKey, bool]]:
        """The safe node repairs alone (:meth:`run_repairs`): each node that ran, and whether its
        repair succeeded."""
        when = time.time() if now is None else now
        decisions = self.plan_repairs(reports, now=when, blocked=blocked)
        needing = {d.target.node for d in decisions}
        self.repair_budget.settle([n for n in (reports or {}) if n not in needing])
        runs: list[tuple[ServerNodeActor, RepairTarget]] = []
        for decision in decisions:
            actor = self._actors.get(ResourceKey("server", decision.target.node))
            if decision.action == "run" and isinstance(actor, ServerNodeActor):
                self.repair_budget.attempted(decision.target.node, when)
                runs.append((actor, decision.target))
        await self._keep_repair_budget(when)  # before any repair runs: a crash mid-repair still counts
        ran: list[tuple[ResourceKey, bool]] = []
        for actor, target in runs:
            key = ResourceKey("server", target.node)
            log.info("repair %s on %s: %s", target.operation, key.identity, "; ".join(target.reasons))
            ran.append((key, await actor.run_repair(target.operation)))
        return ran

    async def _keep_repair_budget(self, now: float) -> None:
        """Write the budget's attempts into the state when they differ from what it holds."""
        recorded = self.repair_budget.recorded(now)
        state = self._require_state()
        if recorded == dict(state.state.repair_attempts):
            return
        await state.mutate(
            lambda s: (with_repair_attempts(s, recorded), None), reason="repairs: attempts within the hour"
        )

    async def run_nbde_repairs(self, *, rounds: int = NBDE_REPAIR_ROUNDS) -> list[ResourceKey]:
        """Reconcile every deployed node whose NBDE binding differs from the policy its cluster now
        calls for (:func:`~legion_nb.engine.cluster.nbde.nbde_repairs`), round after round: a node
        enrolled in one round serves Tang in the next, which can promote the cluster again (local ->
        tang -> quorum). A node whose repair was refused or failed is not retried in the same call."""
        state = self._require_state()
        repaired: list[ResourceKey] = []
        refused: set[str] = set()
        for _ in range(rounds):
            progressed = False
            for repair in nbde_repairs(state.state):
                key = ResourceKey("server", repair.node)
                actor = self._actors.get(key)
                if repair.node in refused or not isinstance(actor, ServerNodeActor):
                    continue
                if await actor.run_repair(nbde_operation(repair)):
                    progressed = True
                    if key not in repaired:
                        repaired.append(key)
                else:
                    refused.add(repair.node)
            if not progressed:
                break
        return repaired
