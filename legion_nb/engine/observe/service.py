"""The session's observation service: the scheduler with the engine's own concerns registered.

Built from ports like every session service - the resource actors, a provider refresh
(:class:`ProviderRefresh`), a way to reach node admin APIs (:class:`AdminClients`), the log
directory, whether an apply runs, and where to publish - it registers one concern each for
provider refresh, catalog refresh, node observation, telemetry collection (with rollups and
retention) and log collection. The session implements the ports over its operations, provider
service and deployment settings, so observation never imports the services above it. Billing
collection and repairs are concerns their own services register with
:meth:`ObservationService.register` (their intervals are in the settings already).

Which nodes are observed is read from the actors: every server whose system region reads
``deployed`` (a satellite also while merely reachable: without a deployment runtime it is never
set up). Cluster nodes are polled over their admin API; satellites need a probe registered
for their role (:meth:`NodeObservation.register_probe`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

from legion_nb.engine.node_health import NodeHealth
from legion_nb.engine.observe.collection import NodeCollection
from legion_nb.engine.observe.node_observation import (
    AdminClientPool,
    AdminClients,
    NodeObservation,
    ObservedNode,
)
from legion_nb.engine.observe.scheduler import Concern, ObservationScheduler, ObservationSettings
from legion_nb.engine.resources.node import ServerNodeActor
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.state.model import utcnow
from legion_nb.errors import LegionError

__all__ = [
    "ObservationService",
    "ObservedActors",
    "ProviderRefresh",
    "observed_nodes",
]

log = logging.getLogger(__name__)


class ObservedActors(Protocol):
    """What observation reads of the resource supervisor: snapshots and a node's actor."""

    def snapshots(self) -> Iterable[ActorSnapshot]: ...

    def actor(self, key: ResourceKey) -> object | None: ...


class ProviderRefresh(Protocol):
    """The provider-side work observation repeats: a refresh of every provider, catalog reads."""

    def providers_with_credentials(self) -> list[str]: ...

    async def refresh(self) -> int: ...

    async def fetch_catalog(self, provider: str) -> object: ...


def observed_nodes(snapshots: Iterable[ActorSnapshot]) -> list[ObservedNode]:
    """The servers to observe: every node whose system region reads ``deployed``, and a satellite
    whose server is reachable in a session without a deployment runtime (it has nothing to set up)."""
    nodes = []
    for snapshot in snapshots:
        if snapshot.key.kind != "server":
            continue
        satellite = snapshot.facts.get("role") == "satellite"
        if snapshot.system not in (("deployed", "reachable") if satellite else ("deployed",)):
            continue
        facts = snapshot.facts
        address = facts.get("ipv4") or facts.get("ipv6") or ""
        nodes.append(ObservedNode(snapshot.key.identity, facts.get("role", "cluster"), address))
    return nodes


class ObservationService:
    """The scheduler, the node observation and the collection stores of one session."""

    def __init__(
        self,
        settings: ObservationSettings,
        *,
        actors: ObservedActors,
        providers: ProviderRefresh,
        admin: AdminClients | None,
        log_dir: Path,
        applying: Callable[[], bool],
        publish: Callable[[dict[str, Any]], None],
        changed: Callable[[], None],
    ) -> None:
        self.settings = settings
        self._actors = actors
        self._providers = providers
        self._publish = publish
        self.scheduler = ObservationScheduler(settings, applying=applying, changed=changed, publish=publish)
        self.clients: AdminClientPool | None = None
        self.nodes: NodeObservation | None = None
        self.collection: NodeCollection | None = None
        self._log_dir = log_dir
        self._admin = admin
        self._stack = AsyncExitStack()
        self._register_providers()

    def register(self, concern: Concern) -> None:
        """Register another service's concern (billing collection, repairs)."""
        self.scheduler.register(concern)

    # -- the session service -------------------------------------------------------------------

    async def __aenter__(self) -> ObservationService:
        try:
            if self._admin is not None:
                self.clients = AdminClientPool(self._admin)
                self._stack.push_async_callback(self.clients.aclose)
                self.nodes = NodeObservation(
                    self.clients,
                    self._targets,
                    interval=self.settings.interval("nodes"),
                    tolerance=self.settings.health_tolerance,
                    on_health=self._on_health,
                )
                self.collection = await self._stack.enter_async_context(
                    NodeCollection(self._log_dir, self.clients, self._targets)
                )
                self.scheduler.register(Concern("nodes", self.nodes.poll))
                self.scheduler.register(Concern("telemetry", self.collection.collect_telemetry))
                self.scheduler.register(Concern("logs", self.collection.collect_logs))
            # Closed first (the stack unwinds in reverse): no run may outlive the stores it writes.
            await self._stack.enter_async_context(self.scheduler)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()

    # -- concerns ------------------------------------------------------------------------------

    def _register_providers(self) -> None:
        async def refresh() -> int:
            if not self._providers.providers_with_credentials():
                return 0
            return await self._providers.refresh()

        async def catalogs() -> int:
            read = 0
            errors: list[str] = []
            for provider in self._providers.providers_with_credentials():
                try:
                    await self._providers.fetch_catalog(provider)
                    read += 1
                except LegionError as exc:  # one provider down must not keep the others' prices old
                    errors.append(f"{provider}: {exc.message}")
            if errors and not read:
                raise LegionError("; ".join(errors))
            return read

        self.scheduler.register(Concern("providers", refresh, provider_heavy=True))
        self.scheduler.register(Concern("catalogs", catalogs, provider_heavy=True))

    def _targets(self) -> list[ObservedNode]:
        return observed_nodes(self._actors.snapshots())

    def _on_health(self, verdict: NodeHealth, previous: NodeHealth | None) -> None:
        actor = self._actors.actor(ResourceKey("server", verdict.node))
        if isinstance(actor, ServerNodeActor):
            actor.note_health(verdict)
        before = (previous.health, previous.reason) if previous is not None else ("healthy", None)
        if (verdict.health, verdict.reason) == before:
            return
        summary = f"server {verdict.node}: {verdict.health}"
        if verdict.reason:
            summary += f" - {verdict.reason}"
        self._publish(
            {
                "event": "health",
                "operation": None,
                "time": utcnow().isoformat(),
                "summary": summary,
                "resource": {"kind": "server", "identity": verdict.node, "health": verdict.health},
            }
        )
