"""The provider broker: lanes, rate limits, retry rules, batched operation waits, status.

The adapter is the real Hetzner adapter over ``httpx.MockTransport`` (scripted provider answers), or
over the sandbox emulator where counting real requests is the point. Sleeping is injected: the
policies under test record the delays they ask for instead of waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from test_hetzner_unit import action_json, error, pagination, server_json

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.errors import ProviderAuthError, ProviderRateLimitedError, ProviderUnavailableError
from legion_nb.providers.broker import BrokerPolicy, PollPolicy, ProviderBroker, RetryPolicy
from legion_nb.providers.catalog import UnknownProviderError
from legion_nb.providers.contract import OperationFailedError, ProviderCredentials
from legion_nb.providers.hetzner import HetznerAdapter
from legion_nb.providers.http import OutcomeUnknownError
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import Operation, ServerSpec

if TYPE_CHECKING:
    from conftest import AdapterFactory

BASE = "http://127.0.0.1:9/v1"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class SleepLog:
    """An injected sleep: records each delay, then yields once so other tasks run."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def policy(
    sleep: SleepLog, *, attempts: int = 4, timeout: float | None = 5.0, clock: float = 1000.0
) -> BrokerPolicy:
    return BrokerPolicy(
        poll=PollPolicy(interval=0.5, backoff=2.0, max_interval=4.0, timeout=timeout),
        retry=RetryPolicy(
            attempts=attempts, base_delay=1.0, max_delay=8.0, jitter=0.0, max_rate_limit_wait=60.0
        ),
        sleep=sleep,
        clock=lambda: clock,
    )


class Provider:
    """A scripted Hetzner API: an async handler plus a log of the requests it saw."""

    def __init__(self, handler: Handler, name: str = "hetzner") -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._serve))
        adapter_cls = HetznerAdapter if name == "hetzner" else _renamed(name)
        self.adapter = adapter_cls(self.client, ProviderCredentials("hetzner", BASE, {"token": "t"}))

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.handler(request)

    def count(self, method: str, path_end: str = "") -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.endswith(path_end))


def _renamed(name: str) -> type[HetznerAdapter]:
    """A second, independent Hetzner project under another provider name (a real adapter)."""

    class Renamed(HetznerAdapter):
        @property
        def name(self) -> str:
            return name

    return Renamed


def servers_page(*_: Any) -> httpx.Response:
    return httpx.Response(200, json={"servers": [server_json(1, "a")], "meta": pagination(1, 1, 1)})


async def test_calls_to_one_provider_run_one_at_a_time_and_status_shows_the_queue() -> None:
    release = asyncio.Event()
    active = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1
        return servers_page()

    provider = Provider(handler)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(provider.adapter)
        tasks = [
            asyncio.create_task(broker.read("hetzner", f"list {i}", lambda a: a.list_servers()))
            for i in range(3)
        ]
        while not provider.requests:
            await asyncio.sleep(0)
        status = broker.status("hetzner")
        assert status.in_flight == "list 0"
        assert status.queue_depth == 2
        release.set()
        results = await asyncio.gather(*tasks)
    assert peak == 1
    assert all(len(r) == 1 for r in results)
    done = broker.status("hetzner")
    assert (done.queue_depth, done.in_flight, done.calls_total, done.last_error) == (0, None, 3, None)


async def test_different_providers_do_not_wait_for_each_other() -> None:
    both_started = asyncio.Event()
    started: set[str] = set()

    def handler_for(name: str) -> Handler:
        async def handler(request: httpx.Request) -> httpx.Response:
            started.add(name)
            if len(started) == 2:
                both_started.set()
            await both_started.wait()  # deadlocks if the lanes were one
            return servers_page()

        return handler

    first, second = Provider(handler_for("hetzner")), Provider(handler_for("hetzner-b"), name="hetzner-b")
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(first.adapter)
        broker.register(second.adapter)
        await asyncio.wait_for(
            asyncio.gather(
                broker.read("hetzner", "list", lambda a: a.list_servers()),
                broker.read("hetzner-b", "list", lambda a: a.list_servers()),
            ),
            timeout=10,
        )
    assert started == {"hetzner", "hetzner-b"}


async def test_429_holds_the_lane_for_retry_after_and_then_retries_even_a_mutation() -> None:
    answers = iter(
        [
            error(429, "rate_limit_exceeded", "slow down", **{"Retry-After": "3"}),
            error(429, "rate_limit_exceeded", "slow down", **{"Retry-After": "5"}),
        ]
    )

    async def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers, None)
        if answer is not None:
            return answer
        return httpx.Response(
            201, json={"ssh_key": {"id": 4, "name": "k", "fingerprint": "f", "public_key": "p", "labels": {}}}
        )

    sleep = SleepLog()
    provider = Provider(handler)
    async with ProviderBroker(policy(sleep)) as broker:
        broker.register(provider.adapter)
        key = await broker.mutate("hetzner", "create key", lambda a: a.create_ssh_key("k", "p", {}))
    assert key.id == "4"
    assert provider.count("POST") == 3
    assert sleep.delays == [3.0, 5.0]


async def test_rate_limit_retries_are_bounded() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return error(429, "rate_limit_exceeded", "slow down")

    sleep = SleepLog()
    provider = Provider(handler)
    async with ProviderBroker(policy(sleep, attempts=3)) as broker:
        broker.register(provider.adapter)
        with pytest.raises(ProviderRateLimitedError):
            await broker.read("hetzner", "list", lambda a: a.list_servers())
        assert broker.status("hetzner").last_error is not None
    assert len(provider.requests) == 3
    assert sleep.delays == [1.0, 2.0]  # no hint: exponential backoff


async def test_temporary_errors_are_retried_for_reads_only() -> None:
    answers = iter([error(503, "unavailable", "try again"), error(502, "bad_gateway", "try again")])

    async def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or servers_page()

    sleep = SleepLog()
    provider = Provider(handler)
    async with ProviderBroker(policy(sleep)) as broker:
        broker.register(provider.adapter)
        assert len(await broker.read("hetzner", "list", lambda a: a.list_servers())) == 1
        assert sleep.delays == [1.0, 2.0]

        async def failing(request: httpx.Request) -> httpx.Response:
            return error(500, "server_error", "boom")

        provider.handler = failing
        with pytest.raises(OutcomeUnknownError):
            await broker.mutate("hetzner", "delete", lambda a: a.delete_server("1"))
    assert provider.count("DELETE") == 1  # a mutation whose outcome is unknown is never resent here


async def test_a_mutation_that_never_left_is_resent() -> None:
    refused = [True]

    async def handler(request: httpx.Request) -> httpx.Response:
        if refused.pop() if refused else False:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"action": action_json(3, "delete_server")})

    provider = Provider(handler)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(provider.adapter)
        op = await broker.mutate("hetzner", "delete", lambda a: a.delete_server("1"))
    assert op is not None and op.kind == "delete_server"
    assert provider.count("DELETE") == 2


async def test_terminal_errors_are_not_retried() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return error(401, "unauthorized", "bad token")

    provider = Provider(handler)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(provider.adapter)
        with pytest.raises(ProviderAuthError):
            await broker.read("hetzner", "list", lambda a: a.list_servers())
    assert len(provider.requests) == 1


async def test_a_spent_budget_waits_for_one_token() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        response = servers_page()
        response.headers.update(
            {"RateLimit-Limit": "3600", "RateLimit-Remaining": "0", "RateLimit-Reset": "4600"}
        )
        return response

    sleep = SleepLog()
    provider = Provider(handler)
    async with ProviderBroker(policy(sleep, clock=1000.0)) as broker:
        broker.register(provider.adapter)
        await broker.read("hetzner", "first", lambda a: a.list_servers())
        assert sleep.delays == []
        await broker.read("hetzner", "second", lambda a: a.list_servers())
        assert broker.status("hetzner").remaining_budget == 0
    assert sleep.delays == [pytest.approx(3600 / 3600)]


async def test_waiters_share_one_poll_per_tick() -> None:
    polls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal polls
        polls += 1
        status = "running" if polls < 3 else "success"
        ids = [int(i) for i in request.url.params.get_list("id")]
        return httpx.Response(
            200,
            json={
                "actions": [action_json(i, "create_server", status) for i in ids],
                "meta": pagination(1, 1, len(ids)),
            },
        )

    sleep = SleepLog()
    provider = Provider(handler)
    async with ProviderBroker(policy(sleep)) as broker:
        broker.register(provider.adapter)
        waits = [
            broker.wait(
                [
                    Operation("hetzner", str(2 * i), "create_server", str(i)),
                    Operation("hetzner", str(2 * i + 1), "start_server", str(i)),
                ]
            )
            for i in range(1, 11)
        ]
        results = await asyncio.gather(*waits)
    assert len(provider.requests) == 3  # 20 operations of 10 waiters: three polls in all
    assert len(provider.requests[0].url.params.get_list("id")) == 20
    assert all(state.status == "success" for states in results for state in states)
    assert sleep.delays == [0.5, 1.0, 2.0]  # the interval backs off while nothing finishes
    assert broker.status("hetzner").waiting_operations == 0


async def test_waiting_does_not_hold_the_lane() -> None:
    finished = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/actions"):
            status = "success" if finished.is_set() else "running"
            return httpx.Response(
                200, json={"actions": [action_json(7, "create_server", status)], "meta": pagination(1, 1, 1)}
            )
        return servers_page()

    provider = Provider(handler)
    async with ProviderBroker(policy(SleepLog(), timeout=None)) as broker:
        broker.register(provider.adapter)
        waiting = asyncio.create_task(broker.wait([Operation("hetzner", "7", "create_server", "1")]))
        while provider.count("GET", "/actions") < 2:
            await asyncio.sleep(0)
        assert broker.status("hetzner").waiting_operations == 1
        assert len(await broker.read("hetzner", "list", lambda a: a.list_servers())) == 1
        assert not waiting.done()
        finished.set()
        (state,) = await waiting
    assert state.status == "success"


async def test_a_failed_operation_raises_with_its_reason() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "actions": [action_json(9, "create_server", "error", resource=42)],
                "meta": pagination(1, 1, 1),
            },
        )

    provider = Provider(handler)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(provider.adapter)
        op = Operation("hetzner", "9", "create_server", "42")
        with pytest.raises(
            OperationFailedError,
            match=r"^hetzner: create_server on server 42 failed: Action failed \[action_failed\]$",
        ):
            await broker.wait([op])
        (state,) = await broker.wait([op], raise_on_error=False)
    assert state.status == "error"


async def test_a_poll_that_fails_fails_its_waiters_and_a_timeout_is_one_line() -> None:
    async def refused(request: httpx.Request) -> httpx.Response:
        return error(401, "unauthorized", "token revoked")

    provider = Provider(refused)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(provider.adapter)
        with pytest.raises(ProviderAuthError, match="token revoked"):
            await broker.wait([Operation("hetzner", "1", "create_server", "1")])

    async def forever(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.001)
        return httpx.Response(
            200, json={"actions": [action_json(1, "create_server")], "meta": pagination(1, 1, 1)}
        )

    provider = Provider(forever)
    slow = BrokerPolicy(poll=PollPolicy(interval=0.001, backoff=1.0, max_interval=0.001, timeout=0.05))
    async with ProviderBroker(slow) as broker:
        broker.register(provider.adapter)
        with pytest.raises(
            ProviderUnavailableError, match=r"^hetzner: create_server still running after 0.05 s"
        ):
            await broker.wait([Operation("hetzner", "1", "create_server", "1")])
        assert broker.status("hetzner").waiting_operations == 0


async def test_unknown_providers_and_a_closed_broker_fail_clearly() -> None:
    broker = ProviderBroker(policy(SleepLog()))
    with pytest.raises(
        UnknownProviderError, match=r"provider 'ovh' has no credentials loaded \(loaded: none\)"
    ):
        broker.status("ovh")
    provider = Provider(lambda r: asyncio.sleep(0, servers_page()))
    broker.register(provider.adapter)
    await broker.aclose()
    with pytest.raises(ProviderUnavailableError, match="broker is closed"):
        await broker.read("hetzner", "list", lambda a: a.list_servers())


async def test_batched_polling_against_the_emulator(
    cloud: SandboxCloud, adapter_for: AdapterFactory, broker: ProviderBroker
) -> None:
    """Ten servers created at once cost ten POSTs and a handful of shared polls, counted by the sandbox."""
    async with adapter_for("hetzner") as adapter:
        broker.register(adapter)

        async def create(i: int) -> None:
            labels = OwnershipLabels.new().as_labels()
            spec = ServerSpec(f"node-{i}", "cx22", "fsn1", "debian-13", labels=labels)
            pending = await broker.mutate("hetzner", f"create node-{i}", lambda a: a.create_server(spec))
            await broker.wait(pending.operations)

        await asyncio.gather(*(create(i) for i in range(10)))
        servers = await broker.read("hetzner", "list", lambda a: a.list_servers())
    counts = cloud.world.counters.snapshot()["hetzner"]
    assert counts["POST /v1/servers"] == 10
    assert sorted(s.status for s in servers) == ["running"] * 10
    # Every poll tick served all waiters: far fewer polls than the 20 operations.
    assert counts["GET /v1/actions"] < 20


async def test_a_paged_read_retries_only_the_failed_page() -> None:
    failed = False

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal failed
        page = int(request.url.params["page"])
        if page == 2 and not failed:
            failed = True
            return error(502, "bad_gateway", "upstream hiccup")
        servers = [server_json(page * 100 + i, f"s{page}-{i}") for i in range(50 if page < 3 else 3)]
        return httpx.Response(200, json={"servers": servers, "meta": pagination(page, 3, 103)})

    provider = Provider(handler)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(provider.adapter)
        servers = await broker.read("hetzner", "list", lambda a: a.list_servers())
    assert len(servers) == 103
    assert [r.url.params["page"] for r in provider.requests] == ["1", "2", "2", "3"]


async def test_outside_a_broker_a_read_is_tried_once() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return error(503, "unavailable", "down")

    provider = Provider(handler)
    with pytest.raises(ProviderUnavailableError):
        await provider.adapter.list_servers()
    assert len(provider.requests) == 1


async def test_new_credentials_clear_the_last_error_of_the_old_ones() -> None:
    """A lane's last error describes the adapter that failed; after ``credentials set`` it is gone."""

    async def refuse(_: httpx.Request) -> httpx.Response:
        return error(401, "unauthorized", "unable to authenticate")

    async def answer(_: httpx.Request) -> httpx.Response:
        return servers_page()

    failing = Provider(refuse)
    async with ProviderBroker(policy(SleepLog())) as broker:
        broker.register(failing.adapter)
        with pytest.raises(ProviderAuthError):
            await broker.read("hetzner", "list", lambda a: a.list_servers())
        assert broker.status("hetzner").last_error
        broker.register(Provider(answer).adapter)
        assert broker.status("hetzner").last_error is None


async def test_an_unregistered_provider_is_refused_and_its_waiters_fail_at_once() -> None:
    """Removed credentials: a waiting operation fails now (not at the poll timeout), the poller
    ends, and the next call is refused as for a provider never registered."""

    async def running(request: httpx.Request) -> httpx.Response:
        ids = [int(i) for i in request.url.params.get_list("id")]
        actions = [action_json(i, "create_server", "running") for i in ids]
        return httpx.Response(200, json={"actions": actions, "meta": pagination(1, 1, len(ids))})

    provider = Provider(running)
    async with ProviderBroker(policy(SleepLog(), timeout=None)) as broker:
        broker.register(provider.adapter)
        broker.register(Provider(running, name="other").adapter)
        waiting = asyncio.create_task(broker.wait([Operation("hetzner", "7", "create_server", "1")]))
        while provider.count("GET", "/actions") < 1:
            await asyncio.sleep(0)
        broker.unregister("hetzner")
        removed = r"^hetzner: credentials removed; run `legion credentials set hetzner`$"
        with pytest.raises(ProviderAuthError, match=removed):
            await waiting
        assert broker.providers() == ("other",)
        with pytest.raises(UnknownProviderError, match=r"provider 'hetzner' has no credentials loaded"):
            await broker.read("hetzner", "list", lambda a: a.list_servers())
        broker.unregister("hetzner")  # already gone: nothing to do
        polls = provider.count("GET", "/actions")
        for _ in range(5):
            await asyncio.sleep(0)
        assert provider.count("GET", "/actions") == polls  # its poller ended
