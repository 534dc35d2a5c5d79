"""The OVHcloud adapter: signing, clock delta, N+1 reads, error mapping (``httpx.MockTransport``), and
one pass against the real emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from legion_nb.emulators.httpkit import serve_app
from legion_nb.emulators.ovh import create_app, state_of
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.errors import (
    CapabilityMissingError,
    ProviderAuthError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.contract import (
    Capability,
    ProviderCredentials,
    UniquenessConflictError,
)
from legion_nb.providers.http import OutcomeUnknownError
from legion_nb.providers.ovh import DESCRIPTOR, OvhAdapter
from legion_nb.providers.ovh.client import READ_CONCURRENCY
from legion_nb.providers.ovh.signing import Signer, signature
from legion_nb.providers.ownership import (
    OwnershipLabels,
    decode_owned_name,
    encode_owned_name,
)
from legion_nb.providers.records import (
    BillingPeriod,
    CatalogImage,
    DnsRecord,
    Operation,
    OperationState,
    ServerSpec,
    server_state_operation,
)
from legion_nb.providers.resilience import Resilience, SettlePolicy

ENDPOINT = "https://eu.api.ovh.com/1.0"
AS = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
CK = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
AK = "7kbG7Bk7S9Nt7ZSV"
SERVICE = "0123456789abcdef0123456789abcdef"
SERVER_TIME = 1_800_000_000

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def credentials(endpoint: str = ENDPOINT, **overrides: str) -> ProviderCredentials:
    secrets = {"application_key": AK, "application_secret": AS, "consumer_key": CK} | overrides
    return ProviderCredentials("ovh", endpoint, secrets=secrets, options={"service_name": SERVICE})


def reply(body: Any, status: int = 200, query_id: str = "EU.ext-1.abc.1.q") -> httpx.Response:
    return httpx.Response(status, json=body, headers={"X-OVH-QUERYID": query_id})


class FakeOvh:
    """A MockTransport backend that checks every signature and records what it saw."""

    def __init__(self, routes: dict[tuple[str, str], Any], *, clock_skew: int = 0) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str]] = []
        self.time_calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.clock_skew = clock_skew

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/1.0")
        self.seen.append((request.method, path))
        assert request.headers["X-Ovh-Application"] == AK
        if path == "/auth/time":
            self.time_calls += 1
            assert "X-Ovh-Signature" not in request.headers
            return reply(SERVER_TIME)
        stamp = request.headers["X-Ovh-Timestamp"]
        text = "+".join([AS, CK, request.method, str(request.url), request.content.decode(), stamp])
        assert request.headers["X-Ovh-Signature"] == "$1$" + hashlib.sha1(text.encode()).hexdigest()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let concurrent reads overlap, as on a real network
            if (request.method, path) not in self.routes:
                return reply({"class": "Client::NotFound", "message": f"no route {path}"}, 404)
            answer = self.routes[(request.method, path)]
            return answer(request) if callable(answer) else reply(answer)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def make_adapter() -> AsyncIterator[Callable[[FakeOvh], OvhAdapter]]:
    clients: list[httpx.AsyncClient] = []

    def build(fake: FakeOvh) -> OvhAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
        clients.append(client)
        # A local clock 100 s behind the server's.
        return OvhAdapter(client, credentials(), clock=lambda: SERVER_TIME - 100)

    yield build
    for client in clients:
        await client.aclose()


# ------------------------------------------------------------------------------------------ signing


def test_signature_test_vector() -> None:
    got = signature(AS, CK, "GET", "https://eu.api.ovh.com/1.0/auth", b"", 1457018875)
    assert got == "$1$e9556054b6309771395efa467c22e627407461ad"


async def test_signer_signs_exact_url_and_body_with_server_clock() -> None:
    times = 0

    async def server_time() -> int:
        nonlocal times
        times += 1
        return 5000

    signer = Signer(AK, AS, CK, server_time, clock=lambda: 4000.7)
    body = json.dumps({"name": "é x", "ttl": 60}, separators=(",", ":")).encode()
    request = httpx.Request("POST", f"{ENDPOINT}/domain/zone/example.org/record?a=1&b=%20", content=body)
    await signer(request)
    assert request.headers["X-Ovh-Timestamp"] == "5000"
    assert signer.clock_delta == 1000
    expected = hashlib.sha1(
        f"{AS}+{CK}+POST+{ENDPOINT}/domain/zone/example.org/record?a=1&b=%20+".encode() + body + b"+5000"
    ).hexdigest()
    assert request.headers["X-Ovh-Signature"] == "$1$" + expected
    await signer(httpx.Request("GET", f"{ENDPOINT}/me"))
    assert times == 1
    assert AS not in repr(signer) and CK not in repr(signer)


async def test_clock_delta_is_measured_once_for_concurrent_first_calls(make_adapter: Any) -> None:
    fake = FakeOvh({("GET", "/cloud/project/" + SERVICE + "/sshkey"): []})
    adapter = make_adapter(fake)
    await asyncio.gather(*(adapter.list_ssh_keys() for _ in range(5)))
    assert fake.time_calls == 1
    assert adapter.signer.clock_delta == 100


async def test_refused_timestamp_makes_the_next_call_measure_the_clock_again(make_adapter: Any) -> None:
    refused = reply(
        {"errorCode": "QUERY_TIME_OUT", "httpCode": "400 Bad Request", "message": "Query out of time"}, 400
    )
    answers = iter([refused, reply([])])
    fake = FakeOvh({("GET", "/domain/zone"): lambda _: next(answers)})
    adapter = make_adapter(fake)
    with pytest.raises(ProviderAuthError, match="Query out of time") as caught:
        await adapter.list_zones()
    assert caught.value.provider_code == "QUERY_TIME_OUT"
    assert await adapter.list_zones() == []
    assert fake.time_calls == 2


# ----------------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (404, {"class": "Client::NotFound", "message": "gone"}, ProviderNotFoundError, "Client::NotFound"),
        (
            400,
            {"class": "Client::BadRequest", "message": "bad"},
            ProviderInvalidInputError,
            "Client::BadRequest",
        ),
        (
            400,
            {"errorCode": "INVALID_SIGNATURE", "httpCode": "400 Bad Request", "message": "Invalid signature"},
            ProviderAuthError,
            "INVALID_SIGNATURE",
        ),
        (
            403,
            {
                "errorCode": "INVALID_CREDENTIAL",
                "httpCode": "403 Forbidden",
                "message": "This credential does not exist",
            },
            ProviderAuthError,
            "INVALID_CREDENTIAL",
        ),
        (
            409,
            {"class": "Client::Conflict::SshKeyAlreadyExists", "message": "exists"},
            UniquenessConflictError,
            "Client::Conflict::SshKeyAlreadyExists",
        ),
        (
            429,
            {"class": "Client::TooManyRequests", "message": "slow"},
            ProviderRateLimitedError,
            "Client::TooManyRequests",
        ),
        (
            503,
            {"class": "Server::ServiceUnavailable", "message": "down"},
            ProviderUnavailableError,
            "Server::ServiceUnavailable",
        ),
    ],
)
async def test_errors_keep_class_message_and_query_id(
    make_adapter: Any, status: int, body: dict[str, str], error: type[Exception], code: str
) -> None:
    fake = FakeOvh({("GET", "/domain/zone"): lambda _: reply(body, status, "EU.ext-3.q42")})
    with pytest.raises(error) as caught:
        await make_adapter(fake).list_zones()
    exc = caught.value
    assert exc.provider_code == code  # type: ignore[attr-defined]
    assert exc.request_id == "EU.ext-3.q42"  # type: ignore[attr-defined]
    assert "\n" not in str(exc) and "EU.ext-3.q42" in str(exc)
    assert body["message"] in str(exc)


async def test_a_failed_mutation_is_outcome_unknown_and_never_retried(make_adapter: Any) -> None:
    path = f"/cloud/project/{SERVICE}/instance/i-1"
    fake = FakeOvh(
        {("DELETE", path): lambda _: reply({"class": "Server::InternalServerError", "message": "x"}, 500)}
    )
    with pytest.raises(OutcomeUnknownError):
        await make_adapter(fake).delete_server("i-1")
    assert fake.seen.count(("DELETE", path)) == 1


async def test_an_unreadable_error_body_still_gives_one_line(make_adapter: Any) -> None:
    fake = FakeOvh({("GET", "/domain/zone"): lambda _: httpx.Response(502, text="<html>bad gateway</html>")})
    with pytest.raises(ProviderUnavailableError, match="HTTP 502"):
        await make_adapter(fake).list_zones()


async def test_firewall_and_floating_ip_calls_are_missing_capabilities_without_io(make_adapter: Any) -> None:
    fake = FakeOvh({})
    adapter = make_adapter(fake)
    calls = [
        adapter.list_firewalls(),
        adapter.create_firewall("fw", [], {}),
        adapter.set_firewall_rules("1", []),
        adapter.apply_firewall("1", ["s"]),
        adapter.delete_firewall("1"),
        adapter.list_public_ips(),
        adapter.assign_floating_ip("1", None),
    ]
    for call in calls:
        with pytest.raises(CapabilityMissingError, match=r"on the node|own address"):
            await call
    assert fake.seen == []
    assert Capability.FIREWALL not in DESCRIPTOR.capabilities


# ----------------------------------------------------------------------------------- N+1 and DNS


def capture(into: list[dict[str, Any]], answer: Any) -> Callable[[httpx.Request], httpx.Response]:
    """A route that keeps each request's JSON body and answers ``answer``."""

    def route(request: httpx.Request) -> httpx.Response:
        into.append(json.loads(request.content))
        return reply(answer)

    return route


def _record(rid: int, sub: str, target: str, kind: str = "A", ttl: int = 60) -> dict[str, Any]:
    return {
        "id": rid,
        "zone": "example.org",
        "fieldType": kind,
        "subDomain": sub,
        "target": target,
        "ttl": ttl,
    }


async def test_record_list_reads_each_id_with_bounded_concurrency(make_adapter: Any) -> None:
    count = 3 * READ_CONCURRENCY
    routes: dict[tuple[str, str], Any] = {
        ("GET", "/domain/zone/example.org/record"): list(range(1, count + 1))
    }
    for rid in range(1, count + 1):
        routes[("GET", f"/domain/zone/example.org/record/{rid}")] = _record(
            rid, f"h{rid % 3}", f"127.0.0.{rid}"
        )
    routes[("GET", "/domain/zone/example.org/record/7")] = lambda _: reply(
        {"class": "Client::NotFound", "message": "x"}, 404
    )
    fake = FakeOvh(routes)
    records = await make_adapter(fake).list_records("example.org")
    reads = [p for m, p in fake.seen if m == "GET" and p.startswith("/domain/zone/example.org/record/")]
    assert len(reads) == count
    assert 1 < fake.max_in_flight <= READ_CONCURRENCY
    assert [r.name for r in records] == ["h0", "h1", "h2"]
    assert sum(len(r.values) for r in records) == count - 1  # record 7 vanished between list and read


async def test_records_are_grouped_into_rrsets_with_the_smallest_ttl(make_adapter: Any) -> None:
    rows = [
        _record(1, "www", "127.0.0.3", ttl=300),
        _record(2, "www", "127.0.0.2", ttl=60),
        _record(3, "", "v=spf1 -all", kind="TXT", ttl=0),
        _record(4, "", "ns1.example.net", kind="DNAME"),
    ]
    routes: dict[tuple[str, str], Any] = {("GET", "/domain/zone/example.org/record"): [1, 2, 3, 4]}
    routes.update({("GET", f"/domain/zone/example.org/record/{r['id']}"): r for r in rows})
    assert await make_adapter(FakeOvh(routes)).list_records("example.org") == [
        DnsRecord(name="@", type="TXT", ttl=None, values=("v=spf1 -all",)),
        DnsRecord(name="www", type="A", ttl=60, values=("127.0.0.2", "127.0.0.3")),
    ]


async def test_set_records_changes_only_the_difference_then_refreshes_once(make_adapter: Any) -> None:
    path = "/domain/zone/example.org/record"
    created: list[dict[str, Any]] = []
    routes: dict[tuple[str, str], Any] = {
        ("GET", path): [1, 2],
        ("GET", f"{path}/1"): _record(1, "www", "127.0.0.1"),
        ("GET", f"{path}/2"): _record(2, "www", "127.0.0.2"),
        ("DELETE", f"{path}/1"): None,
        ("POST", path): capture(created, _record(3, "www", "x")),
        ("POST", "/domain/zone/example.org/refresh"): None,
    }
    fake = FakeOvh(routes)
    adapter = make_adapter(fake)
    await adapter.set_records("example.org", "www", "A", 60, ["127.0.0.2", "127.0.0.3"])
    writes = [(m, p) for m, p in fake.seen if m != "GET"]
    assert writes == [("DELETE", f"{path}/1"), ("POST", path), ("POST", "/domain/zone/example.org/refresh")]
    assert created == [{"fieldType": "A", "subDomain": "www", "target": "127.0.0.3", "ttl": 60}]

    fake.seen.clear()
    routes[("GET", path)] = [2]
    await adapter.set_records("example.org", "www", "A", 60, ["127.0.0.2"])
    assert [m for m, _ in fake.seen] == ["GET", "GET"]  # nothing to change: no write, no refresh


def _usage(usage_id: str, start: str, end: str, instance: str, price: float) -> dict[str, Any]:
    detail = {"instanceId": instance, "quantity": {"unit": "Hour", "value": 3}, "totalPrice": price}
    hourly = [{"reference": "b2-7", "region": "GRA11", "totalPrice": price, "details": [detail]}]
    return {
        "id": usage_id,
        "period": {"from": f"{start}T00:00:00+00:00", "to": f"{end}T00:00:00+00:00"},
        "hourlyUsage": {"instance": hourly},
        "monthlyUsage": {"instance": []},
    }


async def test_costs_per_instance_come_from_the_usage_periods_that_overlap(make_adapter: Any) -> None:
    usage = f"/cloud/project/{SERVICE}/usage"
    history = [
        {"id": "u-aug", "period": {"from": "2026-08-01T00:00:00+00:00", "to": "2026-09-01T00:00:00+00:00"}},
        {"id": "u-sep", "period": {"from": "2026-09-01T00:00:00+00:00", "to": "2026-10-01T00:00:00+00:00"}},
        {"id": "u-oct", "period": {"from": "2026-10-01T00:00:00+00:00", "to": "2026-11-01T00:00:00+00:00"}},
    ]
    fake = FakeOvh(
        {
            ("GET", "/me"): {"currency": {"code": "EUR", "symbol": "EURO"}},
            ("GET", f"{usage}/history"): history,
            ("GET", f"{usage}/history/u-sep"): _usage("u-sep", "2026-09-01", "2026-10-01", "vm-1", 0.2),
            ("GET", f"{usage}/history/u-oct"): _usage("u-oct", "2026-10-01", "2026-11-01", "vm-2", 0.3),
            ("GET", f"{usage}/current"): _usage("u-nov", "2026-11-01", "2026-11-27", "vm-2", 0.1),
        }
    )
    entries = await make_adapter(fake).list_billing(BillingPeriod(date(2026, 9, 15), date(2026, 10, 20)))
    assert [(e.id, e.resource_id, e.amount, e.currency, e.date) for e in entries] == [
        ("u-sep/vm-1/hourly", "vm-1", Decimal("0.2"), "EUR", date(2026, 10, 1)),
        ("u-oct/vm-2/hourly", "vm-2", Decimal("0.3"), "EUR", date(2026, 11, 1)),
    ]
    assert entries[0].description == "b2-7 hourly 3 h in GRA11"
    assert ("GET", f"{usage}/history/u-aug") not in fake.seen  # outside the period: never read


# ---------------------------------------------------------------------------------- names and ops


def test_ownership_round_trips_through_the_instance_name() -> None:
    owner = OwnershipLabels.new()
    encoded = encode_owned_name("node-1", owner.as_labels())
    assert encoded == f"node-1--{owner.legion_id}"
    assert decode_owned_name(encoded) == ("node-1", owner.as_labels())
    assert decode_owned_name("web--blue") == ("web--blue", {})
    assert decode_owned_name("plain") == ("plain", {})
    assert encode_owned_name("plain", {"team": "x"}) == "plain"


def test_awaited_state_operations_are_one_per_server_and_state() -> None:
    running = server_state_operation("ovh", "i-1", "server_running")
    assert running == server_state_operation("ovh", "i-1", "server_running")
    assert (running.kind, running.resource_id, running.resource_type) == ("server_running", "i-1", "server")
    assert running.id != server_state_operation("ovh", "i-1", "server_off").id
    assert running.id != server_state_operation("ovh", "i-2", "server_running").id


async def test_create_resolves_names_per_region_and_polls_by_listing(make_adapter: Any) -> None:
    project = f"/cloud/project/{SERVICE}"
    flavors = [
        {"id": "f-gra", "name": "b2-7", "region": "GRA11", "vcpus": 2, "ram": 7000, "disk": 50},
        {"id": "f-sbg", "name": "b2-7", "region": "SBG5", "vcpus": 2, "ram": 7000, "disk": 50},
    ]
    images = [
        {"id": "i-gra", "name": "Debian 12", "region": "GRA11"},
        {"id": "i-sbg", "name": "Debian 12", "region": "SBG5"},
    ]
    sent: list[dict[str, Any]] = []
    owner = OwnershipLabels.new()
    instance = {
        "id": "vm-1",
        "name": f"n1--{owner.legion_id}",
        "status": "BUILD",
        "region": "SBG5",
        "flavorId": "f-sbg",
        "imageId": "i-sbg",
        "ipAddresses": [],
    }
    statuses = iter(["BUILD", "ACTIVE"])
    fake = FakeOvh(
        {
            ("GET", f"{project}/flavor"): flavors,
            ("GET", f"{project}/image"): images,
            ("POST", f"{project}/instance"): capture(sent, instance),
            ("GET", f"{project}/instance"): lambda _: reply([instance | {"status": next(statuses)}]),
        }
    )
    adapter = make_adapter(fake)
    pending = await adapter.create_server(
        ServerSpec("n1", "b2-7", "SBG5", "Debian 12", ("key-1",), owner.as_labels(), user_data="#!/bin/sh")
    )
    assert sent == [
        {
            "name": f"n1--{owner.legion_id}",
            "flavorId": "f-sbg",
            "imageId": "i-sbg",
            "region": "SBG5",
            "monthlyBilling": False,
            "sshKeyId": "key-1",
            "userData": "#!/bin/sh",
        }
    ]
    assert (pending.server.name, pending.server.server_type, pending.server.image) == (
        "n1",
        "b2-7",
        "Debian 12",
    )
    assert pending.server.ownership == owner
    (op,) = pending.operations
    assert [s.status for s in await adapter.poll_operations([op])] == ["running"]
    assert [s.status for s in await adapter.poll_operations([op])] == ["success"]

    with pytest.raises(ProviderInvalidInputError, match="no flavor 'z9-99' in region GRA11"):
        await adapter.create_server(ServerSpec("n2", "z9-99", "GRA11", "Debian 12"))
    with pytest.raises(ProviderInvalidInputError, match="unknown region 'XX9'; choose one of GRA11, SBG5"):
        await adapter.create_server(ServerSpec("n3", "b2-7", "XX9", "Debian 12"))


async def test_an_unknown_flavor_rereads_the_catalog_once_not_every_poll(make_adapter: Any) -> None:
    project = f"/cloud/project/{SERVICE}"
    instance = {
        "id": "vm-9",
        "name": "legacy",
        "status": "ACTIVE",
        "region": "GRA11",
        "flavorId": "retired",
        "imageId": "private-image",
        "ipAddresses": [{"ip": "127.20.0.5", "type": "public", "version": 4}],
    }
    fake = FakeOvh(
        {
            ("GET", f"{project}/flavor"): [],
            ("GET", f"{project}/image"): [],
            ("GET", f"{project}/instance"): [instance],
        }
    )
    adapter = make_adapter(fake)
    for _ in range(3):
        (server,) = await adapter.list_servers()
    assert (server.server_type, server.image, server.ipv4, server.status) == (
        None,
        None,
        "127.20.0.5",
        "running",
    )
    assert (
        fake.seen.count(("GET", f"{project}/flavor")) == 2
    )  # the first load, then one re-read for "retired"


# ------------------------------------------------------------------------------ against the emulator


@pytest.fixture
async def sandbox_adapter() -> AsyncIterator[tuple[OvhAdapter, Any, SandboxWorld, ProviderCredentials]]:
    world = SandboxWorld(seed=3, timing=Timing(action_seconds=0.02, boot_seconds=0.05))
    emulator = create_app(world)
    served = await serve_app(emulator.app)
    creds = emulator.credentials
    provider_credentials = ProviderCredentials(
        "ovh",
        served.base_url(emulator.prefix),
        secrets={k: creds[k] for k in ("application_key", "application_secret", "consumer_key")},
        options={"service_name": creds["service_name"]},
    )
    async with httpx.AsyncClient() as client:
        yield OvhAdapter(client, provider_credentials), state_of(emulator), world, provider_credentials
    await world.aclose()
    await served.aclose()


async def _settle(adapter: OvhAdapter, ops: tuple[Operation, ...] | list[Operation]) -> list[OperationState]:
    for _ in range(500):
        states = await adapter.poll_operations(list(ops))
        if all(s.done for s in states):
            return states
        await asyncio.sleep(0.01)
    raise AssertionError("operations never settled")


async def test_adapter_against_the_emulator(sandbox_adapter: Any) -> None:
    adapter, state, world, _ = sandbox_adapter
    await adapter.verify_credentials()
    catalog = await adapter.fetch_catalog()
    assert catalog.server_type("d2-2").price_in("GRA11").hourly == Decimal("0.0099")
    assert catalog.image("Debian 13").available_in("UK1")
    assert catalog.location("UK1").country == "GB"

    key = await adapter.create_ssh_key("op", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== op", {})
    owner = OwnershipLabels.new()
    pending = await adapter.create_server(
        ServerSpec("node", "d2-2", "GRA11", "Debian 12", (key.id,), owner.as_labels())
    )
    assert [s.status for s in await _settle(adapter, pending.operations)] == ["success"]
    (found,) = await adapter.list_servers(owner.as_labels())
    assert found.status == "running" and found.ipv4 and found.ipv4.startswith("127.")
    assert [s.id for s in await adapter.find_servers_by_name("node")] == [found.id]

    await _settle(adapter, [await adapter.power_off(found.id)])
    assert (await adapter.get_server(found.id)).status == "off"
    await _settle(adapter, [await adapter.power_on(found.id)])
    await _settle(adapter, [await adapter.rebuild_server(found.id, "Debian 13")])
    assert (await adapter.get_server(found.id)).image == "Debian 13"

    await adapter.set_records("legion.test", "@", "A", None, [found.ipv4])
    assert [r.target for r in state.dns.published("legion.test") if r.field_type == "A"] == [found.ipv4]
    assert DnsRecord("@", "A", None, (found.ipv4,)) in await adapter.list_records("legion.test")
    await adapter.delete_records("legion.test", "@", "A")
    assert not [r for r in state.dns.published("legion.test") if r.field_type == "A"]
    with pytest.raises(ProviderInvalidInputError, match="zones come with a domain"):
        await adapter.create_zone("new.example", 300, {})

    entries = await adapter.list_billing(BillingPeriod(date(2026, 1, 1), date.today()))
    assert [(e.resource_id, e.amount) for e in entries] == [(found.id, Decimal("0.01"))]

    await _settle(adapter, [await adapter.delete_server(found.id)])
    assert await adapter.list_servers() == []
    with pytest.raises(ProviderNotFoundError):
        await adapter.get_server(found.id)
    await adapter.delete_ssh_key(key.id)
    assert world.counters.snapshot()["ovh"]["GET /1.0/auth/time"] == 1


async def test_the_emulator_sells_what_the_embedded_snapshot_says(sandbox_adapter: Any) -> None:
    adapter = sandbox_adapter[0]
    live, embedded = await adapter.fetch_catalog(), embedded_catalog("ovh")
    assert {t.name: t for t in live.server_types} == {t.name: t for t in embedded.server_types}
    assert live.locations == embedded.locations
    assert live.currency == embedded.currency

    def plain(images: tuple[CatalogImage, ...]) -> set[tuple[str, str, str, str]]:
        return {(i.id, i.name, i.os_flavor, i.os_version) for i in images}

    # The live images name their regions; the snapshot's empty tuple means "every region".
    assert plain(live.images) == plain(embedded.images)
    assert all(i.locations == tuple(loc.name for loc in live.locations) for i in live.images)


async def test_wrong_secret_against_the_emulator_is_an_auth_error(sandbox_adapter: Any) -> None:
    _, _, _, good = sandbox_adapter
    # The operator pasted the wrong application secret.
    wrong = ProviderCredentials(
        "ovh", good.endpoint, secrets={**good.secrets, "application_secret": "x" * 32}, options=good.options
    )
    async with httpx.AsyncClient() as client:
        adapter = OvhAdapter(client, wrong)
        with pytest.raises(
            ProviderAuthError, match="Invalid signature; check the application secret"
        ) as caught:
            await adapter.list_zones()
    assert caught.value.request_id and caught.value.request_id.startswith("EU.ext-1.")


# ------------------------------------------------------------------- ambiguous create, settled by name


class DropFirstCreate(httpx.AsyncBaseTransport):
    """The real transport, except that the first instance create reaches OVHcloud and loses its answer."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.creates = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_create = request.method == "POST" and request.url.path.endswith("/instance")
        response = await self._inner.handle_async_request(request)
        if is_create:
            self.creates += 1
            if self.creates == 1:
                await response.aread()
                await response.aclose()
                raise httpx.RemoteProtocolError(
                    "server disconnected without sending a response", request=request
                )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_lost_create_answer_is_settled_by_the_legion_id_in_the_name(
    credentials: Callable[[str], ProviderCredentials], broker: ProviderBroker, recorder: Any
) -> None:
    transport = DropFirstCreate()
    async with httpx.AsyncClient(transport=transport) as client:
        broker.register(OvhAdapter(client, credentials("ovh")))
        resilient = Resilience(broker, recorder, SettlePolicy(reads=2, create_attempts=3))
        owner = OwnershipLabels.new()
        wanted = ServerSpec("web-1", "d2-2", "GRA11", "Debian 12", labels=owner.as_labels())
        server = await resilient.create_and_wait_server(wanted, "ovh")
        assert (server.name, server.status, server.ownership) == ("web-1", "running", owner)
        assert transport.creates == 1
        everything = await broker.read("ovh", "list", lambda a: a.list_servers())
        assert [s.id for s in everything] == [server.id]
        assert recorder.pending == {}
