"""Fixtures for the resource actor tests: the real sandbox, adapters, broker, resilience and a real
persistence supervisor on an encrypted state (the helpers live in ``resourcekit``)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from resourcekit import (
    PASSWORD,
    PROVIDERS,
    SandboxProviders,
    State,
    Template,
    credentials_for,
    fast_policy,
    make_world,
    open_state,
)

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.resources.actor import ResourceSettings
from legion_nb.engine.resources.pending import StatePendingRecorder
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.state.model import empty_state, encode_state
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.registry import create_adapter
from legion_nb.providers.resilience import Resilience, SettlePolicy


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("resources-template") / "state.legion"
    asyncio.run(SecureStateStore.create(path, PASSWORD, encode_state(empty_state()))).close()
    return Template(path)


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
    settings = ResourceSettings(admin_sources=("127.0.0.1/32",))
    async with ResourceSupervisor(persistence, providers, settings=settings) as running:
        yield running
