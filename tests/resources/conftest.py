"""Fixtures for the resource actor tests: the real sandbox, adapters, broker, resilience and a real
persistence supervisor on an encrypted state.

Argon2id runs once per session (a template state); each test opens its own copy with the key derived
once, so every write still goes through the real envelope, store and persistence code.
``SandboxProviders`` is the test's ``ProviderAccess``: the same parts the engine's provider service
wires (adapters from the registry, one broker, resilience with the state's pending recorder).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from legion_nb.engine import planning
from legion_nb.engine.resources.actor import ResourceSettings
from legion_nb.engine.resources.pending import StatePendingRecorder
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.state.crypto import Envelope, KdfParams, SecretKey, derive_wrapping_key
from legion_nb.engine.state.model import LegionState, decode_state, empty_state, encode_state
from legion_nb.engine.state.persistence import PersistenceSupervisor
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.providers.base import Catalog, ProviderAdapter, ProviderCredentials
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.registry import create_adapter, descriptor
from legion_nb.providers.resilience import Resilience, SettlePolicy
from legion_nb.sandbox.cloud import SandboxCloud
from legion_nb.sandbox.faults import FaultPlan
from legion_nb.sandbox.world import SandboxWorld, Timing

PASSWORD = "resource-actors-test"
PROVIDERS = ("hetzner", "scaleway", "ovh")
FAST = Timing(action_seconds=0.02, boot_seconds=0.02, latency_ms=0.0)

State = PersistenceSupervisor[LegionState]


class OnceDerived:
    """Derives the template's wrapping key once; the store wipes each copy it is given."""

    def __init__(self) -> None:
        self._keys: dict[tuple[bytes, KdfParams], SecretKey] = {}

    def __call__(self, envelope: Envelope) -> SecretKey:
        slot = (envelope.salt, envelope.kdf)
        if slot not in self._keys:
            self._keys[slot] = derive_wrapping_key(PASSWORD, envelope.kdf, envelope.salt)
        return self._keys[slot].copy()


@dataclass
class Template:
    path: Path
    derive: OnceDerived = field(default_factory=OnceDerived)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("resources-template") / "state.legion"
    asyncio.run(SecureStateStore.create(path, PASSWORD, encode_state(empty_state()))).close()
    return Template(path)


async def open_state(template: Template, path: Path) -> State:
    store, payload = await asyncio.to_thread(SecureStateStore._unlock_with, path, template.derive)
    return PersistenceSupervisor(store, decode_state(payload), encode_state)


@pytest.fixture
def state_path(template: Template, tmp_path: Path) -> Path:
    target = tmp_path / "state" / "state.legion"
    target.parent.mkdir(mode=0o700)
    shutil.copyfile(template.path, target)
    target.chmod(0o600)
    return target


@pytest.fixture
async def persistence(template: Template, state_path: Path) -> AsyncIterator[State]:
    state = await open_state(template, state_path)
    try:
        yield state
    finally:
        await state.aclose()


def fast_policy() -> BrokerPolicy:
    return BrokerPolicy(
        poll=PollPolicy(interval=0.01, backoff=1.5, max_interval=0.05, timeout=30.0),
        retry=RetryPolicy(attempts=8, base_delay=0.0, max_delay=0.0, max_rate_limit_wait=0.01),
    )


def credentials_for(cloud: SandboxCloud, provider: str) -> ProviderCredentials:
    block = dict(cloud.endpoints()[provider])
    url = block.pop("url")
    secret_keys = set(descriptor(provider).secret_keys)
    secrets = {k: v for k, v in block.items() if k in secret_keys}
    options = {k: v for k, v in block.items() if k not in secret_keys}
    return ProviderCredentials(provider, url, secrets, options)


class SandboxProviders:
    """``ProviderAccess`` over the sandbox: what the engine's provider service wires, minus loading
    credentials from the state."""

    def __init__(self, broker: ProviderBroker, resilience: Resilience, loaded: tuple[str, ...]) -> None:
        self._broker = broker
        self._resilience = resilience
        self._loaded = loaded

    @property
    def broker(self) -> ProviderBroker:
        return self._broker

    @property
    def resilience(self) -> Resilience:
        return self._resilience

    def catalog(self, provider: str) -> Catalog:
        return embedded_catalog(provider)

    def has_credentials(self, provider: str) -> bool:
        return provider in self._loaded


def make_world(seed: int = 0, fault_rate: float = 0.0) -> SandboxWorld:
    return SandboxWorld(seed=seed, timing=FAST, faults=FaultPlan(rate=fault_rate, seed=seed))


@pytest.fixture
def world() -> SandboxWorld:
    return make_world()


@pytest.fixture
async def cloud(world: SandboxWorld) -> AsyncIterator[SandboxCloud]:
    async with SandboxCloud(world) as running:
        yield running


@pytest.fixture
async def adapters(cloud: SandboxCloud) -> AsyncIterator[dict[str, ProviderAdapter]]:
    """One adapter per provider for the actors, plus the test's own view (`observer`)."""
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(10.0)))
        yield {p: create_adapter(client, credentials_for(cloud, p)) for p in PROVIDERS}


@pytest.fixture
async def observer(cloud: SandboxCloud) -> AsyncIterator[dict[str, ProviderAdapter]]:
    """Adapters the test reads the emulators through (not counted against the actors' broker)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        yield {p: create_adapter(client, credentials_for(cloud, p)) for p in PROVIDERS}


@pytest.fixture
async def providers(
    adapters: dict[str, ProviderAdapter], persistence: State
) -> AsyncIterator[SandboxProviders]:
    async with ProviderBroker(fast_policy()) as broker:
        for adapter in adapters.values():
            broker.register(adapter)
        resilience = Resilience(broker, StatePendingRecorder(persistence), SettlePolicy(reads=3))
        yield SandboxProviders(broker, resilience, tuple(adapters))


@pytest.fixture
async def supervisor(providers: SandboxProviders, persistence: State) -> AsyncIterator[ResourceSupervisor]:
    running = ResourceSupervisor(providers, settings=ResourceSettings(admin_sources=("127.0.0.1/32",)))
    await running.attach(persistence)
    try:
        yield running
    finally:
        await running.stop()


async def change(state: State, fn: Callable[[LegionState], LegionState], reason: str = "test plan") -> None:
    await state.mutate(lambda s: (fn(s), None), reason=reason)


async def plan_cluster(
    state: State, names: tuple[str, ...], *, provider: str = "hetzner", zone: str | None = None
) -> None:
    """Plan ``names`` as one cluster at ``provider`` and, with ``zone``, a zone whose host ``www``
    points at all of them."""

    def apply(s: LegionState) -> LegionState:
        for name in names:
            s = planning.upsert_server(s, name=name, provider=provider)
        if zone is not None:
            s = planning.upsert_dns_zone(s, zone=zone, provider=provider)
            s = planning.upsert_dns_host(s, host="www", zone=zone, servers=list(names))
        return s

    await change(state, apply)


async def materialize(
    supervisor: ResourceSupervisor, *, timeout: float = 60.0
) -> dict[ResourceKey, ActorSnapshot]:
    """What ops does: sync every actor, wait until all settle; the snapshots by key."""
    await supervisor.sync_wave(run_id="test")
    settled = await supervisor.wait_settled(timeout=timeout)
    assert all(s.settled for s in settled), [s for s in settled if not s.settled]
    return {s.key: s for s in settled}


def server_key(name: str) -> ResourceKey:
    return ResourceKey("server", name)
