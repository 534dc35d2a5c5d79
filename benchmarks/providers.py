"""Provider layer figures: API calls per created server, and broker throughput under latency.

Prints numbers, asserts nothing. Run: ``.venv/bin/python benchmarks/providers.py [--scale 0.02]``.

* calls per server (Hetzner emulator, request counters): N servers created at once through
  resilience + broker, every wait included (batched ``GET /actions?id=..`` polling with backoff and
  one final read per server), against the naive way: each server polls its own actions once a
  "second" until done. Provider time is scaled: create + start take ``60 s * scale``, a poll interval
  is ``1 s * scale``, so the figures match a real create of about a minute. (On a small shared
  machine the naive figure drops as N grows only because each of its polls gets slower.)
* broker throughput with 50 ms of emulated latency per request: reads through one provider's lane
  (serialized by design), the same spread over the three providers (lanes run in parallel), and raw
  concurrent requests without the broker for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import httpx

from legion_nb.providers.base import OwnershipLabels, ProviderAdapter, ProviderCredentials, ServerSpec
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.registry import create_adapter, descriptor
from legion_nb.providers.resilience import CreateIntent, Resilience
from legion_nb.sandbox.cloud import SandboxCloud
from legion_nb.sandbox.world import SandboxWorld, Timing


class NoRecorder:
    """The benchmark keeps no durable pending records (the engine does)."""

    async def record(self, intent: CreateIntent) -> None:
        return None

    async def clear(self, intent: CreateIntent) -> None:
        return None


def credentials(cloud: SandboxCloud, provider: str) -> ProviderCredentials:
    block = dict(cloud.endpoints()[provider])
    url = block.pop("url")
    secret_keys = set(descriptor(provider).secret_keys)
    return ProviderCredentials(
        provider,
        url,
        {k: v for k, v in block.items() if k in secret_keys},
        {k: v for k, v in block.items() if k not in secret_keys},
    )


def spec(i: int) -> ServerSpec:
    return ServerSpec(f"bench-{i:03d}", "cx22", "fsn1", "debian-13", labels=OwnershipLabels.new().as_labels())


def api_calls(cloud: SandboxCloud) -> int:
    return cloud.world.counters.total("hetzner")


async def batched(n: int, scale: float) -> tuple[float, float]:
    timing = Timing(action_seconds=60 * scale / 2, boot_seconds=60 * scale / 2)
    policy = BrokerPolicy(
        poll=PollPolicy(interval=1.0 * scale, backoff=1.5, max_interval=10.0 * scale, timeout=None)
    )
    async with (
        SandboxCloud(SandboxWorld(seed=1, timing=timing)) as cloud,
        httpx.AsyncClient() as client,
        ProviderBroker(policy) as broker,
    ):
        broker.register(create_adapter(client, credentials(cloud, "hetzner")))
        resilience = Resilience(broker, NoRecorder())
        before = api_calls(cloud)
        started = time.perf_counter()
        await asyncio.gather(*(resilience.create_and_wait_server(spec(i), "hetzner") for i in range(n)))
        elapsed = time.perf_counter() - started
        return (api_calls(cloud) - before) / n, elapsed


async def naive(n: int, scale: float) -> tuple[float, float]:
    """Each server on its own: create, poll each action once per interval, read the server."""
    timing = Timing(action_seconds=60 * scale / 2, boot_seconds=60 * scale / 2)
    async with SandboxCloud(SandboxWorld(seed=1, timing=timing)) as cloud, httpx.AsyncClient() as client:
        adapter = create_adapter(client, credentials(cloud, "hetzner"))

        async def one(i: int) -> None:
            pending = await adapter.create_server(spec(i))
            for op in pending.operations:
                while True:
                    (state,) = await adapter.poll_operations([op])
                    if state.done:
                        break
                    await asyncio.sleep(1.0 * scale)
            await adapter.get_server(pending.server.id)

        before = api_calls(cloud)
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - started
        return (api_calls(cloud) - before) / n, elapsed


async def throughput(calls: int) -> None:
    world = SandboxWorld(seed=2, timing=Timing(latency_ms=50.0))
    policy = BrokerPolicy(retry=RetryPolicy(attempts=3))
    async with SandboxCloud(world) as cloud, httpx.AsyncClient() as client:
        adapters: dict[str, ProviderAdapter] = {
            p: create_adapter(client, credentials(cloud, p)) for p in ("hetzner", "scaleway", "ovh")
        }
        async with ProviderBroker(policy) as broker:
            for adapter in adapters.values():
                broker.register(adapter)
                await broker.read(adapter.name, "warm", lambda a: a.verify_credentials())

            async def burst(providers: Sequence[str]) -> float:
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        broker.read(providers[i % len(providers)], "verify", lambda a: a.verify_credentials())
                        for i in range(calls)
                    )
                )
                return calls / (time.perf_counter() - started)

            one = await burst(["hetzner"])
            three = await burst(["hetzner", "scaleway", "ovh"])
            hetzner = adapters["hetzner"]
            started = time.perf_counter()
            await asyncio.gather(*(hetzner.verify_credentials() for _ in range(calls)))
            raw = calls / (time.perf_counter() - started)
            status = broker.status("hetzner")
    print(f"broker throughput, 50 ms latency, {calls} verify_credentials calls:")
    print(f"  one provider through its lane     {one:8.1f} calls/s  (serialized: at most ~{1000 / 50:.0f}/s)")
    print(f"  three providers, parallel lanes   {three:8.1f} calls/s  ({three / one:.1f}x one lane)")
    print(f"  raw concurrent, no broker         {raw:8.1f} calls/s  (what the lane trades for pacing)")
    print(f"  hetzner lane: calls_total={status.calls_total} remaining_budget={status.remaining_budget}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="provider seconds per real second")
    parser.add_argument("--calls", type=int, default=120)
    args = parser.parse_args()
    print(f"Hetzner API calls per created server (action 60 s x {args.scale}, poll 1 s x {args.scale}):")
    print(f"  {'servers':>7}  {'batched':>8}  {'naive':>8}  {'wall batched':>12}  {'wall naive':>10}")
    for n in (1, 10, 30):
        per_batched, wall_batched = await batched(n, args.scale)
        per_naive, wall_naive = await naive(n, args.scale)
        print(
            f"  {n:>7}  {per_batched:>8.2f}  {per_naive:>8.2f}  {wall_batched:>11.2f}s  {wall_naive:>9.2f}s"
        )
    await throughput(args.calls)


if __name__ == "__main__":
    asyncio.run(main())
