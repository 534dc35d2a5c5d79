"""The Scaleway adapter over ``httpx.MockTransport``: paging, error mapping, power-on after create,
settling an ambiguous create by tag, and level-based operation polling.

Bodies follow the shapes recorded in the official SDK's VCR cassettes (``scaleway-sdk-python``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from legion_nb.emulators.httpkit import serve_app
from legion_nb.emulators.scaleway import create_app
from legion_nb.emulators.world import SandboxWorld
from legion_nb.errors import (
    CapabilityMissingError,
    ProviderAuthError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
)
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.contract import (
    Capability,
    ProviderAdapter,
    ProviderCredentials,
    UniquenessConflictError,
)
from legion_nb.providers.http import OutcomeUnknownError
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import (
    BillingPeriod,
    DnsRecord,
    FirewallRule,
    Operation,
    PortRange,
    ServerSpec,
)
from legion_nb.providers.scaleway import DESCRIPTOR, ScalewayAdapter
from legion_nb.providers.scaleway.errors import TransientStateError

SECRET = "11111111-2222-4333-8444-555555555555"
PROJECT = "0f0e0d0c-0b0a-4909-8807-060504030201"
ZONE = "fr-par-1"
SERVER_UUID = "07626ecf-f52e-43b6-b098-70f435b155e8"
OWNER = OwnershipLabels("7b0c3c0e-0f6b-4e5e-9d9a-2f6f1a1b2c3d")

Handler = Callable[[httpx.Request], httpx.Response]


def server_json(
    state: str = "stopped", uuid: str = SERVER_UUID, tags: list[str] | None = None
) -> dict[str, Any]:
    return {
        "id": uuid,
        "name": "node-1",
        "arch": "x86_64",
        "commercial_type": "DEV1-S",
        "organization": PROJECT,
        "project": PROJECT,
        "image": {"id": "c00ae53c-1e29-4087-a384-47f3c5c1cd84", "name": "Debian Bookworm", "arch": "x86_64"},
        "tags": tags if tags is not None else list(OWNER.as_tags()),
        "state": state,
        "state_detail": "terminating" if state == "stopping" else "",
        "public_ip": {"id": "ip-1", "address": "127.20.0.2", "family": "inet", "dynamic": True},
        "public_ips": [{"id": "ip-1", "address": "127.20.0.2", "family": "inet", "dynamic": True}],
        "creation_date": "2025-09-02T07:48:18.035029+00:00",
        "security_group": {"id": "1c1fc99f-b2de-408d-9eb0-da801a3e2744", "name": "Default security group"},
        "zone": ZONE,
    }


def reply(status: int, body: Any = None, **headers: str) -> httpx.Response:
    base_headers = {"x-request-id": "18906f1c-b6d6-4b81-bb8f-1713bfd4b430", **headers}
    if body is None:
        return httpx.Response(status, headers=base_headers)
    return httpx.Response(status, json=body, headers=base_headers)


class Recorder:
    """A MockTransport handler that records every request and answers from a routing function."""

    def __init__(self, route: Handler) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Auth-Token"] == SECRET
        self.requests.append(request)
        return self.route(request)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def adapter(route: Handler) -> tuple[ScalewayAdapter, Recorder]:
    recorder = Recorder(route)
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    credentials = ProviderCredentials(
        "scaleway", "https://api.scaleway.test", {"secret_key": SECRET}, {"project_id": PROJECT, "zone": ZONE}
    )
    return ScalewayAdapter(client, credentials), recorder


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def test_descriptor_and_protocol() -> None:
    scw, _ = adapter(lambda r: reply(200, {}))
    assert isinstance(scw, ProviderAdapter)
    assert DESCRIPTOR.secret_keys == ("secret_key",) and DESCRIPTOR.option_keys == ("project_id",)
    assert Capability.FIREWALL in scw.capabilities and Capability.REBUILD not in scw.capabilities
    assert SECRET not in repr(scw)


async def test_instance_paging_follows_x_total_count() -> None:
    servers = [server_json(uuid=f"00000000-0000-4000-8000-{i:012d}") for i in range(105)]

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path != f"/instance/v1/zones/{ZONE}/servers":
            return reply(200, {"servers": []}, **{"X-Total-Count": "0"})
        page, per_page = int(request.url.params["page"]), int(request.url.params["per_page"])
        chunk = servers[(page - 1) * per_page : page * per_page]
        return reply(200, {"servers": chunk}, **{"X-Total-Count": str(len(servers))})

    scw, recorder = adapter(route)
    found = await scw.list_servers()
    assert len(found) == 105 and found[0].id == f"{ZONE}/00000000-0000-4000-8000-000000000000"
    pages = [r.url.params["page"] for r in recorder.requests if r.url.path.endswith(f"{ZONE}/servers")]
    assert pages == ["1", "2"]
    assert all(r.url.params["project"] == PROJECT for r in recorder.requests)


async def test_newer_api_paging_follows_total_count() -> None:
    keys = [
        {"id": f"k{i}", "name": f"key-{i}", "public_key": "ssh-ed25519 AAAA", "fingerprint": "256 SHA256:x"}
        for i in range(130)
    ]

    def route(request: httpx.Request) -> httpx.Response:
        page, size = int(request.url.params["page"]), int(request.url.params["page_size"])
        return reply(200, {"total_count": len(keys), "ssh_keys": keys[(page - 1) * size : page * size]})

    scw, recorder = adapter(route)
    assert [k.id for k in await scw.list_ssh_keys()] == [k["id"] for k in keys]
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected", "code", "fragment"),
    [
        (
            404,
            {
                "message": "resource is not found",
                "type": "not_found",
                "resource": "instance_server",
                "resource_id": SERVER_UUID,
            },
            ProviderNotFoundError,
            "not_found",
            "instance_server",
        ),
        (
            400,
            {
                "message": "invalid argument(s)",
                "type": "invalid_arguments",
                "details": [
                    {
                        "argument_name": "commercial_type",
                        "reason": "constraint",
                        "help_message": "unknown type",
                    }
                ],
            },
            ProviderInvalidInputError,
            "invalid_arguments",
            "commercial_type: unknown type",
        ),
        (
            401,
            {
                "message": "authentication is denied",
                "method": "api_key",
                "reason": "invalid_argument",
                "type": "denied_authentication",
            },
            ProviderAuthError,
            "denied_authentication",
            "check the secret key",
        ),
        (
            403,
            {
                "message": "insufficient permissions",
                "type": "permissions_denied",
                "details": [{"resource": "instance_server", "action": "read"}],
            },
            ProviderAuthError,
            "permissions_denied",
            "read on instance_server",
        ),
        (
            403,
            {
                "message": "quota(s) exceeded for this resource",
                "type": "quotas_exceeded",
                "details": [{"resource": "instances", "quota": 10, "current": 10}],
            },
            ProviderInvalidInputError,
            "quotas_exceeded",
            "instances: 10 of 10 used",
        ),
        (
            409,
            {
                "message": "resource is in a transient state",
                "type": "transient_state",
                "resource": "instance_server",
                "resource_id": SERVER_UUID,
                "current_state": "starting",
            },
            TransientStateError,
            "transient_state",
            "is starting",
        ),
        (
            400,
            {"message": "Validation Error", "fields": {"name": ["required"]}},
            ProviderInvalidInputError,
            "invalid_arguments",
            "name: required",
        ),
        (
            429,
            {"message": "too many requests", "type": "too_many_requests"},
            ProviderRateLimitedError,
            "too_many_requests",
            "too many requests",
        ),
    ],
)
async def test_errors_map_type_message_and_request_id(
    status: int, body: dict[str, Any], expected: type[Exception], code: str, fragment: str
) -> None:
    scw, _ = adapter(lambda r: reply(status, body, **{"Retry-After": "2"}))
    with pytest.raises(expected) as err:
        await scw.get_server(f"{ZONE}/{SERVER_UUID}")
    error = err.value
    assert getattr(error, "provider_code", None) == code
    assert getattr(error, "request_id", None) == "18906f1c-b6d6-4b81-bb8f-1713bfd4b430"
    assert fragment in str(error) and "\n" not in str(error)
    assert str(error).startswith("scaleway: ")
    if isinstance(error, ProviderRateLimitedError):
        assert error.retry_after == 2.0
    if isinstance(error, TransientStateError):
        assert error.temporary


async def test_conflict_that_proves_existence_is_a_uniqueness_error() -> None:
    body = {"message": "SSH key with this public key already exists", "type": "conflict"}
    scw, _ = adapter(lambda r: reply(409, body))
    with pytest.raises(UniquenessConflictError):
        await scw.create_ssh_key("op", "ssh-ed25519 AAAA x@y", OWNER.as_labels())


async def test_create_powers_the_server_on_and_returns_a_running_operation() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/servers"):
            return reply(201, {"server": server_json("stopped", tags=body_of(request)["tags"])})
        if request.url.path.endswith("/user_data/cloud-init"):
            return reply(204)
        if request.url.path.endswith("/action"):
            return reply(202, {"task": {"id": "t1", "description": "server_poweron", "status": "pending"}})
        raise AssertionError(f"unexpected {request.method} {request.url}")

    scw, recorder = adapter(route)
    spec = ServerSpec(
        "node-1", "DEV1-S", ZONE, "debian_bookworm", labels=OWNER.as_labels(), user_data="#cloud-config"
    )
    pending = await scw.create_server(spec)
    assert recorder.calls() == [
        f"POST /instance/v1/zones/{ZONE}/servers",
        f"PATCH /instance/v1/zones/{ZONE}/servers/{SERVER_UUID}/user_data/cloud-init",
        f"POST /instance/v1/zones/{ZONE}/servers/{SERVER_UUID}/action",
    ]
    create = body_of(recorder.requests[0])
    assert create["project"] == PROJECT and create["commercial_type"] == "DEV1-S"
    assert sorted(create["tags"]) == sorted(OWNER.as_tags())
    assert recorder.requests[1].content == b"#cloud-config"
    assert recorder.requests[1].headers["Content-Type"] == "text/plain"
    assert body_of(recorder.requests[2]) == {"action": "poweron"}
    assert pending.server.status == "provisioning" and pending.server.ownership == OWNER
    assert pending.server.id == f"{ZONE}/{SERVER_UUID}" and pending.server.ipv4 == "127.20.0.2"
    assert [op.kind for op in pending.operations] == ["server_running"]


async def test_user_data_refused_after_the_create_is_an_unknown_outcome_naming_the_server() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/servers"):
            return reply(201, {"server": server_json("stopped", tags=body_of(request)["tags"])})
        if request.url.path.endswith("/user_data/cloud-init"):
            return reply(400, {"message": "user data is too large", "type": "invalid_arguments"})
        raise AssertionError(f"unexpected {request.method} {request.url}")

    scw, recorder = adapter(route)
    spec = ServerSpec(
        "node-1", "DEV1-S", ZONE, "debian_bookworm", labels=OWNER.as_labels(), user_data="#cloud-config"
    )
    with pytest.raises(OutcomeUnknownError) as raised:
        await scw.create_server(spec)
    message = raised.value.message
    assert f"server {ZONE}/{SERVER_UUID} was created but its user data was not stored" in message
    assert "user data is too large" in message and "18906f1c-b6d6-4b81-bb8f-1713bfd4b430" in message
    assert recorder.requests[1].headers["Content-Type"] == "text/plain"
    assert [c.split()[0] for c in recorder.calls()] == ["POST", "PATCH"]  # no power-on, no second create


async def test_ambiguous_create_is_settled_by_listing_the_legion_id_tag() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/servers"):
            raise httpx.ReadError("connection dropped after the request was sent", request=request)
        if request.method == "GET":
            assert request.url.params["tags"] == f"legion/id={OWNER.legion_id}"
            return reply(200, {"servers": [server_json("stopped")]}, **{"X-Total-Count": "1"})
        return reply(202, {"task": {"id": "t1", "status": "pending"}})

    scw, recorder = adapter(route)
    pending = await scw.create_server(
        ServerSpec("node-1", "DEV1-S", ZONE, "debian_bookworm", labels=OWNER.as_labels())
    )
    assert pending.server.id == f"{ZONE}/{SERVER_UUID}"
    assert [c.split()[0] for c in recorder.calls()] == ["POST", "GET", "POST"]  # one create, one power-on


async def test_a_failing_re_read_is_repeated_and_never_reported_as_a_refusal() -> None:
    reads = {"count": 0}

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/servers"):
            raise httpx.ReadError("connection dropped after the request was sent", request=request)
        if request.method == "GET":
            reads["count"] += 1
            if reads["count"] == 1:
                return reply(503, {"message": "internal error", "type": "internal_error"})
            return reply(200, {"servers": [server_json("stopped")]}, **{"X-Total-Count": "1"})
        return reply(202, {"task": {"id": "t1", "status": "pending"}})

    scw, recorder = adapter(route)
    spec = ServerSpec("node-1", "DEV1-S", ZONE, "debian_bookworm", labels=OWNER.as_labels())
    pending = await scw.create_server(spec)
    assert pending.server.id == f"{ZONE}/{SERVER_UUID}"
    assert [c.split()[0] for c in recorder.calls()] == ["POST", "GET", "GET", "POST"]


async def test_ambiguous_create_with_nothing_visible_stays_unknown() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return reply(503, {"message": "internal error", "type": "internal_error"})
        return reply(200, {"servers": []}, **{"X-Total-Count": "0"})

    scw, recorder = adapter(route)
    with pytest.raises(OutcomeUnknownError):
        await scw.create_server(ServerSpec("n", "DEV1-S", ZONE, "debian_bookworm", labels=OWNER.as_labels()))
    assert [c.split()[0] for c in recorder.calls()] == ["POST", "GET"]


async def test_polling_reads_each_zone_once_and_re_drives_a_stopped_server() -> None:
    other = "9a9a9a9a-0000-4000-8000-000000000001"
    states = {SERVER_UUID: "stopped", other: "running"}

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            ids = [i for i in request.url.params["servers"].split(",") if i in states]
            return reply(
                200, {"servers": [server_json(states[i], uuid=i) for i in ids]}, **{"X-Total-Count": "2"}
            )
        states[SERVER_UUID] = "starting"
        return reply(202, {"task": {"id": "t2", "status": "pending"}})

    scw, recorder = adapter(route)
    ops = [
        Operation("scaleway", "a", "server_running", resource_id=f"{ZONE}/{SERVER_UUID}"),
        Operation("scaleway", "b", "server_running", resource_id=f"{ZONE}/{other}"),
        Operation(
            "scaleway", "c", "server_deleted", resource_id=f"{ZONE}/5b5b5b5b-0000-4000-8000-000000000002"
        ),
    ]
    first = await scw.poll_operations(ops)
    assert [s.status for s in first] == ["running", "success", "success"]
    assert recorder.calls().count(f"GET /instance/v1/zones/{ZONE}/servers") == 1
    assert body_of(recorder.requests[-1]) == {"action": "poweron"}
    states[SERVER_UUID] = "running"
    assert [s.status for s in await scw.poll_operations(ops[:1])] == ["success"]


async def test_delete_terminates_a_running_server_and_deletes_a_stopped_one() -> None:
    state = {"value": "running"}

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return reply(200, {"server": server_json(state["value"])})
        if request.method == "POST":
            assert body_of(request) == {"action": "terminate"}
            return reply(202, {"task": {"id": "t3", "status": "pending"}})
        return reply(204)

    scw, recorder = adapter(route)
    op = await scw.delete_server(f"{ZONE}/{SERVER_UUID}")
    assert op is not None and op.kind == "server_deleted"
    state["value"] = "stopping"  # a resend after a lost answer finds the terminate under way
    before = len(recorder.requests)
    again = await scw.delete_server(f"{ZONE}/{SERVER_UUID}")
    assert again is not None and [r.method for r in recorder.requests[before:]] == ["GET"]
    state["value"] = "stopped"
    assert await scw.delete_server(f"{ZONE}/{SERVER_UUID}") is None
    assert recorder.calls()[-1] == f"DELETE /instance/v1/zones/{ZONE}/servers/{SERVER_UUID}"


async def test_rules_compare_enums_case_insensitively_and_merge_cidrs() -> None:
    rules = [
        {
            "id": "r0",
            "protocol": "TCP",
            "direction": "outbound",
            "action": "drop",
            "ip_range": "0.0.0.0/0",
            "dest_port_from": 25,
            "dest_port_to": None,
            "position": 1,
            "editable": False,
        },
        {
            "id": "r1",
            "protocol": "TCP",
            "direction": "INBOUND",
            "action": "Accept",
            "ip_range": "0.0.0.0/0",
            "dest_port_from": 22,
            "dest_port_to": None,
            "position": 2,
            "editable": True,
        },
        {
            "id": "r2",
            "protocol": "tcp",
            "direction": "inbound",
            "action": "accept",
            "ip_range": "::/0",
            "dest_port_from": 22,
            "dest_port_to": None,
            "position": 3,
            "editable": True,
        },
        {
            "id": "r3",
            "protocol": "UDP",
            "direction": "inbound",
            "action": "ACCEPT",
            "ip_range": "10.0.0.0/8",
            "dest_port_from": 60000,
            "dest_port_to": 61000,
            "position": 4,
            "editable": True,
        },
    ]
    group = {
        "id": "g1",
        "name": "legion-cluster",
        "tags": list(OWNER.as_tags()),
        "servers": [{"id": SERVER_UUID}],
    }

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/rules"):
            return reply(200, {"rules": rules}, **{"X-Total-Count": "4"})
        if request.url.path.endswith(f"zones/{ZONE}/security_groups"):
            return reply(200, {"security_groups": [group]}, **{"X-Total-Count": "1"})
        return reply(200, {"security_groups": []}, **{"X-Total-Count": "0"})

    scw, _ = adapter(route)
    [firewall] = await scw.list_firewalls(OWNER.as_labels())
    assert firewall.id == f"{ZONE}/g1" and firewall.applied_to == (f"{ZONE}/{SERVER_UUID}",)
    assert firewall.location == ZONE  # a security group is zonal: refresh names its zone
    assert set(firewall.rules) == {
        FirewallRule("in", "tcp", PortRange(22, 22), sources=("0.0.0.0/0", "::/0")),
        FirewallRule("in", "udp", PortRange(60000, 61000), sources=("10.0.0.0/8",)),
    }


async def test_set_rules_sends_one_editable_rule_per_cidr() -> None:
    group = {"id": "g1", "outbound_default_policy": "ACCEPT", "servers": []}

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return reply(200, {"security_group": group})
        return reply(200, {"rules": []})

    scw, recorder = adapter(route)
    rules = [FirewallRule("in", "tcp", PortRange(4413, 4413), sources=("127.20.0.2/32", "127.20.0.3/32"))]
    assert await scw.set_firewall_rules(f"{ZONE}/g1", rules) == []
    [put] = [r for r in recorder.requests if r.method == "PUT"]
    sent = body_of(put)["rules"]
    assert [(r["protocol"], r["ip_range"], r["dest_port_from"], r["editable"]) for r in sent] == [
        ("TCP", "127.20.0.2/32", 4413, True),
        ("TCP", "127.20.0.3/32", 4413, True),
    ]
    assert not [r for r in recorder.requests if r.method == "PATCH"]  # policy already open outbound
    with pytest.raises(ProviderInvalidInputError):
        await scw.set_firewall_rules(f"{ZONE}/g1", [FirewallRule("in", "gre", sources=("10.0.0.0/8",))])


async def test_dns_set_and_delete_use_patch_changes() -> None:
    records: list[dict[str, Any]] = [
        {"id": "r1", "name": "www", "type": "A", "data": "127.20.0.2", "ttl": 300}
    ]

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            name = request.url.params.get("name")
            shown = [r for r in records if not name or r["name"] == name]
            return reply(200, {"total_count": len(shown), "records": shown})
        return reply(200, {"records": []})

    scw, recorder = adapter(route)
    await scw.set_records("example.com", "@", "A", None, ["127.20.0.9"])
    patch = body_of(recorder.requests[-1])
    assert patch["disallow_new_zone_creation"] is True
    assert patch["changes"] == [
        {
            "set": {
                "id_fields": {"name": "", "type": "A"},
                "records": [{"name": "", "type": "A", "data": "127.20.0.9", "ttl": 3600}],
            }
        }
    ]
    await scw.delete_records("example.com", "www", "A")
    assert body_of(recorder.requests[-1])["changes"] == [
        {"delete": {"id_fields": {"name": "www", "type": "A"}}}
    ]
    before = len(recorder.requests)
    await scw.delete_records("example.com", "api", "A")  # absent RRset: read, nothing to change
    assert [r.method for r in recorder.requests[before:]] == ["GET"]


async def test_dns_records_are_grouped_into_rrsets_with_the_smallest_ttl() -> None:
    records = [
        {"id": "r1", "name": "www", "type": "a", "data": "127.20.0.3", "ttl": 300},
        {"id": "r2", "name": "www", "type": "A", "data": "127.20.0.2", "ttl": 60},
        {"id": "r3", "name": "", "type": "TXT", "data": "v=spf1 -all", "ttl": 0},
        {"id": "r4", "name": "", "type": "ALIAS", "data": "elsewhere.example.net", "ttl": 60},
    ]
    scw, _ = adapter(lambda r: reply(200, {"total_count": len(records), "records": records}))
    assert await scw.list_records("example.com") == [
        DnsRecord(name="@", type="TXT", ttl=None, values=("v=spf1 -all",)),
        DnsRecord(name="www", type="A", ttl=60, values=("127.20.0.2", "127.20.0.3")),
    ]


async def test_missing_capabilities_and_bad_ids_fail_before_any_request() -> None:
    scw, recorder = adapter(lambda r: reply(500, {}))
    with pytest.raises(CapabilityMissingError):
        await scw.rebuild_server(f"{ZONE}/{SERVER_UUID}", "debian_trixie")
    with pytest.raises(ProviderNotFoundError) as bad:
        await scw.get_server("12345")
    assert "fr-par-1/<uuid>" in str(bad.value)
    assert recorder.requests == []


async def test_apply_firewall_refuses_a_server_of_another_zone() -> None:
    scw, _ = adapter(lambda r: reply(200, {"security_group": {"id": "g1", "servers": []}}))
    with pytest.raises(ProviderInvalidInputError) as err:
        await scw.apply_firewall(f"{ZONE}/g1", [f"nl-ams-1/{SERVER_UUID}"])
    assert "zonal" in str(err.value)


def product(
    ncpus: int, ram_gib: int, hourly: float, monthly: float, local_gb: int, arch: str = "x86_64"
) -> Any:
    local = local_gb * 1000**3
    return {
        "hourly_price": hourly,
        "monthly_price": monthly,
        "ncpus": ncpus,
        "ram": ram_gib * 1024**3,
        "arch": arch,
        "volumes_constraint": {"min_size": local, "max_size": local},
        "end_of_service": False,
    }


async def test_catalog_merges_zones_skips_shortage_and_maps_marketplace_labels() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        zone = path.split("/")[4] if path.startswith("/instance/") else request.url.params.get("zone")
        if path.endswith("/products/servers"):
            return reply(
                200,
                {
                    "servers": {
                        "DEV1-S": product(2, 2, 0.0099, 7.23, 20),
                        "PRO2-XS": product(4, 16, 0.11, 80.3, 0),
                    }
                },
            )
        if path.endswith("/availability"):
            pro = "shortage" if zone == "pl-waw-1" else "available"
            return reply(
                200, {"servers": {"DEV1-S": {"availability": "available"}, "PRO2-XS": {"availability": pro}}}
            )
        local = [{"id": f"img-{zone}", "label": "debian_bookworm", "arch": "x86_64", "zone": zone}]
        if zone == "fr-par-2":
            local.append({"id": "img-arm", "label": "debian_trixie", "arch": "arm64", "zone": zone})
        return reply(200, {"total_count": len(local), "local_images": local})

    scw, _ = adapter(route)
    catalog = await scw.fetch_catalog()
    dev1s, pro2 = catalog.server_type("DEV1-S"), catalog.server_type("PRO2-XS")
    assert dev1s is not None and pro2 is not None
    assert (dev1s.cores, dev1s.memory_gb, dev1s.disk_gb, dev1s.block_storage) == (2, 2.0, 20, False)
    assert (pro2.disk_gb, pro2.block_storage) == (0, True)
    assert not pro2.available_in("pl-waw-1") and pro2.price_in("pl-waw-1") is None
    price = dev1s.price_in("fr-par-1")
    assert price is not None and str(price.monthly) == "7.23"
    bookworm = next(i for i in catalog.images if i.name == "debian_bookworm")
    assert (bookworm.os_flavor, bookworm.os_version, bookworm.locations) == ("debian", "12", ())
    trixie = next(i for i in catalog.images if i.name == "debian_trixie")
    assert (trixie.arch, trixie.locations) == ("arm", ("fr-par-2",))
    assert catalog.currency == "EUR" and catalog.locations[0].name == ZONE


async def test_sandbox_catalog_matches_the_embedded_snapshot() -> None:
    world = SandboxWorld(seed=2)
    emulator = create_app(world)
    served = await serve_app(emulator.app)
    try:
        creds = emulator.credentials
        credentials = ProviderCredentials(
            "scaleway",
            served.base_url(),
            {"secret_key": creds["secret_key"]},
            {"project_id": creds["project_id"], "zone": creds["zone"]},
        )
        async with httpx.AsyncClient() as client:
            live = await ScalewayAdapter(client, credentials).fetch_catalog()
    finally:
        await world.aclose()
        await served.aclose()
    embedded = embedded_catalog("scaleway")
    assert {t.name: t for t in live.server_types} == {t.name: t for t in embedded.server_types}
    assert live.locations == embedded.locations
    assert set(live.images) == set(embedded.images)


async def test_billing_reads_every_month_the_period_touches() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        assert request.url.params["project_id"] == PROJECT
        month = request.url.params["billing_period"]
        line = {
            "value": {"currency_code": "EUR", "units": 7, "nanos": 230_000_000},
            "product_name": "Instances - DEV1-S - fr-par-1",
            "resource_name": "node-1",
            "sku": "/compute/dev1_s/run_fr-par-1",
            "unit": "hour",
            "billed_quantity": "730",
            "consumer_id": SERVER_UUID,
        }
        lines = [line] if month == "2026-11" else []
        return reply(
            200, {"total_count": len(lines), "consumptions": lines, "total_discount_untaxed_value": 0}
        )

    scw, recorder = adapter(route)
    entries = await scw.list_billing(BillingPeriod(date(2026, 10, 15), date(2026, 11, 10)))
    assert [r.url.params["billing_period"] for r in recorder.requests] == ["2026-10", "2026-11"]
    [entry] = entries
    assert (entry.amount, entry.currency, entry.date) == (Decimal("7.23"), "EUR", date(2026, 11, 1))
    assert entry.resource_id == f"{ZONE}/{SERVER_UUID}" and "node-1" in (entry.description or "")
