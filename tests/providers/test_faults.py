"""Thirty servers through a cloud that fails one request in five: exactly thirty come out.

Faults are the sandbox's own (``FaultPlan``): 429s, 5xx before the handler runs, and "committed, then
the connection dropped". The adapter, the broker and resilience are the real ones; only the emulator
timing and the poll intervals are shortened. Hetzner runs ten seeds, Scaleway and OVH three each.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.catalog import resolve_server_choice
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import Server, ServerSpec
from legion_nb.providers.registry import create_adapter
from legion_nb.providers.resilience import Resilience, SettlePolicy

if TYPE_CHECKING:
    from conftest import SandboxKit

SERVERS = 30
FAULT_RATE = 0.2
CASES = [("hetzner", seed) for seed in range(10)] + [
    (p, seed) for p in ("scaleway", "ovh") for seed in range(3)
]


@pytest.mark.slow
@pytest.mark.parametrize(("provider", "seed"), CASES, ids=[f"{p}-seed{s}" for p, s in CASES])
async def test_thirty_servers_no_duplicates_no_orphans(
    provider: str, seed: int, sandbox_kit: SandboxKit
) -> None:
    recorder = sandbox_kit.MemoryRecorder()
    async with (
        SandboxCloud(sandbox_kit.make_world(seed, FAULT_RATE)) as cloud,
        httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client,
        ProviderBroker(sandbox_kit.fast_policy(attempts=12)) as broker,
    ):
        broker.register(create_adapter(client, sandbox_kit.credentials_for(cloud, provider)))
        resilience = Resilience(broker, recorder, SettlePolicy(reads=3, create_attempts=6))
        catalog = await broker.read(provider, "catalog", lambda a: a.fetch_catalog())
        choice = resolve_server_choice(catalog, "satellite")
        specs = [
            ServerSpec(
                f"fault-{seed}-{i:02d}",
                choice.server_type.name,
                choice.location.name,
                choice.image.id,
                labels=OwnershipLabels.new().as_labels(),
            )
            for i in range(SERVERS)
        ]
        created = await asyncio.gather(*(resilience.create_and_wait_server(s, provider) for s in specs))
        faults_seen = cloud.world.counters.total(provider)
        cloud.world.faults.rate = 0.0  # read the final truth without faults
        listed = await broker.read(provider, "list", lambda a: a.list_servers())

    assert all(isinstance(s, Server) and s.status == "running" for s in created)
    names = Counter(s.name for s in listed)
    assert names == Counter(spec.name for spec in specs), "duplicates or missing servers"
    assert {s.id for s in listed} == {s.id for s in created}, "orphans: servers nobody tracks"
    by_name = {s.name: s for s in listed}
    for spec in specs:
        assert by_name[spec.name].ownership == spec.ownership
    assert recorder.pending == {}
    assert faults_seen > SERVERS  # the run really went through the faulty cloud
