"""The shared sandbox core: loopback-only addresses, deterministic faults, drop-after-commit."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from legion_nb.emulators.faults import FAULT_KINDS, FaultPlan, fault_middleware
from legion_nb.emulators.httpkit import ServedApp, ensure_loopback, serve_app
from legion_nb.emulators.world import AddressPool, SandboxWorld, Timing

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=50)), max_size=300))
def test_address_pool_stays_in_loopback_under_churn(ops: list[tuple[bool, int]]) -> None:
    pool = AddressPool("127.20.0.0/22")
    held: list[str] = []
    for allocate, index in ops:
        if allocate or not held:
            ip = pool.allocate()
            address = ipaddress.ip_address(ip)
            assert address in LOOPBACK
            assert ip != "127.0.0.1"
            assert ip.split(".")[-1] not in ("0", "255")
            assert ip not in held, "an address in use was handed out twice"
            held.append(ip)
        else:
            pool.release(held.pop(index % len(held)))
    assert pool.in_use() == frozenset(held)


def test_released_addresses_are_reused_and_exhaustion_is_an_error() -> None:
    pool = AddressPool("127.30.0.0/30")  # only .2 is handed out (.1 is skipped, .0/.3 never)
    first = pool.allocate()
    assert first == "127.30.0.2"
    pool.release(first)
    pool.release("127.30.0.2")  # a second release is ignored
    assert pool.allocate() == first
    with pytest.raises(RuntimeError, match="exhausted"):
        pool.allocate()


def test_address_pool_refuses_non_loopback_networks() -> None:
    with pytest.raises(ValueError, match=r"outside 127\.0\.0\.0/8"):
        AddressPool("10.0.0.0/24")


def test_pool_around_127_0_0_1_never_hands_it_out() -> None:
    pool = AddressPool("127.0.0.0/29")
    handed = {pool.allocate() for _ in range(5)}
    assert "127.0.0.1" not in handed
    assert all(ipaddress.ip_address(ip) in LOOPBACK for ip in handed)


def test_fault_plan_is_deterministic_per_seed_and_provider() -> None:
    def draws(seed: int, provider: str) -> list[tuple[str, int] | None]:
        plan = FaultPlan(rate=0.3, seed=seed)
        return [(f.kind, f.status) if f else None for f in (plan.decide(provider) for _ in range(200))]

    assert draws(11, "hetzner") == draws(11, "hetzner")
    assert draws(11, "hetzner") != draws(12, "hetzner")
    assert draws(11, "hetzner") != draws(11, "ovh")
    faults = [d for d in draws(11, "hetzner") if d is not None]
    assert 30 <= len(faults) <= 90  # about 30 % of 200
    assert {kind for kind, _ in faults} == set(FAULT_KINDS)


def test_fault_plan_interleaving_does_not_change_a_providers_sequence() -> None:
    alone = FaultPlan(rate=0.5, seed=3)
    mixed = FaultPlan(rate=0.5, seed=3)
    solo = [alone.decide("hetzner") for _ in range(50)]
    interleaved = []
    for _ in range(50):
        mixed.decide("scaleway")
        interleaved.append(mixed.decide("hetzner"))
    assert solo == interleaved


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_fault_rate_outside_unit_interval_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        FaultPlan(rate=rate)


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultPlan(rate=0.1, weights={"meteor": 1.0})  # type: ignore[dict-item]


def test_ensure_loopback() -> None:
    assert ensure_loopback("127.0.0.1") == "127.0.0.1"
    assert ensure_loopback("127.5.6.7") == "127.5.6.7"
    assert ensure_loopback("::1") == "::1"
    for bad in ("0.0.0.0", "192.168.1.1", "localhost", "example.com"):
        with pytest.raises(ValueError, match="127"):
            ensure_loopback(bad)


async def _serve_counter(
    world: SandboxWorld, exempt_path: str | None = None
) -> tuple[list[int], str, ServedApp]:
    committed: list[int] = []

    async def mutate(request: web.Request) -> web.Response:
        committed.append(1)
        return web.json_response({"ok": True}, status=201)

    async def probe(request: web.Request) -> web.Response:
        return web.json_response({"time": 1})

    def body(status: int, kind: str) -> web.Response:
        return web.json_response({"error": kind}, status=status)

    exempt = (lambda r: r.path == exempt_path) if exempt_path else None
    app = web.Application(middlewares=[fault_middleware("test", world, body, exempt=exempt)])
    app.router.add_post("/things", mutate)
    app.router.add_get("/time", probe)
    served = await serve_app(app)
    return committed, served.base_url(), served


async def test_drop_after_commit_runs_the_handler_then_drops_the_connection() -> None:
    world = SandboxWorld(1, faults=FaultPlan(rate=1.0, seed=1, weights={"drop_after_commit": 1.0}))
    committed, url, served = await _serve_counter(world)
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(3):
                with pytest.raises(httpx.TransportError):
                    await client.post(f"{url}/things")
        assert len(committed) == 3, "the handler must run (state committed) before the drop"
        assert world.counters.snapshot() == {"test": {"POST /things": 3}}
    finally:
        await served.aclose()
        await world.aclose()


async def test_rate_limited_fault_answers_429_with_headers_and_commits_nothing() -> None:
    world = SandboxWorld(1, faults=FaultPlan(rate=1.0, seed=1, weights={"rate_limited": 1.0}))
    committed, url, served = await _serve_counter(world, exempt_path="/time")
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{url}/things")
            assert response.status_code == 429
            assert response.json() == {"error": "rate_limited"}
            for header in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
                assert header in response.headers
            assert (await client.get(f"{url}/time")).status_code == 200, "exempt probes are never faulted"
            assert (await client.get(f"{url}/nowhere")).status_code == 404, "unknown routes are never faulted"
        assert committed == []
    finally:
        await served.aclose()
        await world.aclose()


async def test_server_error_faults_use_5xx_statuses() -> None:
    world = SandboxWorld(2, faults=FaultPlan(rate=1.0, seed=2, weights={"server_error": 1.0}))
    committed, url, served = await _serve_counter(world)
    try:
        async with httpx.AsyncClient() as client:
            statuses = {(await client.post(f"{url}/things")).status_code for _ in range(20)}
        assert statuses <= {500, 502, 503} and statuses
        assert committed == []
    finally:
        await served.aclose()
        await world.aclose()


async def test_world_owns_and_cancels_background_tasks() -> None:
    world = SandboxWorld(0, timing=Timing(action_seconds=60))
    finished: list[bool] = []

    async def long_job() -> None:
        await world.sleep(60)
        finished.append(True)

    world.spawn(long_job())
    await world.aclose()
    assert finished == []
    world.spawn(long_job())  # after close: refused quietly, the coroutine is closed, nothing runs
    assert finished == []


def test_secrets_are_reproducible_per_seed() -> None:
    assert SandboxWorld(4).new_secret() == SandboxWorld(4).new_secret()
    assert SandboxWorld(4).new_secret() != SandboxWorld(5).new_secret()
    assert len(SandboxWorld(4).new_secret(48)) >= 64


def test_reserved_addresses_are_never_handed_out() -> None:
    pool = AddressPool("127.40.0.0/29")
    pool.reserve("127.40.0.3")
    handed = [pool.allocate() for _ in range(4)]
    assert "127.40.0.3" not in handed
    assert handed == ["127.40.0.2", "127.40.0.4", "127.40.0.5", "127.40.0.6"]


def test_mutation_counter_counts_only_state_changing_methods() -> None:
    world = SandboxWorld(0)
    for method in ("GET", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        world.counters.record("hetzner", method, "/v1/servers")
    world.counters.record("ovh", "POST", "/1.0/x")
    assert world.counters.mutations("hetzner") == 4
    assert world.counters.mutations() == 5
    assert world.counters.total("hetzner") == 7


async def test_sandbox_cloud_serves_three_providers_and_can_suspend_one() -> None:
    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415 - the three emulators are heavy

    async with SandboxCloud(SandboxWorld(5)) as cloud, httpx.AsyncClient() as client:
        endpoints = cloud.endpoints()
        assert list(endpoints) == ["hetzner", "scaleway", "ovh"]
        hetzner = endpoints["hetzner"]
        auth = {"Authorization": f"Bearer {hetzner['token']}"}
        assert (await client.get(f"{hetzner['url']}/locations", headers=auth)).status_code == 200

        await cloud.suspend("hetzner")
        assert cloud.endpoints()["hetzner"]["url"] == hetzner["url"], "a suspended provider keeps its URL"
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{hetzner['url']}/locations", headers=auth)
        await cloud.resume("hetzner")
        assert (await client.get(f"{hetzner['url']}/locations", headers=auth)).status_code == 200
        assert (await client.get(f"{endpoints['ovh']['url']}/auth/time")).status_code == 200
    assert cloud.world.counters.total("hetzner") == 2


def test_sandbox_cloud_refuses_non_loopback_hosts_and_unknown_providers() -> None:
    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415

    with pytest.raises(ValueError, match="outside 127"):
        SandboxCloud(host="192.0.2.1")
    with pytest.raises(ValueError, match="unknown sandbox provider"):
        SandboxCloud(ports={"aws": 1})


def test_sandbox_cloud_reserves_its_host_in_the_pool() -> None:
    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415

    cloud = SandboxCloud(SandboxWorld(0), host="127.20.0.2")
    assert cloud.world.addresses.allocate() != "127.20.0.2"
