"""Provider layer figures: API calls per created server, and broker throughput under latency.

Prints numbers, asserts nothing. Run: ``.venv/bin/python benchmarks/providers.py [--scale 0.02]``.

* calls per server (Hetzner emulator, request counters): N servers created at once through
  resilience + broker, every wait included (batched ``GET /actions?id=..`` polling and one final
  read per server), for the default schedule that expects typical durations (priors, then learned:
  :mod:`legion_nb.providers.polling`), the plain backoff (1 s x1.5 up to 10 s, the earlier default)
  and the naive way: each server polls its own actions once a "second" until done. Provider time is
  scaled: create + start take ``60 s * scale`` and so do the policies' durations, so the figures
  match a real create of about a minute. (On a small shared machine the naive figure drops as N
  grows only because each of its polls gets slower.)
* latency: from the emulator finishing a server's last action (watched in-process) to its wait
  returning, in provider seconds: the completion time a schedule trades for fewer polls.
* wrong priors: one create at a time through one broker, with provider time half, equal to and
  twice the prior: what the first create costs, and the fourth once the broker has learned.
* broker throughput with 50 ms of emulated latency per request: reads through one provider's lane
  (serialized by design), the same spread over the three providers (lanes run in parallel), and raw
  concurrent requests without the broker for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import httpx

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.hetzner import state_of
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.contract import ProviderAdapter, ProviderCredentials
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.polling import cloud_poll_policy, scaled
from legion_nb.providers.records import ServerSpec
from legion_nb.providers.registry import create_adapter, descriptor
from legion_nb.providers.resilience import CreateIntent, Resilience


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


class FinishWatch:
    """Notes when the emulator finishes each server's last action, to time how late we notice.

    It reads the emulated project in-process every millisecond: the emulator's own timestamps have
    whole-second resolution, too coarse for a time-scaled run."""

    def __init__(self, cloud: SandboxCloud) -> None:
        self._project = state_of(cloud.emulator("hetzner"))
        self.finished: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FinishWatch:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            now = time.perf_counter()
            for action in self._project.actions.all():
                if action.status == "running":
                    continue
                for resource in action.resources:
                    if resource["type"] == "server":
                        self.finished.setdefault(f"{resource['id']}:{action.id}", now)
            await asyncio.sleep(0.001)

    def server_done(self, server_id: str) -> float:
        """When the last action on ``server_id`` finished."""
        return max(t for key, t in self.finished.items() if key.split(":")[0] == server_id)


@dataclass
class Run:
    calls_per_server: float
    wall: float
    latencies: list[float] = field(default_factory=list)

    @property
    def mean_latency(self) -> float:
        return statistics.fmean(self.latencies) if self.latencies else 0.0


def poll_policy(scale: float, *, expecting: bool) -> PollPolicy:
    """The real-cloud default on emulator time; ``expecting=False`` is the plain 1 s x1.5 backoff."""
    base = cloud_poll_policy() if expecting else PollPolicy()
    return replace(scaled(base, scale), timeout=None)


async def batched(
    n: int, scale: float, *, expecting: bool = True, rounds: int = 1, slowdown: float = 1.0
) -> Run:
    """``rounds`` of ``n`` servers created at once through one broker (later rounds use what the
    earlier ones taught it); the figures are the last round's. ``slowdown`` stretches provider time
    against the priors, to show what a wrong prior costs."""
    timing = Timing(action_seconds=60 * scale * slowdown / 2, boot_seconds=60 * scale * slowdown / 2)
    async with (
        SandboxCloud(SandboxWorld(seed=1, timing=timing)) as cloud,
        httpx.AsyncClient() as client,
        ProviderBroker(BrokerPolicy(poll=poll_policy(scale, expecting=expecting))) as broker,
        FinishWatch(cloud) as watch,
    ):
        broker.register(create_adapter(client, credentials(cloud, "hetzner")))
        resilience = Resilience(broker, NoRecorder())
        run = Run(0.0, 0.0)
        for r in range(rounds):
            noticed: dict[str, float] = {}

            async def one(i: int, noticed: dict[str, float] = noticed) -> None:
                # resilience.create_and_wait_server's steps, timed where the wait returns
                pending = await resilience.create_server(spec(i), "hetzner")
                await broker.wait(pending.operations)
                noticed[pending.server.id] = time.perf_counter()
                await broker.wait_for_server("hetzner", pending.server.id)

            before = api_calls(cloud)
            started = time.perf_counter()
            await asyncio.gather(*(one(r * n + i) for i in range(n)))
            run = Run((api_calls(cloud) - before) / n, time.perf_counter() - started)
            await asyncio.sleep(0.005)  # let the watch see the last finish
            run.latencies = [at - watch.server_done(sid) for sid, at in noticed.items()]
        return run


async def naive(n: int, scale: float) -> Run:
    """Each server on its own: create, poll each action once per interval, read the server."""
    timing = Timing(action_seconds=60 * scale / 2, boot_seconds=60 * scale / 2)
    async with (
        SandboxCloud(SandboxWorld(seed=1, timing=timing)) as cloud,
        httpx.AsyncClient() as client,
        FinishWatch(cloud) as watch,
    ):
        adapter = create_adapter(client, credentials(cloud, "hetzner"))
        noticed: dict[str, float] = {}

        async def one(i: int) -> None:
            pending = await adapter.create_server(spec(i))
            for op in pending.operations:
                while True:
                    (state,) = await adapter.poll_operations([op])
                    if state.done:
                        break
                    await asyncio.sleep(1.0 * scale)
            noticed[pending.server.id] = time.perf_counter()
            await adapter.get_server(pending.server.id)

        before = api_calls(cloud)
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        run = Run((api_calls(cloud) - before) / n, time.perf_counter() - started)
        await asyncio.sleep(0.005)
        run.latencies = [at - watch.server_done(sid) for sid, at in noticed.items()]
        return run


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


def provider_seconds(latency: float, scale: float) -> str:
    """A real-time latency as provider seconds (what it would be on a real cloud)."""
    return f"{latency / scale:5.1f}s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="real seconds per provider second")
    parser.add_argument("--calls", type=int, default=120)
    args = parser.parse_args()
    scale = args.scale
    print(f"Hetzner API calls per created server (create 60 s, time x {scale}); goal: at most 5.")
    print("  latency = mean time from the provider finishing a server's actions to its wait returning,")
    print("  in provider seconds (what the poll schedule costs; the final server read comes after)")
    print(
        f"  {'servers':>7}  {'expecting':>9}  {'backoff':>8}  {'naive':>8}"
        f"  {'lat exp':>7}  {'lat bo':>7}  {'lat naive':>9}  {'wall exp':>8}  {'wall naive':>10}"
    )
    for n in (1, 10, 30):
        expecting = await batched(n, scale)
        backoff = await batched(n, scale, expecting=False)
        plain = await naive(n, scale)
        print(
            f"  {n:>7}  {expecting.calls_per_server:>9.2f}  {backoff.calls_per_server:>8.2f}"
            f"  {plain.calls_per_server:>8.2f}  {provider_seconds(expecting.mean_latency, scale):>7}"
            f"  {provider_seconds(backoff.mean_latency, scale):>7}"
            f"  {provider_seconds(plain.mean_latency, scale):>9}"
            f"  {expecting.wall:>7.2f}s  {plain.wall:>9.2f}s"
        )
    print("  expecting = priors + learned durations (default); backoff = 1 s x1.5 up to 10 s (before);")
    print("  naive = each server polls its actions once a second")
    print("When the priors are wrong (one server at a time, last of 4 rounds through one broker):")
    print(
        f"  {'provider time':>13}  {'round 1 calls':>13}  {'round 4 calls':>13}  {'lat 1':>6}  {'lat 4':>6}"
    )
    for slowdown in (0.5, 1.0, 2.0):
        first = await batched(1, scale, slowdown=slowdown)
        learned = await batched(1, scale, slowdown=slowdown, rounds=4)
        print(
            f"  {f'{60 * slowdown:.0f} s create':>13}  {first.calls_per_server:>13.2f}"
            f"  {learned.calls_per_server:>13.2f}  {provider_seconds(first.mean_latency, scale):>6}"
            f"  {provider_seconds(learned.mean_latency, scale):>6}"
        )
    await throughput(args.calls)


if __name__ == "__main__":
    asyncio.run(main())
