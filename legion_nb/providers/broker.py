"""The provider broker: one serialized call lane per provider, rate limits, retries, batched waits.

Why a broker: provider budgets are per project (Hetzner: 3600 requests an hour, every action poll
counts), so calls to one provider must be paced together however many actors make them, while calls
to different providers should not wait for each other.

* **Lanes.** Every call to a provider goes through that provider's lane, one call at a time, first
  come first served. Different providers' lanes run in parallel.
* **Waiting is not a call.** An actor waiting for an operation does not hold the lane: it registers
  the operation and sleeps. One poller per provider reads *every* pending operation with one
  ``poll_operations`` call per tick (Hetzner: one ``GET /actions?id=..&id=..``), so N servers
  provisioning at once cost one poll per tick, not N.
* **Polls when the work should be done.** A tick comes when the earliest pending wait wants one, by
  the schedule of :mod:`polling`: sleep through most of the duration expected for the wait's
  ``(provider, kinds)`` (priors, then learned from what the polls saw), poll just after it, then
  spread out; kinds with no expectation yet use the plain backoff. A new wait that wants a poll
  sooner than the poller sleeps wakes it.
* **Rate limits.** A 429 holds the lane (the budget is provider-wide) for ``Retry-After`` /
  ``RateLimit-Reset`` and then retries; nothing was processed, so that is safe for mutations too.
  When the last response said the budget is spent, the lane waits for one token before the next call.
* **Retries.** A read's failed requests (5xx, unreachable, 429) are retried one request at a time
  with jittered exponential backoff: the broker sets ``http.READ_RETRY`` around each call, and the
  adapter's ``ApiClient`` applies it, so a paged or N+1 read never restarts from scratch. Mutations are
  sent once; they are resent only when provably not processed (429, connection refused). An unknown
  outcome is for :mod:`resilience` to settle.
* **Background calls yield.** Calls made inside :func:`background_calls` (the observation scheduler's
  refreshes and collections) take the lane only while no foreground call (materialize, a command)
  waits for it, and spend at most :attr:`BackgroundShare.share` of the provider's hourly budget
  (a token bucket per lane); while the provider reports its remaining budget below that share,
  they wait for the foreground to be done with it. Observation never starves an apply.
* **Status.** :meth:`ProviderBroker.status` is a plain record per provider for snapshots and widgets.

Policies are values (:class:`BrokerPolicy`), with the clock, the sleep and the jitter source
injectable, so tests run with zero intervals and no real sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from legion_nb.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from legion_nb.providers.catalog import UnknownProviderError
from legion_nb.providers.contract import OperationFailedError, ProviderAdapter
from legion_nb.providers.http import READ_RETRY, OutcomeUnknownError, ReadRetry
from legion_nb.providers.polling import Durations, PollPolicy, cloud_poll_policy
from legion_nb.providers.records import Operation, OperationState, Server, ServerStatus

__all__ = [
    "BackgroundShare",
    "BrokerPolicy",
    "PollPace",
    "PollPolicy",
    "ProviderBroker",
    "ProviderStatus",
    "RetryPolicy",
    "background_calls",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


async def _poll(operations: Sequence[Operation], adapter: ProviderAdapter) -> list[OperationState]:
    return await adapter.poll_operations(operations)


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff for temporary read failures and for 429s without a hint."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_rate_limit_wait: float = 120.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw: float = min(self.max_delay, self.base_delay * float(2**attempt))
        return raw * (1.0 - self.jitter * rng.random())


HOURLY_BUDGETS: Mapping[str, int] = {"hetzner": 3600, "scaleway": 3600, "ovh": 3600}
"""Requests an hour each provider allows a project (Hetzner documents 3,600; the others are held to
the same figure). A provider's own ``RateLimit-Limit`` header wins when it sends one."""

_BACKGROUND: ContextVar[bool] = ContextVar("legion_background_calls", default=False)


@contextlib.contextmanager
def background_calls() -> Iterator[None]:
    """Mark the provider calls made in this context (and tasks it starts) as background work."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


@dataclass(frozen=True)
class BackgroundShare:
    """How much of each provider's budget background calls may spend: ``share`` of the hourly
    budget, with bursts of up to ``burst_seconds`` worth of it."""

    share: float = 0.1
    budgets: Mapping[str, int] = field(default_factory=lambda: dict(HOURLY_BUDGETS))
    burst_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0:
            raise ValueError(f"background share {self.share} must lie in (0, 1]")

    def per_second(self, provider: str, limit: int | None) -> float:
        budget = limit if limit else self.budgets.get(provider, 3600)
        return self.share * budget / 3600.0


@dataclass(frozen=True)
class BrokerPolicy:
    poll: PollPolicy = field(default_factory=cloud_poll_policy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    background: BackgroundShare = field(default_factory=BackgroundShare)
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)

    def pace(self) -> PollPace:
        """A fresh wait-and-read-again rhythm at this policy's poll pace, bounded by its timeout."""
        return PollPace(self)


class PollPace:
    """Waits between reads of something the provider has not finished (a server still deleting, a
    firewall still in use) at the poll pace, and says when the poll timeout has passed: one rhythm
    for every loop that must read again rather than guess."""

    def __init__(self, policy: BrokerPolicy) -> None:
        self._policy = policy
        timeout = policy.poll.timeout
        self._deadline = None if timeout is None else policy.clock() + timeout
        self._idle = 0

    def expired(self) -> bool:
        return self._deadline is not None and self._policy.clock() > self._deadline

    async def wait(self) -> None:
        await self._policy.sleep(self._policy.poll.delay(self._idle))
        self._idle += 1


@dataclass(frozen=True)
class ProviderStatus:
    provider: str
    queue_depth: int
    in_flight: str | None
    last_error: str | None
    remaining_budget: int | None
    calls_total: int
    waiting_operations: int
    background_calls: int = 0
    background_rate_limited: int = 0
    """429s a background call met (observation must never cause one)."""


@dataclass(eq=False)
class _Wait:
    """One :meth:`ProviderBroker.wait` call's operations on one provider: they are scheduled
    together (the caller resumes only when the last is done) and timed together for learning."""

    provider: str
    kinds: tuple[str, ...]
    started: float
    expected: float | None
    last_poll: float | None = None
    last_running: float | None = None
    failed: bool = False


@dataclass(eq=False)
class _Waiter:
    operation: Operation
    future: asyncio.Future[OperationState]
    group: _Wait


@dataclass(eq=False)
class _Lane:
    adapter: ProviderAdapter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: int = 0
    foreground_waiting: int = 0
    foreground_idle: asyncio.Event = field(default_factory=asyncio.Event)
    tokens: float | None = None
    tokens_at: float = 0.0
    background_calls: int = 0
    background_rate_limited: int = 0
    in_flight: str | None = None
    last_error: str | None = None
    calls_total: int = 0
    waiters: list[_Waiter] = field(default_factory=list)
    poller: asyncio.Task[None] | None = None
    idle_ticks: int = 0
    wake_at: float | None = None
    replan: asyncio.Event = field(default_factory=asyncio.Event)


def _foreground_queued(lane: _Lane) -> bool:
    return lane.foreground_waiting > 0


class ProviderBroker:
    """Owns one lane and one poller task per registered provider; close it with :meth:`aclose`."""

    def __init__(self, policy: BrokerPolicy | None = None) -> None:
        self.policy = policy or BrokerPolicy()
        self._read_retry = ReadRetry(
            attempts=self.policy.retry.attempts, delay=self._request_delay, sleep=self.policy.sleep
        )
        self._lanes: dict[str, _Lane] = {}
        self._durations = Durations(self.policy.poll)
        self._closed = False

    async def __aenter__(self) -> ProviderBroker:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------- providers

    def register(self, adapter: ProviderAdapter) -> None:
        """Route ``adapter.name`` through this broker (replacing an earlier adapter of that name)."""
        lane = self._lanes.get(adapter.name)
        if lane is None:
            self._lanes[adapter.name] = _Lane(adapter)
        else:
            lane.adapter = adapter
            lane.last_error = None  # it described the replaced adapter's credentials, not these

    def unregister(self, provider: str) -> None:
        """Stop routing ``provider`` (its credentials were removed); unknown names are ignored.

        A call already in the lane finishes on its adapter; every later call is refused as for a
        provider never registered. Operations still waiting fail with ``ProviderAuthError`` at once
        rather than at the poll timeout, and the lane's poller ends at its next wake-up.
        """
        lane = self._lanes.pop(provider, None)
        if lane is None:
            return
        removed = ProviderAuthError(provider, f"credentials removed; run `legion credentials set {provider}`")
        for waiter in lane.waiters:
            if not waiter.future.done():
                waiter.future.set_exception(removed)
        lane.waiters.clear()
        lane.replan.set()  # a sleeping poller wakes, finds nothing to wait for and ends

    def adapter(self, provider: str) -> ProviderAdapter:
        return self._lane(provider).adapter

    def providers(self) -> tuple[str, ...]:
        return tuple(self._lanes)

    def _lane(self, provider: str) -> _Lane:
        lane = self._lanes.get(provider)
        if lane is None:
            known = ", ".join(self._lanes) or "none"
            raise UnknownProviderError(
                f"provider {provider!r} has no credentials loaded (loaded: {known}); "
                f"run `legion credentials set {provider}`"
            )
        return lane

    def status(self, provider: str) -> ProviderStatus:
        lane = self._lane(provider)
        budget = lane.adapter.rate_limit
        return ProviderStatus(
            provider=provider,
            queue_depth=lane.queued,
            in_flight=lane.in_flight,
            last_error=lane.last_error,
            remaining_budget=budget.remaining if budget else None,
            calls_total=lane.calls_total,
            waiting_operations=len(lane.waiters),
            background_calls=lane.background_calls,
            background_rate_limited=lane.background_rate_limited,
        )

    # ----------------------------------------------------------------------------------------- calls

    async def read(self, provider: str, label: str, fn: Callable[[ProviderAdapter], Awaitable[T]]) -> T:
        """A call that changes nothing: each failed request (5xx, unreachable, 429) is retried."""
        return await self._call(provider, label, fn, mutation=False)

    async def mutate(self, provider: str, label: str, fn: Callable[[ProviderAdapter], Awaitable[T]]) -> T:
        """A call that changes something: sent once (429s excepted, they were not processed)."""
        return await self._call(provider, label, fn, mutation=True)

    async def _call(
        self,
        provider: str,
        label: str,
        fn: Callable[[ProviderAdapter], Awaitable[T]],
        *,
        mutation: bool,
    ) -> T:
        """Reads are retried request by request inside the adapter's ``ApiClient`` (``READ_RETRY``,
        set by :meth:`_in_lane`), so a many-request read never restarts from its first page. Here
        only mutations are retried, and only when the request provably never left."""
        if self._closed:
            raise ProviderUnavailableError(provider, "the provider broker is closed; unlock the engine again")
        lane = self._lane(provider)
        retry = self.policy.retry
        attempt = 0
        while True:
            try:
                return await self._in_lane(lane, label, fn, mutation=mutation)
            except OutcomeUnknownError:
                raise  # the change may have landed: resilience settles, the broker never resends
            except ProviderRateLimitedError:
                raise  # already retried up to the policy's attempts
            except ProviderUnavailableError:
                # For a mutation this means the request never left (connection refused, connect
                # timeout) or was refused unprocessed (maintenance), so sending it again is safe.
                if not mutation or attempt + 1 >= retry.attempts:
                    raise
                await self.policy.sleep(retry.delay(attempt, self.policy.rng))
                attempt += 1

    async def _in_lane(
        self, lane: _Lane, label: str, fn: Callable[[ProviderAdapter], Awaitable[T]], *, mutation: bool
    ) -> T:
        """Run ``fn`` alone in the lane. A mutation's 429 keeps the lane while it backs off, then
        retries (a 429 was not processed); a read's requests retry themselves via ``READ_RETRY``."""
        retry = self.policy.retry
        background = _BACKGROUND.get()
        lane.queued += 1
        try:
            if background:
                await self._acquire_background(lane)
            else:
                await self._acquire_foreground(lane)
        finally:
            lane.queued -= 1
        try:
            limited = 0
            while True:
                await self._pace(lane)
                lane.in_flight = label
                lane.calls_total += 1
                lane.background_calls += background
                token = READ_RETRY.set(self._read_retry)
                try:
                    result = await fn(lane.adapter)
                except ProviderRateLimitedError as exc:
                    lane.last_error = exc.message
                    lane.background_rate_limited += background
                    limited += 1
                    if not mutation or limited >= retry.attempts:
                        raise
                    await self.policy.sleep(self._rate_limit_wait(exc, limited - 1))
                    continue
                except ProviderError as exc:
                    lane.last_error = exc.message
                    raise
                finally:
                    READ_RETRY.reset(token)
                    lane.in_flight = None
                lane.last_error = None
                return result
        finally:
            lane.lock.release()

    async def _acquire_foreground(self, lane: _Lane) -> None:
        lane.foreground_waiting += 1
        lane.foreground_idle.clear()
        try:
            await lane.lock.acquire()
        finally:
            lane.foreground_waiting -= 1
            if lane.foreground_waiting == 0:
                lane.foreground_idle.set()

    async def _acquire_background(self, lane: _Lane) -> None:
        """The lane once no foreground call waits for it, the background share has a token and
        the provider's remaining budget is above the share the foreground keeps."""
        while True:
            if _foreground_queued(lane):
                await lane.foreground_idle.wait()
                continue
            wait = self._background_wait(lane)
            if wait > 0:
                await self.policy.sleep(wait)
                continue
            await lane.lock.acquire()
            if _foreground_queued(lane):
                lane.lock.release()  # a foreground call arrived while this one queued: it goes first
                continue
            assert lane.tokens is not None  # set by _background_wait
            lane.tokens -= 1.0
            return

    def _background_wait(self, lane: _Lane) -> float:
        """Seconds until a background call may go (0: now)."""
        share = self.policy.background
        budget = lane.adapter.rate_limit
        limit = budget.limit if budget is not None else None
        rate = share.per_second(lane.adapter.name, limit)
        capacity = max(1.0, rate * share.burst_seconds)
        now = self.policy.clock()
        if lane.tokens is None:
            lane.tokens, lane.tokens_at = capacity, now
        lane.tokens = min(capacity, lane.tokens + max(0.0, now - lane.tokens_at) * rate)
        lane.tokens_at = now
        if budget is not None and budget.remaining is not None and budget.limit and budget.reset is not None:
            low = budget.remaining < budget.limit * share.share  # what is left belongs to the foreground
            if low and budget.reset > now:  # (after the reset the budget is full again)
                return min(budget.reset - now, self.policy.retry.max_rate_limit_wait)
        if lane.tokens >= 1.0:
            return 0.0
        return (1.0 - lane.tokens) / rate

    def _request_delay(self, attempt: int, retry_after: float | None) -> float:
        """Delay before repeating one read request: the provider's hint if any, else backoff."""
        retry = self.policy.retry
        if retry_after is not None:
            return min(max(0.0, retry_after), retry.max_rate_limit_wait)
        return retry.delay(attempt, self.policy.rng)

    def _rate_limit_wait(self, exc: ProviderRateLimitedError, attempt: int) -> float:
        retry = self.policy.retry
        hint = exc.retry_after
        wait = hint if hint is not None else retry.delay(attempt, self.policy.rng)
        return min(max(0.0, wait), retry.max_rate_limit_wait)

    async def _pace(self, lane: _Lane) -> None:
        """When the provider said the budget is spent, wait for one token to refill."""
        budget = lane.adapter.rate_limit
        if budget is None or budget.remaining is None or budget.remaining > 0 or budget.reset is None:
            return
        missing = max(1, (budget.limit or 1) - budget.remaining)
        per_token = max(0.0, budget.reset - self.policy.clock()) / missing
        if per_token > 0:
            await self.policy.sleep(min(per_token, self.policy.retry.max_rate_limit_wait))

    # ------------------------------------------------------------------------------------ operations

    async def wait(
        self, operations: Sequence[Operation], *, raise_on_error: bool = True
    ) -> list[OperationState]:
        """Wait until every operation has finished; their final states, in order.

        The caller holds no lane while it waits; the provider's poller reads all pending operations
        together. ``OperationFailedError`` for the first failed operation unless ``raise_on_error`` is
        false; ``ProviderUnavailableError`` when the poll policy's timeout passes first.
        """
        if not operations:
            return []
        loop = asyncio.get_running_loop()
        now = self.policy.clock()
        groups: dict[str, _Wait] = {}
        waiters: list[tuple[_Lane, _Waiter]] = []
        for op in operations:
            lane = self._lane(op.provider)
            group = groups.get(op.provider)
            if group is None:
                kinds = tuple(o.kind for o in operations if o.provider == op.provider)
                expected = self._durations.expect(op.provider, kinds)
                group = groups[op.provider] = _Wait(op.provider, kinds, now, expected)
                self._replan_if_sooner(lane, group, now)
            waiter = _Waiter(op, loop.create_future(), group)
            lane.waiters.append(waiter)
            waiters.append((lane, waiter))
            self._ensure_poller(lane)
        timeout = self.policy.poll.timeout
        try:
            async with asyncio.timeout(timeout):
                states = list(await asyncio.gather(*(w.future for _, w in waiters)))
        except TimeoutError:
            first = operations[0]
            raise ProviderUnavailableError(
                first.provider,
                f"{first.kind} still running after {timeout:g} s; check the provider console",
            ) from None
        finally:
            for lane, waiter in waiters:
                if waiter in lane.waiters:
                    lane.waiters.remove(waiter)
                if not waiter.future.done():
                    waiter.future.cancel()
                elif not waiter.future.cancelled():
                    waiter.future.exception()  # mark as retrieved: gather reported the first one
        if raise_on_error:
            for state in states:
                if state.status == "error":
                    raise OperationFailedError.from_state(state)
        return states

    def _ensure_poller(self, lane: _Lane) -> None:
        if lane.poller is None or lane.poller.done():
            lane.idle_ticks = 0
            lane.poller = asyncio.get_running_loop().create_task(self._poll_loop(lane))

    def _replan_if_sooner(self, lane: _Lane, group: _Wait, now: float) -> None:
        """Wake a poller that sleeps past the new wait's first poll (it slept for other waits)."""
        poll = self.policy.poll
        first = now + (
            poll.delay(lane.idle_ticks) if group.expected is None else poll.due(group.expected, None)
        )
        if lane.wake_at is not None and first < lane.wake_at:
            lane.replan.set()

    def _next_delay(self, lane: _Lane, now: float) -> float:
        """Seconds until the earliest pending wait wants a poll: its expecting schedule, or the plain
        backoff for a wait of unknown duration. One poll then serves every pending wait."""
        poll = self.policy.poll
        delays = []
        for group in dict.fromkeys(w.group for w in lane.waiters if not w.future.done()):
            if group.expected is None:
                delays.append(poll.delay(lane.idle_ticks))
            else:
                delays.append(group.started + poll.due(group.expected, group.last_poll) - now)
        return max(0.0, min(delays, default=0.0))

    async def _sleep_until_due(self, lane: _Lane) -> bool:
        """Sleep until the next poll is due; False when a new wait asked for an earlier one."""
        now = self.policy.clock()
        delay = self._next_delay(lane, now)
        lane.replan.clear()
        lane.wake_at = now + delay
        sleeper = asyncio.ensure_future(self.policy.sleep(delay))
        replanned = asyncio.ensure_future(lane.replan.wait())
        try:
            await asyncio.wait((sleeper, replanned), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lane.wake_at = None
            for task in (sleeper, replanned):
                task.cancel()
            await asyncio.gather(sleeper, replanned, return_exceptions=True)
        return not lane.replan.is_set()

    async def _poll_loop(self, lane: _Lane) -> None:
        """Poll every pending operation of one provider per tick until none is pending."""
        provider = lane.adapter.name
        while lane.waiters:
            if not await self._sleep_until_due(lane):
                continue
            pending = [w for w in lane.waiters if not w.future.done()]
            if not pending:
                break
            ops = list(dict.fromkeys(w.operation for w in pending))
            try:
                states = await self.read(provider, f"poll {len(ops)} operations", partial(_poll, ops))
            except ProviderError as exc:
                for waiter in pending:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
                lane.waiters = [w for w in lane.waiters if not w.future.done()]
                continue
            by_op = dict(zip(ops, states, strict=True))
            progressed = False
            for waiter in pending:
                state = by_op[waiter.operation]
                waiter.group.failed |= state.status == "error"
                if state.done and not waiter.future.done():
                    waiter.future.set_result(state)
                    progressed = True
            self._learn(pending, self.policy.clock())
            lane.waiters = [w for w in lane.waiters if not w.future.done()]
            lane.idle_ticks = 0 if progressed else lane.idle_ticks + 1
        lane.poller = None

    def _learn(self, polled: Sequence[_Waiter], now: float) -> None:
        """Note the poll on every wait it served; a wait it finished (without errors) teaches its
        duration: after the last poll that saw it running (or its start), by now."""
        running = {w.group for w in polled if not w.future.done()}
        for group in dict.fromkeys(w.group for w in polled):
            elapsed = now - group.started
            group.last_poll = elapsed
            if group in running:
                group.last_running = elapsed
            elif not group.failed:
                after = group.last_running if group.last_running is not None else 0.0
                self._durations.observe(group.provider, group.kinds, after, elapsed)

    def expected_durations(self) -> dict[tuple[str, str], float]:
        """What the poll schedule currently expects per ``(provider, kinds)``, in seconds."""
        return self._durations.snapshot()

    async def wait_for_server(
        self, provider: str, server_id: str, statuses: Sequence[ServerStatus] = ("running",)
    ) -> Server:
        """Poll one server until its status is one of ``statuses`` (for servers found by re-reading,
        whose creating operations are unknown). ``error`` status fails at once."""
        pace = self.policy.pace()
        while True:
            server = await self.read(provider, f"get server {server_id}", lambda a: a.get_server(server_id))
            if server.status in statuses:
                return server
            if server.status == "error":
                raise OperationFailedError(provider, f"server {server.name} ({server_id}) is in error state")
            if pace.expired():
                raise ProviderUnavailableError(
                    provider,
                    f"server {server.name} still {server.status} after {self.policy.poll.timeout:g} s",
                )
            await pace.wait()

    # ------------------------------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        """Stop the pollers; anyone still waiting gets ``ProviderUnavailableError``."""
        self._closed = True
        tasks = [lane.poller for lane in self._lanes.values() if lane.poller is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name, lane in self._lanes.items():
            for waiter in lane.waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(ProviderUnavailableError(name, "the provider broker closed"))
            lane.waiters.clear()
            lane.poller = None
