"""The unlocked session: every long-lived engine service, built from ports, opened and closed together.

Why a session: the engine's services (provider adapters and broker, resource actors, operations,
the snapshot publisher, node deployment, the billing ledger, terminals) hold decrypted state and
credentials, so they exist only while the state is unlocked. Unlocking opens one
:class:`Session`; logging out closes it.
Each service is constructed complete from the narrow dependencies it uses - the state port
(:class:`~legion_nb.engine.resources.ports.StatePort`), provider access, the event hub, settings, the
log directory - never from the engine, and is an async context manager: entering it does its start
work (load adapters, start actors, publish the first snapshot), ``aclose`` ends its background tasks.

The session enters them in dependency order on one :class:`~contextlib.AsyncExitStack`, which closes
them in reverse at logout, the persistence supervisor last (queued writes land, then the store's
key is zeroed). :meth:`Session.hand_over` closes the services but keeps the persistence supervisor
open, for a session rebuilt on the same unlocked state with other settings (no password needed).
Start order::

    persistence -> redaction -> Legion's own log -> providers -> deployment (when configured)
    -> resources -> ops -> publisher -> billing -> terminals -> streams -> observation
    -> extra services (SessionSettings.services, in order)

A new service plugs in by being a class whose constructor names the ports it uses and which is an
async context manager; it is then either constructed in :meth:`Session.open` (an engine-wide
service, with an attribute here) or registered as a :data:`ServiceFactory` in
:attr:`SessionSettings.services` (a factory receives the session built so far and picks the ports
it needs from it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion_nb.engine.activity import ActivityEmitter
from legion_nb.engine.billing.service import BillingService
from legion_nb.engine.events import EventHub
from legion_nb.engine.node_terminals import NodeTerminals, TerminalSettings
from legion_nb.engine.observe.legion_log import LegionLog
from legion_nb.engine.observe.methods import LOGS_FILENAME
from legion_nb.engine.observe.scheduler import Concern, ObservationSettings
from legion_nb.engine.observe.service import ObservationService
from legion_nb.engine.ops import EngineOps
from legion_nb.engine.providers_service import ProviderService
from legion_nb.engine.redaction import SecretsRedaction
from legion_nb.engine.resources.actor import ResourceSettings
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.snapshot import SnapshotPublisher
from legion_nb.engine.state.model import LegionState
from legion_nb.engine.state.persistence import PersistenceSupervisor
from legion_nb.engine.streaming import StreamingSupervisor, StreamSettings
from legion_nb.errors import OperationError
from legion_nb.providers.broker import BrokerPolicy

if TYPE_CHECKING:  # the deployment stack (SSH, certificates) loads only when settings ask for it
    from legion_nb.engine.deployment.node_reach import NodeReach
    from legion_nb.engine.deployment.runtime import DeploymentService, DeploymentSettings
    from legion_nb.providers.node_admin import NodeAdminClient
    from legion_nb.providers.resilience import SettlePolicy

__all__ = ["EngineProviderRefresh", "LazyNodeReach", "ServiceFactory", "Session", "SessionSettings"]

log = logging.getLogger(__name__)

ServiceFactory = Callable[["Session"], AbstractAsyncContextManager[object]]
"""Builds one extra service from the session's ports; the session enters it and closes it."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything a session is built with besides the state itself (no secrets: those are in it).

    ``broker``/``settle`` pace provider polling and create settling (the sandbox passes short
    intervals); ``transport`` (an ``httpx.AsyncBaseTransport``) reaches every provider adapter, for
    tests; ``resources`` hold the fallback operator CIDRs and DNS TTL (None: from the environment at
    unlock); ``trace`` writes actor transitions under the log directory (None:
    ``LEGION_TRACE_ACTORS``); ``deployment`` makes materialize install cluster nodes over SSH
    (None: servers are only provisioned); ``terminals`` says how terminals reach the nodes;
    ``snapshot_interval`` paces snapshot publication; ``services`` are extra service factories.
    """

    broker: BrokerPolicy | None = None
    settle: SettlePolicy | None = None
    transport: Any = None
    resources: ResourceSettings | None = None
    trace: bool | None = None
    deployment: DeploymentSettings | None = None
    terminals: TerminalSettings = field(default_factory=TerminalSettings)
    snapshot_interval: float = 0.1
    observation: ObservationSettings = field(default_factory=ObservationSettings)
    """The observation scheduler: whether it runs, intervals, enabled concerns, budget share."""
    streams: StreamSettings = field(default_factory=StreamSettings)
    services: tuple[ServiceFactory, ...] = ()


class Session:
    """The services of one unlocked state (module notes); built by :meth:`open`, ended by :meth:`aclose`."""

    def __init__(
        self,
        *,
        persistence: PersistenceSupervisor[LegionState],
        hub: EventHub,
        settings: SessionSettings,
        log_dir: Path,
        providers: ProviderService,
        deployment: DeploymentService | None,
        resources: ResourceSupervisor,
        ops: EngineOps,
        publisher: SnapshotPublisher,
        billing: BillingService,
        observation: ObservationService,
        terminals: NodeTerminals,
        streams: StreamingSupervisor,
        stack: AsyncExitStack,
        owner: _PersistenceOwner,
    ) -> None:
        self.persistence = persistence
        self.hub = hub
        self.settings = settings
        self.log_dir = log_dir
        self.providers = providers
        self.deployment = deployment
        self.resources = resources
        self.ops = ops
        self.publisher = publisher
        self.billing = billing
        self.observation = observation
        self.terminals = terminals
        self.streams = streams
        self.extras: list[object] = []
        """The services built by ``settings.services``, in start order."""
        self._stack = stack
        self._owner = owner

    @classmethod
    async def open(
        cls,
        persistence: PersistenceSupervisor[LegionState],
        *,
        hub: EventHub,
        settings: SessionSettings,
        log_dir: Path,
        node_locks: Path | None = None,
    ) -> Session:
        """Build and start every service on ``persistence``, which the session now owns.

        ``node_locks`` is the directory of the state's node-operation locks
        (:mod:`~legion_nb.engine.deployment.liveness`; None: no other process opens this state).

        If a service fails to start, the ones already started are closed (and the persistence
        supervisor with them) before the error is raised.
        """
        stack = AsyncExitStack()
        owner = _PersistenceOwner(persistence)
        try:
            stack.push_async_callback(owner.aclose)
            # First in, last out: no service may quote a secret the redaction layer does not know.
            await stack.enter_async_context(SecretsRedaction(persistence))
            # Legion's own log follows the activity from the first operation to the last.
            await stack.enter_async_context(LegionLog(hub, log_dir / LOGS_FILENAME))
            providers = await stack.enter_async_context(
                ProviderService(
                    persistence,
                    policy=with_background_share(settings.broker, settings.observation.share),
                    settle=settings.settle,
                    transport=settings.transport,
                )
            )
            deployment: DeploymentService | None = None
            if settings.deployment is not None:
                from legion_nb.engine.deployment.liveness import NodeLocks  # noqa: PLC0415
                from legion_nb.engine.deployment.runtime import DeploymentService  # noqa: PLC0415

                # Before the actors: they ask it whether a node needs installing.
                locks = None if node_locks is None else NodeLocks(node_locks)
                deployment = await stack.enter_async_context(
                    DeploymentService(persistence, providers, settings.deployment, locks=locks)
                )
                from legion_nb.engine.deployment.node_events import node_events  # noqa: PLC0415

                # Phases and NBDE bindings on the activity stream, for runbooks and panels.
                stack.callback(persistence.subscribe(node_events(lambda item: hub.publish("activity", item))))
            resources = await stack.enter_async_context(
                ResourceSupervisor(
                    persistence,
                    providers,
                    settings=settings.resources,
                    trace=settings.trace,
                    deployment=deployment,
                    log_dir=log_dir,
                )
            )
            ops = await stack.enter_async_context(
                EngineOps(persistence, providers, resources, ActivityEmitter(hub), deployment=deployment)
            )
            interval = settings.snapshot_interval
            publisher = await stack.enter_async_context(
                SnapshotPublisher(hub, persistence, resources, providers, min_interval=interval)
            )
            billing = await stack.enter_async_context(
                BillingService(providers, lambda: persistence.state, log_dir)
            )
            terminals = await stack.enter_async_context(NodeTerminals(persistence, settings.terminals))
            streams = await stack.enter_async_context(
                StreamingSupervisor(
                    persistence,
                    settings.streams,
                    publish=lambda item: hub.publish("activity", item),
                    changed=publisher.mark,
                )
            )
            publisher.add_section("streams", streams.statuses)
            observation = await stack.enter_async_context(
                ObservationService(
                    settings.observation,
                    actors=resources,
                    providers=EngineProviderRefresh(persistence, providers, ops),
                    admin=LazyNodeReach(persistence, settings.deployment),
                    log_dir=log_dir,
                    applying=lambda: ops.applying is not None,
                    publish=lambda item: hub.publish("activity", item),
                    changed=publisher.mark,
                )
            )
            publisher.add_section("observation", observation.scheduler.section)
            # The ledger stays current on its own; its provider calls yield to applies and budgets.
            observation.register(Concern("billing", billing.observe, provider_heavy=True))
            # Safe repairs every five minutes; satellites answer the node observation on their Sender API.
            observation.register(Concern("repairs", ops.repairs.tick))
            if observation.nodes is not None:
                observation.nodes.register_probe("satellite", streams.health_probe)
            session = cls(
                persistence=persistence,
                hub=hub,
                settings=settings,
                log_dir=log_dir,
                providers=providers,
                deployment=deployment,
                resources=resources,
                ops=ops,
                publisher=publisher,
                billing=billing,
                observation=observation,
                terminals=terminals,
                streams=streams,
                stack=stack,
                owner=owner,
            )
            for factory in settings.services:
                session.extras.append(await stack.enter_async_context(factory(session)))
        except BaseException:
            await _close(stack)
            raise
        return session

    async def aclose(self) -> None:
        """Close every service in reverse start order, then the persistence supervisor (idempotent).

        A service that fails to close is logged and the others still close: logout always completes.
        """
        await _close(self._stack)

    async def hand_over(self) -> PersistenceSupervisor[LegionState]:
        """Close every service, as :meth:`aclose` does, but leave the persistence supervisor (and
        its unlocked store) open and return it, for a new session on the same state."""
        self._owner.handed_on = True
        await _close(self._stack)
        return self.persistence

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class EngineProviderRefresh:
    """Observation's :class:`~legion_nb.engine.observe.service.ProviderRefresh` port over the
    session's operations and provider service."""

    def __init__(self, state: StatePort, providers: ProviderService, ops: EngineOps) -> None:
        self._state = state
        self._providers = providers
        self._ops = ops

    def providers_with_credentials(self) -> list[str]:
        return sorted(p for p in self._state.state.credentials if self._providers.has_credentials(p))

    async def refresh(self) -> int:
        """A refresh of every provider; the resources the providers reported."""
        result = await self._ops.refresh()
        if not result.ok:
            raise OperationError(result.summary)
        return sum(r.servers + r.dns_zones + r.firewalls for r in result.providers)

    async def fetch_catalog(self, provider: str) -> object:
        return await self._providers.fetch_catalog(provider)


class LazyNodeReach:
    """Observation's :class:`~legion_nb.engine.observe.node_observation.AdminClients` port from the
    state's records, loading the deployment stack (TLS material, SSH) only when a deployed node is
    first polled: a session with no node never pays for it."""

    def __init__(self, state: StatePort, deployment: DeploymentSettings | None) -> None:
        self._state = state
        self._deployment = deployment
        self._reach: NodeReach | None = None

    def admin_client(self, node: str) -> NodeAdminClient:
        if self._reach is None:
            from legion_nb.engine.deployment.node_channel import NodeAccess, SshNodeConnector  # noqa: PLC0415
            from legion_nb.engine.deployment.node_reach import NodeReach  # noqa: PLC0415

            settings = self._deployment
            access = settings.access if settings is not None else NodeAccess()
            connector = settings.connector if settings is not None and settings.connector else None
            self._reach = NodeReach(self._state, access, connector or SshNodeConnector())
        return self._reach.admin_client(node)


class _PersistenceOwner:
    """Closes the persistence supervisor last when the session closes, unless it was handed over."""

    def __init__(self, persistence: PersistenceSupervisor[LegionState]) -> None:
        self.persistence = persistence
        self.handed_on = False

    async def aclose(self) -> None:
        if not self.handed_on:
            await self.persistence.aclose()


def with_background_share(policy: BrokerPolicy | None, share: float) -> BrokerPolicy:
    """The broker policy with observation's share of each provider's budget."""
    base = policy or BrokerPolicy()
    return replace(base, background=replace(base.background, share=share))


async def _close(stack: AsyncExitStack) -> None:
    try:
        await stack.aclose()
    except Exception:  # logged, never re-raised: every service got its turn and logout must complete
        log.exception("closing the session failed")
