"""Helpers for the resource actor tests, imported by name (``conftest`` is not a unique module name
in the suite, so tests must not import from it).

``SandboxProviders`` is the tests' ``ProviderAccess``: the same parts the engine's provider service
wires (adapters from the registry, one broker, resilience with the state's pending recorder).
``OnceDerived``/``Template``: a real encrypted state made once per session and opened per test with
its key derived once, so every write still goes through the real envelope, store and persistence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.engine import planning
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.state.crypto import Envelope, KdfParams, SecretKey, derive_wrapping_key
from legion_nb.engine.state.model import LegionState, TrackedServer, decode_state, encode_state
from legion_nb.engine.state.persistence import PersistenceSupervisor
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.contract import ProviderCredentials
from legion_nb.providers.records import Catalog
from legion_nb.providers.registry import descriptor
from legion_nb.providers.resilience import Resilience

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


async def open_state(template: Template, path: Path) -> State:
    store, payload = await asyncio.to_thread(SecureStateStore._unlock_with, path, template.derive)
    return PersistenceSupervisor(store, decode_state(payload), encode_state)


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


def peer_cidrs(servers: Mapping[str, TrackedServer], names: Iterable[str]) -> set[str]:
    """The host CIDRs a cluster firewall admits for ``names``: every IPv4 and IPv6 address they hold.

    Hetzner gives each server an IPv6 /64 (the adapter reports its ``::1``), so a Hetzner peer shows
    up twice; a server without IPv6 only once.
    """
    cidrs: set[str] = set()
    for name in names:
        server = servers[name]
        assert server.ipv4, f"{name} has no IPv4 address"
        cidrs.add(f"{server.ipv4}/32")
        if server.ipv6:
            cidrs.add(f"{server.ipv6}/128")
    return cidrs
