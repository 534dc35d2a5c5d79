"""Shared fixtures for provider tests: a running sandbox cloud, adapters pointed at it, a broker.

Adapters are built the way the engine builds them (registry + credentials record); the sandbox is the
real outside world on 127.0.0.1. ``MemoryRecorder`` is the test-only ``PendingRecorder``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.contract import ProviderAdapter, ProviderCredentials
from legion_nb.providers.registry import create_adapter, descriptor
from legion_nb.providers.resilience import CreateIntent

FAST = Timing(action_seconds=0.02, boot_seconds=0.02, latency_ms=0.0)
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl legion-test@example.org"
)


def credentials_for(cloud: SandboxCloud, provider: str) -> ProviderCredentials:
    """The sandbox's GUIDE §3 block split into secrets and options the way the descriptor names them."""
    block = dict(cloud.endpoints()[provider])
    url = block.pop("url")
    secret_keys = set(descriptor(provider).secret_keys)
    secrets = {k: v for k, v in block.items() if k in secret_keys}
    options = {k: v for k, v in block.items() if k not in secret_keys}
    return ProviderCredentials(provider, url, secrets, options)


def fast_policy(*, attempts: int = 8) -> BrokerPolicy:
    """Tiny real intervals: zero would spin the poller against the emulator on a shared 2-core box."""
    return BrokerPolicy(
        poll=PollPolicy(interval=0.01, backoff=1.5, max_interval=0.05, timeout=30.0),
        retry=RetryPolicy(attempts=attempts, base_delay=0.0, max_delay=0.0, max_rate_limit_wait=0.01),
    )


class MemoryRecorder:
    """In-memory ``PendingRecorder`` (tests only: the engine's is durable)."""

    def __init__(self) -> None:
        self.pending: dict[str, CreateIntent] = {}
        self.log: list[tuple[str, CreateIntent]] = []

    async def record(self, intent: CreateIntent) -> None:
        self.pending[intent.legion_id] = intent
        self.log.append(("record", intent))

    async def clear(self, intent: CreateIntent) -> None:
        self.pending.pop(intent.legion_id, None)
        self.log.append(("clear", intent))


def make_world(seed: int = 0, fault_rate: float = 0.0) -> SandboxWorld:
    return SandboxWorld(seed=seed, timing=FAST, faults=FaultPlan(rate=fault_rate, seed=seed))


@pytest.fixture
async def cloud() -> AsyncIterator[SandboxCloud]:
    async with SandboxCloud(make_world()) as running:
        yield running


AdapterFactory = Callable[[str], AbstractAsyncContextManager[ProviderAdapter]]


@asynccontextmanager
async def open_adapter(cloud: SandboxCloud, provider: str) -> AsyncIterator[ProviderAdapter]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        yield create_adapter(client, credentials_for(cloud, provider))


@pytest.fixture
def adapter_for(cloud: SandboxCloud) -> AdapterFactory:
    return lambda provider: open_adapter(cloud, provider)


@pytest.fixture
async def broker() -> AsyncIterator[ProviderBroker]:
    async with ProviderBroker(fast_policy()) as running:
        yield running


@pytest.fixture
def recorder() -> MemoryRecorder:
    return MemoryRecorder()


@pytest.fixture
def credentials(cloud: SandboxCloud) -> Callable[[str], ProviderCredentials]:
    return lambda provider: credentials_for(cloud, provider)


@pytest.fixture
def sandbox_kit() -> SandboxKit:
    """The plain helpers, for tests that build their own clouds (test modules cannot import a
    ``conftest``: with several test directories the name is ambiguous)."""
    return SandboxKit()


class SandboxKit:
    make_world = staticmethod(make_world)
    fast_policy = staticmethod(fast_policy)
    credentials_for = staticmethod(credentials_for)
    MemoryRecorder = MemoryRecorder
