"""Background calls (observation) yield the lane to foreground calls and keep to their budget share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from legion_nb.providers.broker import BackgroundShare, BrokerPolicy, ProviderBroker, background_calls
from legion_nb.providers.records import RateLimitInfo


@dataclass
class FakeAdapter:
    """Just what the lane reads of an adapter: its name and the last rate-limit headers."""

    name: str = "hetzner"
    rate_limit: RateLimitInfo | None = None


@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def _broker(clock: Clock, share: BackgroundShare | None = None) -> tuple[ProviderBroker, FakeAdapter]:
    broker = ProviderBroker(
        BrokerPolicy(sleep=clock.sleep, clock=clock, background=share or BackgroundShare())
    )
    adapter = FakeAdapter()
    broker.register(adapter)  # type: ignore[arg-type]
    return broker, adapter


async def test_a_queued_foreground_call_goes_before_a_background_one() -> None:
    broker, _ = _broker(Clock())
    order: list[str] = []
    release = asyncio.Event()

    async def held(_: Any) -> None:
        order.append("apply-1")
        await release.wait()

    def call(label: str) -> Any:
        async def fn(_: Any) -> None:
            order.append(label)

        return fn

    first = asyncio.create_task(broker.read("hetzner", "held", held))
    await asyncio.sleep(0)

    async def observe() -> None:
        with background_calls():
            await broker.read("hetzner", "observe", call("observe"))

    background = asyncio.create_task(observe())
    await asyncio.sleep(0)
    foreground = asyncio.create_task(broker.mutate("hetzner", "apply-2", call("apply-2")))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, background, foreground)
    assert order == ["apply-1", "apply-2", "observe"]
    status = broker.status("hetzner")
    assert (status.calls_total, status.background_calls, status.background_rate_limited) == (3, 1, 0)


async def test_background_calls_keep_to_their_share_of_the_hourly_budget() -> None:
    clock = Clock()
    broker, _ = _broker(clock, BackgroundShare(share=0.1, burst_seconds=60.0))

    async def noop(_: Any) -> None:
        return None

    with background_calls():
        for _ in range(9):
            await broker.read("hetzner", "observe", noop)
    # 10 % of 3,600 an hour is one call per 10 s; a burst of 60 s worth (6 calls) goes at once.
    assert clock.slept == pytest.approx([10.0, 10.0, 10.0])
    for _ in range(5):
        await broker.read("hetzner", "apply", noop)  # the foreground is never paced by the share
    assert len(clock.slept) == 3


async def test_background_waits_while_the_remaining_budget_is_the_foregrounds() -> None:
    clock = Clock()
    broker, adapter = _broker(clock)
    adapter.rate_limit = RateLimitInfo(limit=3600, remaining=200, reset=clock.now + 30.0)

    async def refill(_: Any) -> None:
        adapter.rate_limit = RateLimitInfo(limit=3600, remaining=3000, reset=clock.now + 3600)

    with background_calls():
        await broker.read("hetzner", "observe", refill)
    assert clock.slept == [30.0]  # under 10 % left: it waited for the reset before taking any


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="background share 0 must lie in"):
        BackgroundShare(share=0)
