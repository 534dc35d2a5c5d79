"""The expecting poll schedule: priors, learned durations, and what the broker does with them.

The schedule and the learning are plain values checked directly; the broker runs the real Hetzner
adapter over ``httpx.MockTransport`` with a fake clock that the injected sleep advances, so a minute
of provider time passes without waiting and every poll's moment is known.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
import pytest
from test_hetzner_unit import action_json, pagination

from legion_nb.providers.broker import BrokerPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.contract import ProviderCredentials
from legion_nb.providers.hetzner import HetznerAdapter
from legion_nb.providers.polling import CLOUD_DURATIONS, Durations, PollPolicy, cloud_poll_policy, scaled
from legion_nb.providers.records import Operation

START = 1000.0


def policy_60s() -> PollPolicy:
    return PollPolicy(interval=1.0, backoff=1.5, max_interval=10.0, expected={("hetzner", "create"): 60.0})


def test_the_schedule_sleeps_through_most_of_the_expected_time_then_brackets_its_end() -> None:
    poll = policy_60s()
    assert poll.due(60.0, None) == pytest.approx(51.0)  # lead 0.85
    assert poll.due(60.0, 51.0) == pytest.approx(63.0)  # just after the expected end
    assert poll.due(60.0, 63.0) == pytest.approx(69.0)  # then every density x 60 s
    assert poll.due(60.0, 100.0) == pytest.approx(110.0)  # long overdue: spread out, capped at 10 s
    assert poll.due(60.0, 2.0) == pytest.approx(51.0)  # an early poll for another wait does not count
    assert poll.due(60.0, 48.0) == pytest.approx(63.0)  # one close to the first does
    assert poll.due(0.0, 0.0) == pytest.approx(1.0)  # never closer than the interval


def test_unknown_durations_keep_the_plain_backoff() -> None:
    poll = PollPolicy(interval=0.5, backoff=2.0, max_interval=4.0)
    assert [poll.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert Durations(poll).expect("hetzner", ["create_server"]) is None


def test_a_policy_with_shares_outside_their_range_is_refused() -> None:
    with pytest.raises(ValueError, match="lead and learning must lie in"):
        PollPolicy(lead=1.5)
    with pytest.raises(ValueError, match="density be >= 0"):
        PollPolicy(density=-0.1)


def test_priors_for_a_wait_of_several_kinds() -> None:
    durations = Durations(cloud_poll_policy())
    assert durations.expect("hetzner", ["start_server", "create_server"]) == 60.0  # its own prior
    assert durations.expect("hetzner", ["start_server"]) == CLOUD_DURATIONS[("hetzner", "start_server")]
    both = Durations(PollPolicy(expected={("p", "a"): 5.0, ("p", "b"): 9.0}))
    assert both.expect("p", ["a", "b"]) == 9.0  # no prior of its own: the longest kind
    assert both.expect("p", ["a", "c"]) is None  # one kind unknown: nothing is known


def test_learning_keeps_a_confirmed_expectation_and_moves_a_wrong_one() -> None:
    durations = Durations(policy_60s())
    durations.observe("hetzner", ["create"], 51.0, 63.0)
    assert durations.expect("hetzner", ["create"]) == 60.0  # inside the bracket: confirmed
    durations.observe("hetzner", ["create"], 0.0, 51.0)  # done at the first look
    assert durations.expect("hetzner", ["create"]) == pytest.approx(0.7 * 60.0 + 0.3 * 25.5)
    durations.observe("hetzner", ["new"], 2.0, 4.0)
    assert durations.expect("hetzner", ["new"]) == 3.0  # first sight of a kind: the bracket's middle
    assert durations.snapshot()[("hetzner", "new")] == 3.0

    fixed = Durations(PollPolicy(expected={("p", "a"): 10.0}, learning=0.0))
    fixed.observe("p", ["a"], 30.0, 40.0)
    assert fixed.expect("p", ["a"]) == 10.0


def test_scaling_a_policy_scales_every_duration() -> None:
    fast = scaled(policy_60s(), 0.01)
    assert (fast.interval, fast.max_interval, fast.timeout) == pytest.approx((0.01, 0.1, 9.0))
    assert fast.expected == {("hetzner", "create"): pytest.approx(0.6)}
    assert (fast.lead, fast.density, fast.backoff) == (0.85, 0.1, 1.5)


# ------------------------------------------------------------------------------------------- broker


@dataclass
class FakeTime:
    """A clock the injected sleep advances; sleeps longer than ``block_over`` never end by
    themselves (only a replan, i.e. cancellation, ends them)."""

    now: float = START
    block_over: float = float("inf")
    sleeps: list[float] = field(default_factory=list)
    gate: asyncio.Event | None = None
    """When set, sleeps wait for it to open and then end at their deadline (or now, if later)."""

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self.now + seconds
        if seconds > self.block_over:
            await asyncio.Event().wait()
        if self.gate is not None:
            await self.gate.wait()
        self.now = max(self.now, deadline)
        await asyncio.sleep(0)


class Actions:
    """A scripted Hetzner action API: each action succeeds at a fixed fake time."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.finish_at: dict[int, tuple[str, float]] = {}
        self.failing: set[int] = set()
        self.polls: list[float] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._serve))
        self.adapter = HetznerAdapter(
            self.client, ProviderCredentials("hetzner", "http://127.0.0.1:9/v1", {"token": "t"})
        )

    def start(self, action_id: int, command: str, seconds: float) -> Operation:
        self.finish_at[action_id] = (command, self.time.now + seconds)
        return Operation("hetzner", str(action_id), command, "42")

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        self.polls.append(self.time.now - START)
        ids = [int(i) for i in request.url.params.get_list("id")]
        actions = []
        for i in ids:
            command, at = self.finish_at[i]
            status = "running" if self.time.now < at else "error" if i in self.failing else "success"
            actions.append(action_json(i, command, status))
        return httpx.Response(200, json={"actions": actions, "meta": pagination(1, 1, len(ids))})


def broker_for(time: FakeTime, poll: PollPolicy) -> ProviderBroker:
    return ProviderBroker(
        BrokerPolicy(poll=poll, retry=RetryPolicy(jitter=0.0), sleep=time.sleep, clock=time.clock)
    )


async def test_a_one_minute_create_costs_two_polls_with_the_cloud_priors() -> None:
    time = FakeTime()
    provider = Actions(time)
    async with broker_for(time, cloud_poll_policy()) as broker:
        broker.register(provider.adapter)
        create = provider.start(1, "create_server", 30.0)
        start = provider.start(2, "start_server", 60.0)
        states = await broker.wait([create, start])
        assert [s.status for s in states] == ["success", "success"]
        assert provider.polls == [pytest.approx(51.0), pytest.approx(63.0)]
        # the polls bracketed the expected minute: nothing to correct
        assert broker.expected_durations()[("hetzner", "create_server+start_server")] == 60.0


async def test_waits_started_apart_share_their_polls() -> None:
    """Ten creates registered 0.3 s apart (the lane sends their POSTs one by one): each poll serves
    all of them, and a poll close to a wait's own first one counts for it."""
    time = FakeTime(gate=asyncio.Event())
    provider = Actions(time)
    async with broker_for(time, cloud_poll_policy()) as broker:
        broker.register(provider.adapter)
        waits = []
        for k in range(10):
            time.now = START + 0.3 * k
            create = provider.start(2 * k, "create_server", 30.0)
            start = provider.start(2 * k + 1, "start_server", 60.0)
            waits.append(asyncio.create_task(broker.wait([create, start])))
            for _ in range(3):  # the wait registers; the poller (and its sleep task) start planning
                await asyncio.sleep(0)
        assert time.gate is not None
        time.gate.set()
        results = await asyncio.gather(*waits)
    assert all(state.status == "success" for states in results for state in states)
    assert provider.polls == [pytest.approx(51.0), pytest.approx(63.0)]


async def test_a_faster_provider_is_learned_and_later_waits_poll_sooner() -> None:
    time = FakeTime()
    provider = Actions(time)
    poll = PollPolicy(expected={("hetzner", "create_server"): 60.0})
    async with broker_for(time, poll) as broker:
        broker.register(provider.adapter)
        await broker.wait([provider.start(1, "create_server", 20.0)])
        assert provider.polls == [pytest.approx(51.0)]  # done at the first look: at most 51 s
        learned = broker.expected_durations()[("hetzner", "create_server")]
        assert learned == pytest.approx(0.7 * 60.0 + 0.3 * 25.5)
        began = time.now - START
        await broker.wait([provider.start(2, "create_server", 20.0)])
        assert provider.polls[1] - began == pytest.approx(0.85 * learned)


async def test_unknown_kinds_are_learned_from_the_plain_backoff() -> None:
    time = FakeTime()
    provider = Actions(time)
    async with broker_for(time, PollPolicy(interval=1.0, backoff=2.0, max_interval=8.0)) as broker:
        broker.register(provider.adapter)
        await broker.wait([provider.start(1, "poweroff", 10.0)])
        assert time.sleeps == [1.0, 2.0, 4.0, 8.0]  # polls at 1, 3, 7 (running) and 15 (done)
        assert broker.expected_durations() == {("hetzner", "poweroff"): 11.0}


async def test_a_new_wait_wakes_a_poller_that_sleeps_for_a_long_one() -> None:
    time = FakeTime(block_over=100.0)
    provider = Actions(time)
    poll = PollPolicy(interval=0.5, expected={("hetzner", "rebuild_server"): 1000.0})
    async with broker_for(time, poll) as broker:
        broker.register(provider.adapter)
        long = asyncio.create_task(broker.wait([provider.start(1, "rebuild_server", 2000.0)]))
        while not time.sleeps:
            await asyncio.sleep(0)
        assert time.sleeps == [850.0]  # would block until the rebuild is nearly due
        (state,) = await broker.wait([provider.start(2, "poweroff", 0.1)])
        assert state.status == "success"
        assert time.sleeps[1] == 0.5  # replanned: the unknown kind got the plain first interval
        assert provider.polls == [pytest.approx(0.5)]  # one poll served both waits
        assert not long.done()
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long


async def test_a_failed_wait_teaches_nothing() -> None:
    time = FakeTime()
    provider = Actions(time)
    provider.failing.add(1)
    poll = PollPolicy(expected={("hetzner", "create_server"): 60.0})
    async with broker_for(time, poll) as broker:
        broker.register(provider.adapter)
        (state,) = await broker.wait([provider.start(1, "create_server", 5.0)], raise_on_error=False)
        assert state.status == "error"
        assert broker.expected_durations()[("hetzner", "create_server")] == 60.0
