"""EngineOps: the thin apply, refresh and server-command layer of the engine API.

Why thin: the resource actors are the reconcilers. Materialize does not walk a dependency graph or
call providers itself; it writes an operation log entry, asks the resource supervisor to make sure
an actor exists for everything planned or tracked, sends them one SYNC wave and watches their
snapshots until they settle. Progress is what the actors report (see :mod:`engine.activity`).

* **One apply at a time.** A second materialize while one runs is refused with
  :class:`~legion_nb.errors.ApplyRunningError`; refresh and server commands do not take that lock
  (the broker serializes provider calls, each actor serializes its own work).
* **Refresh** re-reads every provider with credentials, stores the observed facts and adopts
  resources that carry Legion's ownership labels (:class:`ProviderPersistence`); it never deletes.
* **Server commands** reboot and reinstall a tracked server through the broker; delete takes the
  server out of the plan and lets its actor tear it down, so the teardown path is the usual one.

Every operation leaves an :class:`~legion_nb.engine.state.model.OperationLogEntry` in the state.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from legion_nb.engine import planning
from legion_nb.engine.activity import ActivityEmitter, CurrentOperation
from legion_nb.engine.cluster.firewall_plan import flagged_firewalls
from legion_nb.engine.cluster.nbde import NodeUnlock, cluster_facts, derive_nbde_policy
from legion_nb.engine.deployment.phases import REINSTALLS
from legion_nb.engine.orphan_cleanup import delete_orphan, find_orphan
from legion_nb.engine.providers_service import ProviderPersistence, ProviderService
from legion_nb.engine.redaction import redact
from legion_nb.engine.repair_tick import RepairTick
from legion_nb.engine.reports import (
    MaterializeReport,
    RefreshReport,
    RefreshResult,
    ServerCommandResult,
    Status,
)
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.results import ClusterNbde, NodeNbdeStatus
from legion_nb.engine.state.model import (
    LegionState,
    NodeNbde,
    OperationLogEntry,
    Tracked,
    TrackedServer,
    utcnow,
)
from legion_nb.engine.state.validation import normalize_hostname
from legion_nb.errors import ApplyRunningError, LegionError, LockedError, NotTrackedError, UsageError
from legion_nb.providers.catalog import choose_image
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.records import Operation

if TYPE_CHECKING:
    from legion_nb.engine.deployment.runtime import DeploymentService
    from legion_nb.engine.resources.supervisor import ResourceSupervisor

__all__ = ["OPERATION_LOG_KEEP", "EngineOps", "MaterializeReport", "RefreshResult", "ServerCommandResult"]

log = logging.getLogger(__name__)

OPERATION_LOG_KEEP = 200
"""Operation log entries kept in the state (oldest dropped first)."""


def _log_entry(state: LegionState, entry: OperationLogEntry) -> LegionState:
    """``state`` with ``entry`` added or replaced (by id), keeping the newest entries only."""
    kept = [e for e in state.operations if e.id != entry.id]
    kept.append(entry)
    return replace(state, operations=tuple(kept[-OPERATION_LOG_KEEP:]))


def _interrupted(state: LegionState) -> tuple[LegionState, None]:
    """Operations still "running" in a state just opened were cut short by an earlier process."""
    entries = tuple(
        replace(e, status="interrupted", summary=e.summary or "the engine stopped while it ran")
        if e.status == "running"
        else e
        for e in state.operations
    )
    return replace(state, operations=entries), None


def summarize(snapshots: Iterable[ActorSnapshot]) -> tuple[dict[str, int], list[dict[str, str]], list[str]]:
    """Counts per lifecycle, the errors, and the keys that did not settle."""
    counts: dict[str, int] = {}
    errors: list[dict[str, str]] = []
    unsettled: list[str] = []
    for snapshot in snapshots:
        counts[snapshot.lifecycle] = counts.get(snapshot.lifecycle, 0) + 1
        if snapshot.error:
            errors.append({"kind": snapshot.key.kind, "name": snapshot.key.identity, "error": snapshot.error})
        if not snapshot.settled:
            unsettled.append(str(snapshot.key))
    return dict(sorted(counts.items())), errors, unsettled


def _outcome(total: int, errors: list[dict[str, str]], unsettled: list[str]) -> tuple[bool, Status, str]:
    if not errors and not unsettled:
        return True, "succeeded", f"materialize done: {total} resources settled"
    parts = []
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        what = f"{first['kind'].replace('_', ' ')} {first['name']}"
        parts.append(f"{len(errors)} failed - {what}: {first['error']}{more}")
    if unsettled:
        parts.append(f"{len(unsettled)} not settled")
    summary = f"materialize incomplete: {'; '.join(parts)}; fix the cause and run materialize again"
    return False, "failed", summary


def _bound_as(bound: NodeNbde | None, target: NodeUnlock | None) -> bool:
    """Whether a node's recorded NBDE binding is the one its cluster's policy calls for."""
    if bound is None or target is None:
        return False
    return bound.mode == target.mode and set(bound.tang_peers) == set(target.peers)


class EngineOps:
    """A session service owning the apply lock, the activity emitter and provider persistence.

    Entering it marks operations an earlier process left ``running`` as interrupted and starts
    turning actor changes into activity; :meth:`aclose` forgets the current operation and activity.
    """

    def __init__(
        self,
        state: StatePort,
        providers: ProviderService,
        resources: ResourceSupervisor,
        activity: ActivityEmitter,
        *,
        deployment: DeploymentService | None = None,
    ) -> None:
        self._state = state
        self._providers = providers
        self._deployment = deployment
        self._resources = resources
        self.activity = activity
        self._refresh = ProviderPersistence(providers)
        self._apply: CurrentOperation | None = None
        self._subscriptions: list[Callable[[], None]] = []
        self.repairs = RepairTick(lambda: self._state.state, resources, deployment, lambda: self._apply)
        """The safe repairs: planned by ``legion repairs``, run by the scheduler's repair concern."""

    async def __aenter__(self) -> EngineOps:
        self._subscriptions.append(self._resources.subscribe(self.activity.actors_changed))
        if any(entry.status == "running" for entry in self._state.state.operations):
            await self._state.mutate(_interrupted, reason="mark operations of an earlier run interrupted")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for unsubscribe in self._subscriptions:
            unsubscribe()
        self._subscriptions.clear()
        self._apply = None
        self.activity.reset()

    # -- the operation log -------------------------------------------------------------------------

    async def _begin(self, kind: str, target: str = "") -> CurrentOperation:
        operation = CurrentOperation(
            id=f"op-{uuid.uuid4().hex[:12]}", kind=kind, started=utcnow(), target=target
        )
        entry = OperationLogEntry(
            id=operation.id, kind=kind, started=operation.started, status="running", summary=target
        )
        reason = f"begin {kind} {operation.id}"
        await self._state.mutate(lambda s: (_log_entry(s, entry), None), reason=reason)
        self.activity.begin(operation)
        return operation

    async def _end(self, operation: CurrentOperation, status: Status, summary: str) -> None:
        summary = redact(summary)  # kept in the state's operation log and shown by status and panels
        entry = OperationLogEntry(
            id=operation.id,
            kind=operation.kind,
            started=operation.started,
            status=status,
            finished=utcnow(),
            summary=summary,
        )
        self.activity.finish(status, summary)
        try:
            await self._state.mutate(lambda s: (_log_entry(s, entry), None), reason=f"end {operation.id}")
        except LockedError:  # locked meanwhile: the entry stays "running" and reads as interrupted later
            log.info("operation %s ended while the state was locking", operation.id)

    # -- materialize -------------------------------------------------------------------------------

    async def materialize(self, *, settle_seconds: float | None = None) -> MaterializeReport:
        """Apply the plan: one SYNC wave to every actor, then wait until all settle (module notes).
        After ``settle_seconds`` (None: no limit) the report lists what has not settled yet."""
        if self._apply is not None:
            raise ApplyRunningError(
                f"a materialize is already running ({self._apply.id}, started "
                f"{self._apply.started:%H:%M:%S} UTC); wait for it or watch `legion snapshot`"
            )
        placeholder = CurrentOperation(id="starting", kind="materialize", started=utcnow())
        self._apply = placeholder
        try:
            operation = await self._begin("materialize")
            self._apply = operation
            status: Status = "interrupted"
            summary = "materialize interrupted"
            try:
                await self._prefetch_catalogs()
                # The plan's warnings as this wave applies them (the same the diff rows carry).
                warnings = flagged_firewalls(self._resources.firewall_plans.plans(self._state.state))
                await self._resources.sync_from_state()
                wave = self._resources.keys()
                await self._resources.sync_wave(wave, run_id=operation.id)
                snapshots = await self._resources.wait_settled(wave, timeout=settle_seconds)
                # Deployed nodes change what NBDE the cluster calls for: bind it now.
                settled = all(s.settled for s in snapshots)
                if self._deployment is not None and settled and await self._resources.run_nbde_repairs():
                    snapshots = await self._resources.wait_settled(wave, timeout=settle_seconds)
                counts, errors, unsettled = summarize(snapshots)
                gone = len(wave) - len(snapshots)  # torn down in this wave: their actors have ended
                if gone:
                    counts = dict(sorted({**counts, "removed": counts.get("removed", 0) + gone}.items()))
                ok, status, summary = _outcome(len(wave), errors, unsettled)
                return MaterializeReport(
                    id=operation.id,
                    ok=ok,
                    status=status,
                    summary=summary,
                    counts=counts,
                    errors=errors,
                    unsettled=unsettled,
                    resources=[s.to_json() for s in snapshots],
                    warnings=warnings,
                )
            except asyncio.CancelledError:
                status, summary = "cancelled", "materialize cancelled; run it again to converge"
                raise
            finally:
                await asyncio.shield(self._end(operation, status, summary))
        finally:
            self._apply = None

    async def _prefetch_catalogs(self) -> None:
        """Read the live catalog of each provider that must pick a policy choice for a new server.

        The embedded snapshot stays the fallback: a provider that cannot be read now fails its own
        servers' creates with its own error, which is where the operator should see it.
        """
        state = self._state.state
        wanted: set[str] = set()
        for name, (_cluster, server) in state.scheme.servers().items():
            if name in state.tracked.servers:
                continue
            if not (server.server_type and server.location and server.image):
                wanted.add(server.provider)
        for provider in sorted(wanted):
            if not self._providers.has_credentials(provider) or self._providers.has_live_catalog(provider):
                continue
            try:
                await self._providers.fetch_catalog(provider)
            except LegionError as exc:
                log.info("%s catalog not read (%s); using the embedded snapshot", provider, exc.message)

    @property
    def applying(self) -> CurrentOperation | None:
        return self._apply

    # -- refresh -----------------------------------------------------------------------------------

    async def refresh(self) -> RefreshResult:
        """Re-read every provider with credentials; adopt labelled resources, report the others."""
        persistence = self._state
        providers = sorted(p for p in persistence.state.credentials if self._providers.has_credentials(p))
        if not providers:
            raise UsageError("no provider credentials stored: run `legion credentials set PROVIDER` first")
        operation = await self._begin("refresh", ", ".join(providers))
        reports: list[RefreshReport] = []
        before = persistence.state.tracked
        try:
            for provider in providers:
                reports.append(await self._refresh.refresh(persistence, provider))
            await self._restore_adopted(before, persistence.state.tracked)
            await self._resources.follow_observation()
        except BaseException:
            await asyncio.shield(self._end(operation, "interrupted", "refresh interrupted"))
            raise
        failed = [r for r in reports if r.error]
        adopted = sum(len(r.adopted) for r in reports)
        if failed:
            summary = "; ".join(f"{r.provider}: {r.error}" for r in failed)
            summary = f"refresh failed for {len(failed)} provider(s) - {summary}"
        else:
            summary = f"refreshed {', '.join(providers)}: {adopted} adopted"
        await self._end(operation, "failed" if failed else "succeeded", summary)
        return RefreshResult(ok=not failed, summary=summary, providers=reports)

    async def _restore_adopted(self, before: Tracked, after: Tracked) -> None:
        """Actors already running for what was just adopted learn it from the state: a planned
        resource's actor started before it was tracked still believes it absent."""
        await self._resources.sync_from_state()
        adopted = [
            *(ResourceKey("server", n) for n in after.servers.keys() - before.servers.keys()),
            *(ResourceKey("dns_zone", n) for n in after.dns_zones.keys() - before.dns_zones.keys()),
            *(ResourceKey("firewall", n) for n in after.firewalls.keys() - before.firewalls.keys()),
        ]
        for key in sorted(adopted):
            actor = self._resources.actor(key)
            if actor is not None:
                await actor.restore()

    # -- server commands ---------------------------------------------------------------------------

    def _tracked(self, name: str) -> TrackedServer:
        server_name = normalize_hostname(name, what="server name")
        tracked = self._state.state.tracked.servers.get(server_name)
        if tracked is None:
            raise NotTrackedError(
                f"server {server_name!r} is not tracked: materialize it first (see `legion snapshot`)"
            )
        return tracked

    async def _server_command(
        self, name: str, command: str, run: Callable[[TrackedServer], Any]
    ) -> ServerCommandResult:
        tracked = self._tracked(name)
        return await self._logged(f"server {command}", command, tracked.name, lambda: run(tracked))

    async def _logged(
        self, kind: str, command: str, target: str, run: Callable[[], Awaitable[Any]]
    ) -> ServerCommandResult:
        """Run ``run`` as one operation in the log: begun, then succeeded, failed or interrupted."""
        operation = await self._begin(kind, target)
        try:
            await run()
        except LegionError as exc:
            await self._end(operation, "failed", f"{command} {target}: {exc.message}")
            raise
        except BaseException:
            await asyncio.shield(self._end(operation, "interrupted", f"{command} {target} interrupted"))
            raise
        summary = f"{command} {target}: done"
        await self._end(operation, "succeeded", summary)
        return ServerCommandResult(server=target, command=command, status="succeeded", summary=summary)

    async def orphan_delete(self, provider: str, resource: str) -> ServerCommandResult:
        """Delete ``resource`` at ``provider`` when it is an orphan now: Legion made it and nothing
        in the state holds it (:mod:`~legion_nb.engine.orphan_cleanup` says how it is re-read,
        judged, deleted and dropped from the observed state). Logged as an operation like any
        server command; a refusal is logged nowhere, since nothing was attempted.

        Raises :class:`~legion_nb.errors.UnknownOrphanError`,
        :class:`~legion_nb.errors.NotLegionsError` or :class:`~legion_nb.errors.HeldByStateError`
        (all :class:`UsageError`) when it is no orphan, the provider's errors otherwise.
        """
        self._providers.adapter(provider)  # no credentials -> one clear error, no I/O
        orphan = await find_orphan(self._providers, self._state.state, provider, resource)
        return await self._logged(
            "orphan delete",
            "delete orphan",
            orphan.title,
            lambda: delete_orphan(self._providers, self._state, orphan),
        )

    async def _run_and_wait(
        self, server: TrackedServer, label: str, fn: Callable[[ProviderAdapter], Any]
    ) -> None:
        self._providers.adapter(server.provider)  # no credentials -> one clear error, no I/O
        op: Operation | None = await self._providers.resilience.converge(server.provider, label, fn)
        if op is not None:
            await self._providers.broker.wait([op])
        await self._providers.broker.wait_for_server(server.provider, server.provider_id)

    async def server_reboot(self, name: str) -> ServerCommandResult:
        async def run(server: TrackedServer) -> None:
            sid = server.provider_id
            await self._run_and_wait(server, f"reboot {server.name}", lambda a: a.reboot_server(sid))

        return await self._server_command(name, "reboot", run)

    async def server_reinstall(self, name: str) -> ServerCommandResult:
        """Reset the server to its tracked image if the catalog still offers it, else the policy's.
        With deployment wired, a node (cluster or satellite) is reinstalled by the runtime
        (:meth:`node_reinstall`): a bare rebuild would leave it without what its setup installed,
        and a satellite presenting its new image's host key to a stale pin."""
        self._tracked(name)
        if self._deployment is not None:
            return await self.node_reinstall(name)

        async def run(server: TrackedServer) -> None:
            catalog = self._providers.catalog(server.provider)
            image = catalog.image(server.image) if server.image else None
            if image is None or not image.available_in(server.location):
                image = choose_image(catalog, server.location)
            sid, image_id = server.provider_id, image.id
            await self._run_and_wait(
                server, f"rebuild {server.name}", lambda a: a.rebuild_server(sid, image_id)
            )

        return await self._server_command(name, "reinstall", run)

    # -- node operations (deployment runtime) ------------------------------------------------------

    def _deployer(self) -> DeploymentService:
        if self._deployment is None:
            raise UsageError(
                "node operations need node deployment, which this engine was started without; "
                "use an engine created with deployment (the sandbox: legion_nb.sandbox(nodes=True))"
            )
        return self._deployment

    async def node_reinstall(self, name: str) -> ServerCommandResult:
        """Reinstall a node as its role calls for (:data:`~legion_nb.engine.deployment.phases.REINSTALLS`).
        A cluster node: rebuild from a current image, then every install phase again (it keeps the
        host key Legion pinned for it), NBDE reconciled after. A satellite: rebuild, then its own
        bootstrap (pinning the new image's key), Sender setup and health; never the cluster phases."""
        deployment = self._deployer()

        async def run(server: TrackedServer) -> None:
            await deployment.runtime.run(server.name, REINSTALLS[server.role])

        return await self._node_command(name, "reinstall", run)

    async def node_resume(self, name: str) -> ServerCommandResult:
        """Continue a node's interrupted or failed operation from the phase it stopped in.

        This is one of the operator's explicit requests (the others are a materialize wave and a
        reinstall): a session only opening resumes nothing (see :mod:`legion_nb.engine.resources.node`).
        When the node's actor already runs the install a wave asked for, this follows that run to
        its end, then continues from where it stopped if it did not succeed; another operation
        running on the node (a reinstall, a repair) is refused with ``DeploymentBusyError``. A
        node whose install never started has nothing to resume (``NothingToResumeError``: ``legion
        materialize`` installs it)."""
        deployment = self._deployer()

        async def run(server: TrackedServer) -> None:
            key = ResourceKey("server", server.name)
            installing = self._resources.snapshot(key)
            if deployment.busy(server.name) and installing is not None and installing.system == "deploying":
                await self._resources.wait_settled([key])
            await deployment.runtime.resume(server.name)  # a succeeded record is returned as is

        return await self._node_command(name, "resume", run)

    async def _node_command(
        self, name: str, command: str, run: Callable[[TrackedServer], Any]
    ) -> ServerCommandResult:
        """A node operation the runtime runs outside the node's actor, logged like a server command;
        then the actor follows its outcome (:meth:`_after_node_operation`), or, when it failed,
        rests where the execution record now says without asking for anything more."""
        server = self._tracked(name).name
        try:
            result = await self._server_command(name, command, run)
        except LegionError:
            await self._resources.follow_node_operation(server)
            raise
        await self._after_node_operation(result.server)
        return result

    async def node_repin(self, name: str) -> ServerCommandResult:
        """Let a node whose server was rebuilt outside Legion be trusted on first use once more.

        A server that has answered with Legion's pinned host key is never trusted on a different
        key again; after the operator has checked at the provider that the server was rebuilt, this
        reopens that window for the next install sessions (``node_resume`` or ``node_reinstall``).
        """
        deployment = self._deployer()

        async def run(server: TrackedServer) -> None:
            await deployment.repin(server.name)

        return await self._server_command(name, "repin", run)

    async def _after_node_operation(self, name: str) -> None:
        """Let the node's actor see the outcome (a wave clears an install failure it remembers),
        then reconcile NBDE: the node is healthy again, which can change its cluster's policy."""
        key = ResourceKey("server", name)
        await self._resources.sync_wave([key])
        await self._resources.wait_settled([key])
        await self._resources.run_nbde_repairs()

    async def nbde_reconcile(self) -> list[ClusterNbde]:
        """Bind every healthy node whose NBDE differs from its cluster's policy, then report as
        :meth:`nbde_status` does."""
        await self._resources.run_nbde_repairs()
        return self.nbde_status()

    def nbde_status(self) -> list[ClusterNbde]:
        """Per cluster: the NBDE mode its healthy nodes call for, and what each node is bound to."""
        state = self._state.state
        clusters: list[ClusterNbde] = []
        for cluster in sorted({s.cluster for s in state.tracked.servers.values() if s.role == "cluster"}):
            policy = derive_nbde_policy(cluster_facts(state, cluster))
            nodes: list[NodeNbdeStatus] = []
            servers = state.tracked.servers.items()
            members = (n for n, s in servers if s.cluster == cluster and s.role == "cluster")
            for node in sorted(members):
                material = state.deployment.nodes.get(node)
                bound = material.nbde if material is not None else None
                target = policy.for_node(node)
                nodes.append(
                    {
                        "node": node,
                        "healthy": target is not None,
                        "mode": bound.mode if bound is not None else None,
                        "peers": list(bound.tang_peers) if bound is not None else [],
                        "threshold": bound.threshold if bound is not None else None,
                        "local_boot_key": bound.local_boot_key if bound is not None else None,
                        "target_mode": target.mode if target is not None else None,
                        "in_policy": _bound_as(bound, target),
                    }
                )
            clusters.append(
                {"cluster": cluster, "mode": policy.mode, "reason": policy.reason, "nodes": nodes}
            )
        return clusters

    async def server_delete(self, name: str) -> ServerCommandResult:
        """Take the server out of the plan and let its actor delete it at the provider."""
        tracked = self._tracked(name)
        key = ResourceKey("server", tracked.name)
        planned = self._state.state.scheme.find_server(tracked.name) is not None
        if planned:
            planning.remove_server(self._state.state, name=tracked.name)  # refusals before anything
        operation = await self._begin("server delete", tracked.name)
        try:
            if planned:
                await self._state.mutate(
                    lambda s: (planning.remove_server(s, name=tracked.name), None),
                    reason=f"server delete {tracked.name}",
                )
            await self._resources.sync_wave([key], run_id=operation.id)
            snapshots = await self._resources.wait_settled([key])
        except BaseException:
            await asyncio.shield(self._end(operation, "interrupted", f"delete {tracked.name} interrupted"))
            raise
        error = next((s.error for s in snapshots if s.error), None)
        still = tracked.name in self._state.state.tracked.servers
        if error or still:
            summary = f"delete {tracked.name}: {error or 'the server is still tracked'}; run it again"
            await self._end(operation, "failed", summary)
            return ServerCommandResult(
                server=tracked.name, command="delete", status="failed", summary=summary
            )
        summary = f"delete {tracked.name}: done"
        await self._end(operation, "succeeded", summary)
        return ServerCommandResult(server=tracked.name, command="delete", status="succeeded", summary=summary)
