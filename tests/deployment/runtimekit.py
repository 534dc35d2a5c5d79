"""Shared parts of the deployment runtime tests: the sandbox cloud with real simulated nodes, and the
engine-side pieces (encrypted state, broker, resilience, phase services, runtime) wired as the engine
wires them.

Servers are made as the engine makes them: by the node's :class:`ServerNodeActor`. The tests drive
the node operations themselves, so the actor for a node starts when a provision phase begins
(:class:`ActorProvisioned`) and leaves every operation to the test (:class:`DrivenByTheTest`).

``NodeWatcher`` stands in for the sandbox hook that boots a simulated node whenever the Hetzner
emulator runs a server: it polls the emulated project and keeps a :class:`NodeFleet` in step, with
root accepting the SSH keys the server was created with (as a cloud image would).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from legion_nb.engine import planning
from legion_nb.engine.deployment.node_channel import NodeAccess, ReadinessPolicy, SshNodeConnector
from legion_nb.engine.deployment.phase_work import NodePhaseWork
from legion_nb.engine.deployment.phases import NodeOperation, Phase, PhaseContext, PhaseHandler
from legion_nb.engine.deployment.runtime import DelayHook, OperationRunner
from legion_nb.engine.resources.actor import ActorContext
from legion_nb.engine.resources.node import ServerNodeActor
from legion_nb.engine.resources.pending import StatePendingRecorder
from legion_nb.engine.resources.snapshot import ResourceKey
from legion_nb.engine.ssh import ReconnectPolicy, SshOptions
from legion_nb.engine.state.model import (
    LegionState,
    NodeExecution,
    TrackedSshKey,
    decode_state,
    empty_state,
    encode_state,
)
from legion_nb.engine.state.persistence import PersistenceSupervisor
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.contract import ProviderCredentials
from legion_nb.providers.records import Catalog
from legion_nb.providers.registry import create_adapter
from legion_nb.providers.resilience import Resilience, SettlePolicy

if TYPE_CHECKING:  # the engine processes of the crash test never load the sandbox (start-up time)
    from legion_nb.emulators.cloud import SandboxCloud
    from legion_nb.emulators.nodes import NodeFleet
    from legion_nb.emulators.world import Timing

PASSWORD = "deployment-runtime-test"

State = PersistenceSupervisor[LegionState]


def free_port() -> int:
    """A TCP port free on loopback now, with the one after it free too: every simulated node listens
    for SSH on it and for its admin API (HTTPS, mTLS) on the next (:func:`admin_port_of`)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def admin_port_of(ssh_port: int) -> int:
    """The sandbox nodes' admin API port (one engine process only knows the SSH port it was given)."""
    return ssh_port + 1


class NodeWatcher:
    """Boots a simulated node for every running Hetzner server and stops it when the server goes."""

    def __init__(self, cloud: SandboxCloud, fleet: NodeFleet) -> None:
        from legion_nb.emulators.hetzner import state_of  # noqa: PLC0415 - see the TYPE_CHECKING note

        self._project = state_of(cloud.emulator("hetzner"))
        self._fleet = fleet
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> NodeWatcher:
        self._task = asyncio.create_task(self._watch(), name="node-watcher")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await self.sync()
            await asyncio.sleep(0.01)

    async def sync(self) -> None:
        wanted: dict[str, tuple[str, list[str]]] = {}
        for server in self._project.servers.values():
            if server.status == "running" and server.ipv4:
                keys = [
                    self._project.ssh_keys[k].public_key
                    for k in server.ssh_keys
                    if k in self._project.ssh_keys
                ]
                wanted[server.ipv4] = (server.name, keys)
        for address in self._fleet.addresses():
            if address not in wanted:
                await self._fleet.stop_node(address)
        for address, (name, keys) in wanted.items():
            if address not in self._fleet:
                await self._fleet.start_node(address, name, authorized_keys=keys)


@dataclass
class Sandbox:
    cloud: SandboxCloud
    fleet: NodeFleet
    ssh_port: int

    def hetzner_servers(self) -> list[str]:
        from legion_nb.emulators.hetzner import state_of  # noqa: PLC0415 - see the TYPE_CHECKING note

        return sorted(s.name for s in state_of(self.cloud.emulator("hetzner")).servers.values())

    def credentials(self) -> ProviderCredentials:
        block = dict(self.cloud.endpoints()["hetzner"])
        return ProviderCredentials("hetzner", block["url"], {"token": block["token"]}, {})


@asynccontextmanager
async def sandbox(
    seed: int = 0, timing: Timing | None = None, *, sender_port: int | None = None
) -> AsyncIterator[Sandbox]:
    """The sandbox cloud plus simulated nodes. A rebuild shows as a node stopping and a fresh one (new
    cloud-image host key) booting, provided the rebuild lasts longer than one watcher poll. With a
    ``sender_port``, satellites serve their Sender API there once set up."""
    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415 - see the TYPE_CHECKING note
    from legion_nb.emulators.nodes import NodeFleet, NodeTiming  # noqa: PLC0415
    from legion_nb.emulators.world import SandboxWorld, Timing  # noqa: PLC0415

    timing = timing or Timing(action_seconds=0.02, boot_seconds=0.02, latency_ms=0.0)
    node_timing = NodeTiming(kexec=0.02, install=0.02, reboot=0.02, configure_tribes=0.0, tribes_start=0.0)
    port = free_port()
    async with AsyncExitStack() as stack:
        cloud = await stack.enter_async_context(SandboxCloud(SandboxWorld(seed=seed, timing=timing)))
        fleet = await stack.enter_async_context(
            NodeFleet(
                timing=node_timing, ssh_port=port, admin_port=admin_port_of(port), sender_port=sender_port
            )
        )
        await stack.enter_async_context(NodeWatcher(cloud, fleet))
        yield Sandbox(cloud, fleet, port)


class HetznerOnly:
    """``ProviderAccess`` with the sandbox's Hetzner adapter (what the engine's provider service wires)."""

    def __init__(self, broker: ProviderBroker, resilience: Resilience) -> None:
        self._broker = broker
        self._resilience = resilience

    @property
    def broker(self) -> ProviderBroker:
        return self._broker

    @property
    def resilience(self) -> Resilience:
        return self._resilience

    def catalog(self, provider: str) -> Catalog:
        return embedded_catalog(provider)

    def has_credentials(self, provider: str) -> bool:
        return provider == "hetzner"


class DrivenByTheTest:
    """The node actors' ``NodeDeployer`` port while the test runs every node operation itself: a
    node always reads as busy, so its actor provisions the server and never starts an install."""

    def __init__(self, services: NodePhaseWork) -> None:
        self._services = services
        self.runtime: OperationRunner | None = None

    def enabled(self) -> bool:
        return True

    def busy(self, node: str) -> bool:
        del node
        return True

    def execution(self, node: str) -> NodeExecution | None:
        return self.runtime.execution(node) if self.runtime is not None else None

    async def provider_ssh_key(self, node: str, provider: str) -> TrackedSshKey:
        await self._services.prepare(node, NodeOperation.ADD)
        return await self._services.provider_ssh_key(node, provider)

    async def deploy(self, node: str) -> NodeExecution:
        raise AssertionError(f"the test runs node {node}'s operations itself")

    async def repair(self, node: str, operation: str) -> NodeExecution:
        raise AssertionError(f"the test runs node {node}'s {operation} itself")


class ActorProvisioned:
    """The phase work with each node's server actor started when its provision phase begins."""

    def __init__(self, services: NodePhaseWork, context: ActorContext) -> None:
        self._services = services
        self._context = context
        self.actors: dict[str, ServerNodeActor] = {}

    async def prepare(self, node: str, operation: NodeOperation) -> None:
        await self._services.prepare(node, operation)

    def handler(self, phase: Phase) -> PhaseHandler:
        handler = self._services.handler(phase)
        if phase != Phase.PROVISION:
            return handler

        async def provision(ctx: PhaseContext) -> None:
            if ctx.node not in self.actors:
                actor = ServerNodeActor(ResourceKey("server", ctx.node), "hetzner", self._context)
                self.actors[ctx.node] = actor
                await actor.start()
                await actor.sync()
            await handler(ctx)

        return provision

    async def aclose(self) -> None:
        for actor in self.actors.values():
            await actor.stop()


def fast_broker() -> BrokerPolicy:
    return BrokerPolicy(
        poll=PollPolicy(interval=0.01, backoff=1.5, max_interval=0.05, timeout=30.0),
        retry=RetryPolicy(attempts=8, base_delay=0.0, max_delay=0.0, max_rate_limit_wait=0.01),
    )


def node_access(ssh_port: int, sender_port: int | None = None) -> NodeAccess:
    async def no_wait(_: float) -> None:
        await asyncio.sleep(0.01)

    access = NodeAccess(
        ssh_port=ssh_port,
        admin_port=admin_port_of(ssh_port),
        readiness=ReadinessPolicy(attempts=200, delay=0.01),
        provisioning=60.0,
        sleep=no_wait,
    )
    return access if sender_port is None else replace(access, sender_port=sender_port)


def connector() -> SshNodeConnector:
    return SshNodeConnector(
        reconnect=ReconnectPolicy(attempts=500, initial_delay=0.02, max_delay=0.02, factor=1.0),
        options=SshOptions(connect_timeout=5.0, command_timeout=30.0),
    )


async def create_state(
    path: Path, *, servers: tuple[str, ...] = (), satellites: tuple[str, ...] = ()
) -> None:
    """A new encrypted state at ``path`` with ``servers`` planned at Hetzner in one cluster (and
    ``satellites`` beside them)."""
    state = empty_state()
    for name in servers:
        state = planning.upsert_server(state, name=name, provider="hetzner", cluster="alpha")
    for name in satellites:
        state = planning.upsert_server(state, name=name, provider="hetzner", role="satellite")
    path.parent.mkdir(mode=0o700, exist_ok=True)
    (await SecureStateStore.create(path, PASSWORD, encode_state(state))).close()


@dataclass
class Engine:
    persistence: State
    runtime: OperationRunner
    services: NodePhaseWork
    broker: ProviderBroker
    providers: HetznerOnly


@asynccontextmanager
async def engine(
    path: Path,
    credentials: ProviderCredentials,
    ssh_port: int,
    *,
    delay: DelayHook | None = None,
    sender_port: int | None = None,
) -> AsyncIterator[Engine]:
    """The deployment parts of an unlocked engine over the state at ``path``."""
    store, payload = await SecureStateStore.unlock(path, PASSWORD)
    persistence = PersistenceSupervisor(store, decode_state(payload), encode_state)
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client,
            ProviderBroker(fast_broker()) as broker,
        ):
            broker.register(create_adapter(client, credentials))
            resilience = Resilience(broker, StatePendingRecorder(persistence), SettlePolicy(reads=3))
            providers = HetznerOnly(broker, resilience)
            services = NodePhaseWork(
                persistence, providers, access=node_access(ssh_port, sender_port), connector=connector()
            )
            nodes = DrivenByTheTest(services)
            context = ActorContext(
                providers=providers,
                state=persistence,
                changed=lambda _: None,
                busy_servers=lambda _: [],
                deployment=nodes,
            )
            provisioned = ActorProvisioned(services, context)
            runtime = OperationRunner(persistence, provisioned, delay=delay)
            nodes.runtime = runtime
            try:
                yield Engine(persistence, runtime, services, broker, providers)
            finally:
                await provisioned.aclose()
    finally:
        await persistence.aclose()
