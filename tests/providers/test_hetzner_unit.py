"""The Hetzner adapter against ``httpx.MockTransport`` serving realistic API v1 bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest

from legion_nb.errors import (
    CapabilityMissingError,
    ProviderAuthError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from legion_nb.providers.contract import ProviderCredentials, UniquenessConflictError
from legion_nb.providers.hetzner import HetznerAdapter
from legion_nb.providers.hetzner.client import DETACH_ATTEMPTS
from legion_nb.providers.http import OutcomeUnknownError, ProviderResponseError
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import BillingPeriod, FirewallRule, Operation, PortRange, ServerSpec

BASE = "http://127.0.0.1:9/v1"
TOKEN = "s3cr3t-token-value"
LEGION_ID = "5a9d3a8e-8d0e-4c53-9d2b-3f9b8c1f2a10"

Handler = Callable[[httpx.Request], httpx.Response]


def server_json(server_id: int, name: str, status: str = "running") -> dict[str, Any]:
    return {
        "id": server_id,
        "name": name,
        "status": status,
        "created": "2026-11-27T10:00:00+00:00",
        "public_net": {
            "ipv4": {"id": 1, "ip": "127.20.0.7", "blocked": False, "dns_ptr": "static.example"},
            "ipv6": {"id": 2, "ip": "::1/64", "blocked": False, "dns_ptr": []},
            "floating_ips": [],
            "firewalls": [],
        },
        "server_type": {
            "id": 104,
            "name": "cx22",
            "cores": 2,
            "memory": 4.0,
            "disk": 40,
            "architecture": "x86",
            "prices": [],
        },
        "location": {"id": 1, "name": "fsn1", "country": "DE", "city": "Falkenstein"},
        "image": {
            "id": 114690387,
            "type": "system",
            "name": "debian-12",
            "os_flavor": "debian",
            "os_version": "12",
            "architecture": "x86",
        },
        "labels": {"legion/managed": "true", "legion/id": LEGION_ID},
        "protection": {"delete": False, "rebuild": False},
    }


def action_json(action_id: int, command: str, status: str = "running", resource: int = 42) -> dict[str, Any]:
    return {
        "id": action_id,
        "command": command,
        "status": status,
        "progress": 100 if status == "success" else 0,
        "started": "2026-11-27T10:00:00+00:00",
        "finished": None,
        "resources": [{"id": resource, "type": "server"}],
        "error": {"code": "action_failed", "message": "Action failed"} if status == "error" else None,
    }


def pagination(page: int, last: int, total: int) -> dict[str, Any]:
    return {
        "pagination": {
            "page": page,
            "per_page": 50,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
            "total_entries": total,
        }
    }


def error(status: int, code: str, message: str, details: Any = None, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return httpx.Response(status, json=body, headers={"X-Correlation-Id": "corr-1234", **headers})


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def adapter_with(handler: Handler) -> tuple[HetznerAdapter, Recorder]:
    recorder = Recorder(handler)
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return HetznerAdapter(client, ProviderCredentials("hetzner", BASE, {"token": TOKEN})), recorder


async def test_list_servers_follows_pagination_and_sends_label_selector() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        servers = [server_json(page * 100 + i, f"s-{page}-{i}") for i in range(50 if page < 3 else 7)]
        return httpx.Response(200, json={"servers": servers, "meta": pagination(page, 3, 107)})

    adapter, seen = adapter_with(handler)
    servers = await adapter.list_servers({"legion/managed": "true", "legion/id": LEGION_ID})
    assert len(servers) == 107
    assert [r.url.params["page"] for r in seen.requests] == ["1", "2", "3"]
    assert all(r.url.params["per_page"] == "50" for r in seen.requests)
    assert seen.requests[0].url.params["label_selector"] == f"legion/id={LEGION_ID},legion/managed=true"
    assert seen.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    first = servers[0]
    assert (first.status, first.provider_status, first.ipv4, first.server_type) == (
        "running",
        "running",
        "127.20.0.7",
        "cx22",
    )
    assert first.ownership == OwnershipLabels(LEGION_ID)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("initializing", "provisioning"),
        ("starting", "provisioning"),
        ("rebuilding", "provisioning"),
        ("running", "running"),
        ("off", "off"),
        ("deleting", "deleting"),
        ("unknown", "unknown"),
    ],
)
async def test_server_status_is_normalized(raw: str, normalized: str) -> None:
    adapter, _ = adapter_with(lambda r: httpx.Response(200, json={"server": server_json(7, "a", raw)}))
    server = await adapter.get_server("7")
    assert (server.status, server.provider_status) == (normalized, raw)


async def test_create_server_sends_one_post_and_returns_its_actions() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        return httpx.Response(
            201,
            json={
                "server": server_json(42, "web-1", "initializing"),
                "action": action_json(1, "create_server"),
                "next_actions": [action_json(2, "start_server")],
                "root_password": None,
            },
        )

    adapter, seen = adapter_with(handler)
    labels = OwnershipLabels(LEGION_ID).as_labels()
    spec = ServerSpec(
        "web-1", "cx22", "fsn1", "debian-12", ("17", "ops-key"), labels, user_data="#cloud-config"
    )
    pending = await adapter.create_server(spec)
    body = json.loads(seen.requests[0].content)
    assert body["ssh_keys"] == [17, "ops-key"]
    assert body["labels"] == labels
    assert body["start_after_create"] is True
    assert body["user_data"] == "#cloud-config"
    assert [op.kind for op in pending.operations] == ["create_server", "start_server"]
    assert pending.server.status == "provisioning"
    assert "cloud-config" not in repr(spec)


async def test_poll_operations_batches_ids_fifty_per_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ids = [int(i) for i in request.url.params.get_list("id")]
        actions = [action_json(i, "create_server", "success") for i in ids if i != 13]
        return httpx.Response(200, json={"actions": actions, "meta": pagination(1, 1, len(actions))})

    adapter, seen = adapter_with(handler)
    ops = [Operation("hetzner", str(i), "create_server", "42") for i in range(1, 61)]
    states = await adapter.poll_operations(ops)
    assert len(seen.requests) == 2
    assert len(seen.requests[0].url.params.get_list("id")) == 50
    assert [s.operation for s in states] == ops
    assert states[12].status == "error" and states[12].error_code == "not_found"
    assert all(s.status == "success" for i, s in enumerate(states) if i != 12)


@pytest.mark.parametrize(
    ("response", "method", "expected", "code"),
    [
        (error(404, "not_found", "server with ID 9 not found"), "GET", ProviderNotFoundError, "not_found"),
        (error(401, "unauthorized", "unable to authenticate"), "GET", ProviderAuthError, "unauthorized"),
        (error(401, "token_readonly", "token is read-only"), "POST", ProviderAuthError, "token_readonly"),
        (
            error(409, "uniqueness_error", "server name is already used"),
            "POST",
            UniquenessConflictError,
            None,
        ),
        (error(403, "maintenance", "maintenance"), "GET", ProviderUnavailableError, "maintenance"),
        (error(500, "server_error", "internal error"), "POST", OutcomeUnknownError, "server_error"),
        (error(503, "unavailable", "unavailable"), "GET", ProviderUnavailableError, "unavailable"),
    ],
)
async def test_errors_map_to_the_tree_with_code_and_correlation_id(
    response: httpx.Response, method: str, expected: type[Exception], code: str | None
) -> None:
    adapter, _ = adapter_with(lambda r: response)
    with pytest.raises(expected) as caught:
        if method == "GET":
            await adapter.get_server("9")
        else:
            await adapter.create_ssh_key("k", "ssh-ed25519 AAAA", {})
    err = caught.value
    assert err.provider == "hetzner"  # type: ignore[attr-defined]
    assert err.request_id == "corr-1234"  # type: ignore[attr-defined]
    assert err.provider_code == (code or "uniqueness_error")  # type: ignore[attr-defined]
    assert "\n" not in str(err) and "corr-1234" in str(err)
    assert TOKEN not in str(err)
    if method == "GET":
        assert not isinstance(err, OutcomeUnknownError)


async def test_invalid_input_names_the_fields() -> None:
    details = {"fields": [{"name": "server_type", "messages": ["unknown server type 'cx999'"]}]}
    adapter, _ = adapter_with(
        lambda r: error(422, "invalid_input", "invalid input in field 'server_type'", details)
    )
    spec = ServerSpec("a", "cx999", "fsn1", "debian-12", labels=OwnershipLabels(LEGION_ID).as_labels())
    with pytest.raises(ProviderInvalidInputError, match=r"server_type: unknown server type 'cx999'"):
        await adapter.create_server(spec)


async def test_429_carries_retry_after_and_the_budget_is_recorded() -> None:
    reset = "1893456000"
    adapter, _ = adapter_with(
        lambda r: error(
            429,
            "rate_limit_exceeded",
            "limit of 3600 requests per hour reached",
            **{
                "Retry-After": "7",
                "RateLimit-Limit": "3600",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": reset,
            },
        )
    )
    with pytest.raises(ProviderRateLimitedError) as caught:
        await adapter.list_servers()
    assert caught.value.retry_after == 7.0
    assert adapter.rate_limit is not None
    assert (adapter.rate_limit.limit, adapter.rate_limit.remaining, adapter.rate_limit.reset) == (
        3600,
        0,
        1893456000.0,
    )


async def test_an_unreadable_error_body_still_gives_one_line() -> None:
    adapter, _ = adapter_with(lambda r: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ProviderUnavailableError, match=r"^hetzner: HTTP 502 Bad Gateway$"):
        await adapter.list_ssh_keys()


async def test_a_body_of_the_wrong_shape_is_a_response_error() -> None:
    adapter, _ = adapter_with(lambda r: httpx.Response(200, json={"server": {"id": 1}}))
    with pytest.raises(ProviderResponseError, match="unexpected server shape"):
        await adapter.get_server("1")


async def test_transport_failures_distinguish_unsent_from_unknown() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    adapter, _ = adapter_with(timeout)
    with pytest.raises(OutcomeUnknownError, match="outcome unknown"):
        await adapter.delete_server("5")
    with pytest.raises(ProviderUnavailableError) as caught:
        await adapter.list_servers()
    assert not isinstance(caught.value, OutcomeUnknownError)

    adapter, _ = adapter_with(refused)
    with pytest.raises(ProviderUnavailableError, match=r"cannot reach http://127\.0\.0\.1:9") as caught:
        await adapter.delete_server("5")
    assert not isinstance(caught.value, OutcomeUnknownError)


async def test_set_records_is_level_based() -> None:
    calls: list[str] = []
    current: dict[str, Any] = {
        "rrset": {"id": "www/A", "name": "www", "type": "A", "ttl": 300, "records": [{"value": "127.20.0.2"}]}
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            return httpx.Response(200, json=current)
        return httpx.Response(201, json={"action": action_json(9, "set_records", "success")})

    adapter, _ = adapter_with(handler)
    await adapter.set_records("example.org", "www", "A", 300, ["127.20.0.2"])
    assert calls == ["GET /v1/zones/example.org/rrsets/www/A"]
    calls.clear()
    await adapter.set_records("example.org", "www", "A", 600, ["127.20.0.3", "127.20.0.2"])
    assert calls == [
        "GET /v1/zones/example.org/rrsets/www/A",
        "POST /v1/zones/example.org/rrsets/www/A/actions/set_records",
        "POST /v1/zones/example.org/rrsets/www/A/actions/change_ttl",
    ]


async def test_set_records_creates_a_missing_rrset() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return error(404, "not_found", "rrset not found")
        bodies.append((request.url.path, json.loads(request.content)))
        return httpx.Response(201, json={"rrset": {}, "action": action_json(3, "create_rrset", "success")})

    adapter, _ = adapter_with(handler)
    await adapter.set_records("example.org", "@", "TXT", None, ['"v=spf1 -all"'])
    assert bodies == [
        (
            "/v1/zones/example.org/rrsets",
            {"name": "@", "type": "TXT", "records": [{"value": '"v=spf1 -all"'}]},
        )
    ]


async def test_a_detach_refused_for_a_vanished_server_is_bounded_and_other_refusals_are_not_retried() -> None:
    """A remove refused as naming a missing server is re-read and re-sent a few times, never forever;
    any other refusal is raised at once."""
    firewall = {
        "id": 8,
        "name": "cluster",
        "labels": {},
        "rules": [],
        "applied_to": [{"type": "server", "server": {"id": 1}}],
    }
    answer = error(404, "firewall_resource_not_found", "server 1 in remove_from[0] was not found")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"firewall": firewall})
        return answer

    adapter, seen = adapter_with(handler)
    with pytest.raises(ProviderNotFoundError, match="firewall_resource_not_found"):
        await adapter.apply_firewall("8", [])
    removes = [r for r in seen.requests if r.url.path.endswith("/remove_from_resources")]
    assert len(removes) == DETACH_ATTEMPTS
    assert [r.method for r in seen.requests].count("GET") == DETACH_ATTEMPTS

    answer = error(404, "not_found", "firewall 8 was not found")
    adapter, seen = adapter_with(handler)
    with pytest.raises(ProviderNotFoundError, match="not_found"):
        await adapter.apply_firewall("8", [])
    assert [r.method for r in seen.requests] == ["GET", "POST"]


async def test_apply_firewall_applies_missing_and_removes_stale() -> None:
    posted: list[tuple[str, Any]] = []
    firewall = {
        "id": 8,
        "name": "cluster",
        "labels": {},
        "rules": [
            {
                "direction": "in",
                "protocol": "tcp",
                "port": "22",
                "source_ips": ["0.0.0.0/0"],
                "destination_ips": [],
            }
        ],
        "applied_to": [{"type": "server", "server": {"id": 1}}, {"type": "server", "server": {"id": 2}}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"firewall": firewall})
        posted.append((request.url.path.rsplit("/", 1)[1], json.loads(request.content)))
        return httpx.Response(201, json={"actions": [action_json(5, "apply_firewall", resource=8)]})

    adapter, _ = adapter_with(handler)
    ops = await adapter.apply_firewall("8", ["2", "3"])
    assert posted == [
        ("apply_to_resources", {"apply_to": [{"type": "server", "server": {"id": 3}}]}),
        ("remove_from_resources", {"remove_from": [{"type": "server", "server": {"id": 1}}]}),
    ]
    assert len(ops) == 2
    listed = await adapter.set_firewall_rules(
        "8", [FirewallRule("in", "udp", PortRange(60000, 61000), ("10.0.0.0/8",), description="mosh")]
    )
    assert posted[-1] == (
        "set_rules",
        {
            "rules": [
                {
                    "direction": "in",
                    "protocol": "udp",
                    "source_ips": ["10.0.0.0/8"],
                    "destination_ips": [],
                    "port": "60000-61000",
                    "description": "mosh",
                }
            ]
        },
    )
    assert listed[0].resource_type == "server"


async def test_capabilities_and_bad_ids_fail_before_any_request() -> None:
    adapter, seen = adapter_with(lambda r: httpx.Response(500))
    with pytest.raises(CapabilityMissingError, match="hetzner: has no billing capability"):
        await adapter.list_billing(BillingPeriod(date(2026, 11, 1), date(2026, 11, 30)))
    with pytest.raises(ProviderNotFoundError, match="Hetzner ids are numbers"):
        await adapter.get_server("not-a-number")
    assert seen.requests == []


def test_credentials_never_show_the_token() -> None:
    creds = ProviderCredentials("hetzner", BASE, {"token": TOKEN})
    assert TOKEN not in repr(creds)
    adapter = HetznerAdapter(httpx.AsyncClient(), creds)
    assert TOKEN not in repr(adapter)
    with pytest.raises(ProviderAuthError, match="credentials lack 'token'"):
        HetznerAdapter(httpx.AsyncClient(), ProviderCredentials("hetzner", BASE, {}))


@pytest.mark.parametrize(
    "token", ["CANARY-token-9 ", "CANARY-token-9\t", "CANARY\r\ntoken-9", "CANARY-tøken-9"]
)
async def test_a_token_no_header_can_carry_is_an_auth_error_that_never_quotes_it(token: str) -> None:
    """Credentials stored before they were validated: nothing is sent, and the error names no value."""
    recorder = Recorder(lambda request: httpx.Response(200, json={"servers": [], "meta": {}}))
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    adapter = HetznerAdapter(client, ProviderCredentials("hetzner", BASE, {"token": token}))
    with pytest.raises(ProviderAuthError, match="credentials set hetzner") as info:
        await adapter.list_servers()
    assert recorder.requests == []
    assert "CANARY" not in str(info.value) and "token-9" not in str(info.value)
    assert not getattr(info.value, "temporary", False)
