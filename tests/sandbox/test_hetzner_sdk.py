"""The Hetzner emulator driven by the official ``hcloud`` SDK, with only ``api_endpoint`` changed.

Every response a test sees (SDK or raw ``httpx``) is checked against the shapes and status codes
Hetzner's OpenAPI spec documents (``hetzner_spec``): a drift fails the test that saw it.
"""

# hcloud's domain models type every field Optional; these tests assert the values are there.
# mypy: disable-error-code="union-attr,arg-type,misc"

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from hcloud import APIException, Client
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.primary_ips import PrimaryIP
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, Server, ServerCreatePublicNetwork
from hcloud.ssh_keys import BoundSSHKey
from hcloud.zones import Zone, ZoneRecord, ZoneRRSet
from hetzner_spec import problems

from legion_nb.emulators.hetzner import RateLimit, create_app
from legion_nb.emulators.hetzner.app import READONLY_TOKEN
from legion_nb.emulators.httpkit import ThreadedEmulator, serve_in_thread
from legion_nb.emulators.world import SandboxWorld, Timing

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _ed25519_line(comment: str = "test") -> str:
    """A syntactically valid OpenSSH ed25519 public key with random key material."""
    kind = b"ssh-ed25519"
    blob = len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big") + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def _conforms(method: str, url: str, status: int, content: bytes, headers: Any) -> None:
    path = urlsplit(url).path.removeprefix("/v1")
    body = json.loads(content) if content else None
    found = problems(method, path, status, body, headers)
    assert not found, "the response departs from Hetzner's spec:\n" + "\n".join(found)


def _check_requests(response: requests.Response, *args: object, **kwargs: object) -> None:
    request = response.request
    _conforms(str(request.method), str(request.url), response.status_code, response.content, response.headers)


def _check_httpx(response: httpx.Response) -> None:
    response.read()
    request = response.request
    _conforms(request.method, str(request.url), response.status_code, response.content, response.headers)


def checked(client: Client) -> Client:
    """``client`` with every response checked against the spec (a hook on the SDK's requests session)."""
    client._client._session.hooks["response"].append(_check_requests)
    return client


def raw_client(hz: ThreadedEmulator, **headers: str) -> httpx.Client:
    """A plain HTTP client on the emulator whose responses are checked against the spec too."""
    auth = {"Authorization": f"Bearer {hz.emulator.credentials['token']}", **headers}
    return httpx.Client(base_url=hz.url, headers=auth, event_hooks={"response": [_check_httpx]})


@pytest.fixture
def hz(fast_world: SandboxWorld) -> Iterator[ThreadedEmulator]:
    with serve_in_thread(create_app, fast_world) as served:
        yield served


@pytest.fixture
def client(hz: ThreadedEmulator) -> Client:
    return checked(Client(token=hz.emulator.credentials["token"], api_endpoint=hz.url, poll_interval=0.02))


def _server(client: Client, name: str, key: BoundSSHKey | None = None, **labels: str) -> BoundServer:
    response = client.servers.create(
        name=name,
        server_type=ServerType(name="cx22"),
        image=Image(name="debian-12"),
        location=Location(name="fsn1"),
        ssh_keys=[key] if key else None,
        labels=labels or None,
    )
    response.action.wait_until_finished()
    for action in response.next_actions:
        action.wait_until_finished()
    return client.servers.get_by_id(response.server.id)


# -- catalog -------------------------------------------------------------------------------------


def test_catalog_lists_server_types_locations_and_images(client: Client) -> None:
    types = {t.name: t for t in client.server_types.get_all()}
    assert {"cx22", "cx32", "cpx11", "cax11"} <= set(types)
    cx22 = types["cx22"]
    assert (cx22.cores, cx22.memory, cx22.architecture) == (2, 4.0, "x86")
    fsn1 = next(p for p in cx22.prices if p["location"] == "fsn1")
    assert Decimal(fsn1["price_monthly"]["net"]) > 0
    assert Decimal(fsn1["price_monthly"]["gross"]) > Decimal(fsn1["price_monthly"]["net"])
    assert {p["location"] for p in types["cax11"].prices} == {"fsn1", "nbg1", "hel1"}

    assert {loc.name for loc in client.locations.get_all()} == {"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}

    arm = client.images.get_all(type="system", architecture="arm")
    assert arm and all(i.architecture == "arm" for i in arm)
    x86_names = {i.name for i in client.images.get_all(type="system", architecture="x86")}
    assert {"debian-12", "debian-13", "ubuntu-24.04"} <= x86_names
    assert client.images.get_by_name_and_architecture("debian-12", "x86") is not None

    pricing = client.request("GET", "/pricing")["pricing"]
    assert pricing["currency"] == "EUR"
    assert {st["name"] for st in pricing["server_types"]} == set(types)


def test_pagination_meta_and_per_page_cap(client: Client) -> None:
    page = client.server_types.get_list(page=2, per_page=4)
    assert page.meta.pagination.page == 2
    assert page.meta.pagination.previous_page == 1
    assert page.meta.pagination.next_page == 3
    assert page.meta.pagination.total_entries == len(page.server_types) + 4 + len(
        client.server_types.get_list(page=3, per_page=4).server_types
    )
    capped = client.request("GET", "/server_types", params={"per_page": 500})
    assert capped["meta"]["pagination"]["per_page"] == 50


# -- SSH keys ------------------------------------------------------------------------------------


def test_ssh_key_fingerprint_and_uniqueness(client: Client) -> None:
    line = _ed25519_line()
    key = client.ssh_keys.create(name="ops", public_key=line)
    blob = base64.b64decode(line.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    assert key.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    assert client.ssh_keys.get_by_fingerprint(key.fingerprint).id == key.id

    with pytest.raises(APIException) as same_name:
        client.ssh_keys.create(name="ops", public_key=_ed25519_line())
    assert same_name.value.code == "uniqueness_error"
    with pytest.raises(APIException) as same_key:
        client.ssh_keys.create(name="other", public_key=line)
    assert same_key.value.code == "uniqueness_error"
    with pytest.raises(APIException) as bad:
        client.ssh_keys.create(name="bad", public_key="ssh-ed25519 not-base64!")
    assert bad.value.code == "invalid_input"
    assert [k.name for k in client.ssh_keys.get_all()] == ["ops"]


# -- servers -------------------------------------------------------------------------------------


def test_create_server_waits_to_running_with_a_loopback_address(client: Client, hz: ThreadedEmulator) -> None:
    key = client.ssh_keys.create(name="k", public_key=_ed25519_line())
    response = client.servers.create(
        name="node-1",
        server_type=ServerType(name="cx22"),
        image=Image(name="debian-12"),
        location=Location(name="nbg1"),
        ssh_keys=[key],
        labels={"legion/managed": "true"},
    )
    assert response.root_password is None
    assert response.server.status == "initializing"
    assert response.action.command == "create_server"
    assert [a.command for a in response.next_actions] == ["start_server"]
    response.action.wait_until_finished()
    response.next_actions[0].wait_until_finished()

    server = client.servers.get_by_name("node-1")
    assert server.status == "running"
    assert server.location.name == "nbg1"
    assert server.server_type.name == "cx22"
    assert server.image.name == "debian-12"
    assert server.labels == {"legion/managed": "true"}
    ip = server.public_net.ipv4.ip
    assert ipaddress.ip_address(ip) in LOOPBACK and ip != "127.0.0.1"
    assert ip in hz.world.addresses.in_use()
    assert [a.command for a in server.get_actions()] == ["create_server", "start_server"]
    primary = client.primary_ips.get_by_id(server.public_net.primary_ipv4.id)
    assert (primary.ip, primary.assignee_id, primary.assignee_type) == (ip, server.id, "server")

    without_key = client.servers.create(
        name="node-2", server_type=ServerType(name="cpx11"), image=Image(name="ubuntu-24.04")
    )
    assert isinstance(without_key.root_password, str) and len(without_key.root_password) >= 12


def test_create_server_input_errors(client: Client) -> None:
    _server(client, "taken")
    with pytest.raises(APIException) as dup:
        _server(client, "taken")
    assert dup.value.code == "uniqueness_error"

    for field, kwargs in (
        ("server_type", {"server_type": ServerType(name="cx999")}),
        ("image", {"image": Image(name="plan9")}),
        ("location", {"location": Location(name="mars1")}),
    ):
        args = {
            "name": f"bad-{field.replace('_', '-')}",
            "server_type": ServerType(name="cx22"),
            "image": Image(name="debian-12"),
        }
        args.update(kwargs)
        with pytest.raises(APIException) as err:
            client.servers.create(**args)
        assert err.value.code == "invalid_input"
        assert err.value.details["fields"][0]["name"] == field
        assert err.value.correlation_id

    with pytest.raises(APIException) as arm_in_us:
        client.servers.create(
            name="arm",
            server_type=ServerType(name="cax11"),
            image=Image(name="debian-12"),
            location=Location(name="ash"),
        )
    assert arm_in_us.value.code == "invalid_input"
    assert [s.name for s in client.servers.get_all()] == ["taken"], "failed creates leave nothing behind"


def test_label_selectors(client: Client) -> None:
    _server(client, "a", role="web", env="prod")
    _server(client, "b", role="db", env="prod")
    _server(client, "c", role="web")

    def names(selector: str) -> list[str]:
        return sorted(s.name for s in client.servers.get_all(label_selector=selector))

    assert names("role=web") == ["a", "c"]
    assert names("role==web") == ["a", "c"]
    assert names("role!=web") == ["b"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c"]
    assert names("role in (db,web),env") == ["a", "b"]
    assert names("role notin (web)") == ["b"]
    assert names("role=web,env=prod") == ["a"]
    with pytest.raises(APIException) as bad:
        client.servers.get_all(label_selector="role=(")
    assert bad.value.code == "invalid_input"


def test_power_actions_rebuild_and_locking(client: Client, hz: ThreadedEmulator) -> None:
    server = _server(client, "p")
    server.power_off().wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "off"
    server.power_on().wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "running"

    hz.world.timing.action_seconds = 1.0  # keep the next action running while we poke at the server
    reboot = server.reboot()
    with pytest.raises(APIException) as locked:
        server.reset()
    assert locked.value.code == "locked"
    hz.world.timing.action_seconds = 0.05
    reboot.wait_until_finished(max_retries=400)

    rebuilt = server.rebuild(Image(name="debian-13"))
    assert rebuilt.root_password
    rebuilt.action.wait_until_finished()
    again = client.servers.get_by_id(server.id)
    assert (again.status, again.image.name) == ("running", "debian-13")


def test_delete_server_releases_its_address(client: Client, hz: ThreadedEmulator) -> None:
    server = _server(client, "gone")
    ip = server.public_net.ipv4.ip
    server.delete().wait_until_finished()
    with pytest.raises(APIException) as missing:
        client.servers.get_by_id(server.id)
    assert missing.value.code == "not_found"
    assert ip not in hz.world.addresses.in_use()


# -- firewalls -----------------------------------------------------------------------------------


def test_firewall_rules_apply_replace_and_delete(client: Client) -> None:
    server = _server(client, "fw-target", role="web")
    ssh = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0", "::/0"])
    created = client.firewalls.create(
        name="cluster", rules=[ssh], resources=[FirewallResource(type="server", server=server)]
    )
    for action in created.actions:
        action.wait_until_finished()
    assert [r.port for r in created.firewall.rules] == ["22"]
    assert [f.firewall.id for f in client.servers.get_by_id(server.id).public_net.firewalls] == [
        created.firewall.id
    ]

    https = FirewallRule(direction="in", protocol="tcp", port="443", source_ips=["0.0.0.0/0"])
    icmp = FirewallRule(direction="in", protocol="icmp", source_ips=["0.0.0.0/0"])
    for action in client.firewalls.set_rules(created.firewall, [https, icmp]):
        action.wait_until_finished()
    firewall = client.firewalls.get_by_id(created.firewall.id)
    assert [(r.protocol, r.port) for r in firewall.rules] == [("tcp", "443"), ("icmp", None)]

    with pytest.raises(APIException) as bad_rule:
        client.firewalls.set_rules(firewall, [FirewallRule(direction="in", protocol="tcp", source_ips=["x"])])
    assert bad_rule.value.code == "invalid_input"
    with pytest.raises(APIException) as in_use:
        client.firewalls.delete(firewall)
    assert in_use.value.code == "resource_in_use"

    selector = FirewallResource(
        type="label_selector", label_selector=FirewallResourceLabelSelector("role=web")
    )
    client.firewalls.apply_to_resources(firewall, [selector])
    applied = client.firewalls.get_by_id(firewall.id).applied_to
    assert {r.type for r in applied} == {"server", "label_selector"}
    client.firewalls.remove_from_resources(
        firewall, [FirewallResource(type="server", server=server), selector]
    )
    assert client.firewalls.delete(firewall) is True
    assert client.firewalls.get_all() == []


# -- floating IPs --------------------------------------------------------------------------------


def test_floating_ip_assign_and_unassign(client: Client, hz: ThreadedEmulator) -> None:
    server = _server(client, "fip-target")
    created = client.floating_ips.create(type="ipv4", home_location=Location(name="fsn1"), name="vip")
    assert created.action is None
    fip = created.floating_ip
    assert ipaddress.ip_address(fip.ip) in LOOPBACK
    fip.assign(server).wait_until_finished()
    assert client.floating_ips.get_by_id(fip.id).server.id == server.id
    assert [f.id for f in client.servers.get_by_id(server.id).public_net.floating_ips] == [fip.id]
    fip.unassign().wait_until_finished()
    assert client.floating_ips.get_by_id(fip.id).server is None
    assert fip.delete() is True
    assert fip.ip not in hz.world.addresses.in_use()


# -- DNS -----------------------------------------------------------------------------------------


def test_dns_zone_and_rrsets(client: Client) -> None:
    created = client.zones.create(
        name="example.com", mode="primary", ttl=300, labels={"legion/managed": "true"}
    )
    created.action.wait_until_finished()
    zone = client.zones.get("example.com")
    assert (zone.id, zone.ttl, zone.mode) == (created.zone.id, 300, "primary")
    assert {(r.name, r.type) for r in client.zones.get_rrset_all(zone)} == {("@", "SOA"), ("@", "NS")}

    www = client.zones.create_rrset(
        zone, name="www", type="A", ttl=60, records=[ZoneRecord(value="127.20.0.7", comment="node-1")]
    )
    www.action.wait_until_finished()
    assert www.rrset.id == "www/A"
    client.zones.create_rrset(zone, name="@", type="TXT", records=[ZoneRecord(value='"v=spf1 -all"')])
    with pytest.raises(APIException) as dup:
        client.zones.create_rrset(zone, name="www", type="A", records=[ZoneRecord(value="127.20.0.8")])
    assert dup.value.code == "uniqueness_error"
    for name, rtype, value in (
        ("api", "A", "not-an-ip"),
        ("api", "AAAA", "127.0.0.1"),
        ("api", "TXT", "unquoted"),
        ("api.example.com", "A", "127.20.0.8"),
        ("WWW", "A", "127.20.0.8"),
    ):
        with pytest.raises(APIException) as bad_value:
            client.zones.create_rrset(zone, name=name, type=rtype, records=[ZoneRecord(value=value)])
        assert bad_value.value.code == "invalid_input", (name, rtype, value)

    rrset = client.zones.get_rrset(zone, "www", "A")
    client.zones.add_rrset_records(rrset, [ZoneRecord(value="127.20.0.8")]).wait_until_finished()
    assert [r.value for r in client.zones.get_rrset(zone, "www", "A").records] == ["127.20.0.7", "127.20.0.8"]
    client.zones.remove_rrset_records(rrset, [ZoneRecord(value="127.20.0.7")]).wait_until_finished()
    client.zones.set_rrset_records(rrset, [ZoneRecord(value="127.20.0.9")]).wait_until_finished()
    client.zones.change_rrset_ttl(rrset, 120).wait_until_finished()
    rrset = client.zones.get_rrset(zone, "www", "A")
    assert ([r.value for r in rrset.records], rrset.ttl) == (["127.20.0.9"], 120)
    assert [r.name for r in client.zones.get_rrset_all(zone, type=["TXT"])] == ["@"]

    client.zones.delete_rrset(rrset).action.wait_until_finished()
    assert ("www", "A") not in {(r.name, r.type) for r in client.zones.get_rrset_all(zone)}
    with pytest.raises(APIException) as dup_zone:
        client.zones.create(name="example.com", mode="primary")
    assert dup_zone.value.code == "uniqueness_error"
    client.zones.delete(zone).action.wait_until_finished()
    assert client.zones.get_all() == []


# -- auth, rate limit, raw wire ------------------------------------------------------------------


def test_wrong_token_is_unauthorized_and_read_only_token_cannot_write(hz: ThreadedEmulator) -> None:
    wrong = checked(Client(token="nope", api_endpoint=hz.url))
    with pytest.raises(APIException) as err:
        wrong.servers.get_all()
    assert err.value.code == "unauthorized"

    readonly = checked(Client(token=hz.emulator.app[READONLY_TOKEN], api_endpoint=hz.url))
    assert readonly.servers.get_all() == []
    with pytest.raises(APIException) as ro:
        readonly.ssh_keys.create(name="k", public_key=_ed25519_line())
    assert ro.value.code == "token_readonly"


def test_raw_wire_headers_actions_filter_and_errors(hz: ThreadedEmulator, client: Client) -> None:
    server = _server(client, "wire")
    with raw_client(hz) as raw:
        response = raw.get("/servers")
        assert response.headers["X-Correlation-Id"]
        assert int(response.headers["RateLimit-Limit"]) == 3600
        assert 0 < int(response.headers["RateLimit-Remaining"]) < 3600
        assert int(response.headers["RateLimit-Reset"]) > 0

        missing_filter = raw.get("/actions")
        assert missing_filter.status_code == 400
        assert missing_filter.json()["error"]["code"] == "invalid_input"
        ids = [a.id for a in server.get_actions()]
        listed = raw.get("/actions", params=[("id", str(i)) for i in ids]).json()["actions"]
        assert sorted(a["id"] for a in listed) == sorted(ids)
        assert all(a["status"] == "success" and a["progress"] == 100 for a in listed)

        not_json = raw.post("/servers", content=b"{nope", headers={"Content-Type": "application/json"})
        assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "json_error")
        unknown = raw.get("/no_such_collection")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")


def test_rate_limit_bucket_answers_429_when_empty() -> None:
    world = SandboxWorld(9, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    limit = RateLimit(capacity=3, refill_per_second=0.001)
    with serve_in_thread(lambda w: create_app(w, rate_limit=limit), world) as hz:
        with raw_client(hz) as raw:
            statuses = [raw.get("/locations").status_code for _ in range(3)]
            limited = raw.get("/locations")
        assert statuses == [200, 200, 200]
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert limited.headers["RateLimit-Remaining"] == "0"


def test_drop_after_commit_leaves_the_key_created_but_the_client_uninformed(hz: ThreadedEmulator) -> None:
    client = checked(Client(token=hz.emulator.credentials["token"], api_endpoint=hz.url))
    hz.world.faults.weights = {"drop_after_commit": 1.0}
    hz.world.faults.rate = 1.0
    with pytest.raises(requests.ConnectionError):
        client.ssh_keys.create(name="ambiguous", public_key=_ed25519_line())
    hz.world.faults.rate = 0.0
    assert [k.name for k in client.ssh_keys.get_all()] == ["ambiguous"], "the call landed before the drop"
    with pytest.raises(APIException) as retry:
        client.ssh_keys.create(name="ambiguous", public_key=_ed25519_line())
    assert retry.value.code == "uniqueness_error", "a blind retry proves the first call landed"


# -- fidelity: behaviour the real API has, each checked against it --------------------------------


def test_paged_lists_carry_a_link_header_that_keeps_the_query(hz: ThreadedEmulator) -> None:
    with raw_client(hz) as raw:
        response = raw.get("/server_types", params={"page": 2, "per_page": 3, "architecture": "x86"})
    links: dict[str, dict[str, list[str]]] = {}
    for part in response.headers["Link"].split(","):
        url, _, rel = part.strip().partition("; ")
        links[rel.removeprefix('rel="').removesuffix('"')] = parse_qs(urlsplit(url.strip("<>")).query)
    last = response.json()["meta"]["pagination"]["last_page"]
    assert [links[r]["page"] for r in ("prev", "next", "last")] == [["1"], ["3"], [str(last)]]
    assert all(q["per_page"] == ["3"] and q["architecture"] == ["x86"] for q in links.values())
    with raw_client(hz) as raw:
        single = raw.get("/locations")
    [only] = single.headers["Link"].split(", ")
    assert only.endswith('>; rel="last"'), "one page: no prev, no next"
    assert parse_qs(urlsplit(only.split(">")[0].strip("<")).query)["page"] == ["1"]


def test_change_type_needs_a_stopped_server_422_server_not_stopped(client: Client) -> None:
    server = _server(client, "resize")
    with pytest.raises(APIException) as running:
        server.change_type(ServerType(name="cx32"), upgrade_disk=False)
    assert running.value.code == "server_not_stopped"
    server.power_off().wait_until_finished()
    action = server.change_type(ServerType(name="cx32"), upgrade_disk=False)
    assert action.command == "change_server_type"
    action.wait_until_finished()
    assert client.servers.get_by_id(server.id).server_type.name == "cx32"


def test_rescue_mode_is_enabled_disabled_and_consumed_by_a_boot(client: Client) -> None:
    key = client.ssh_keys.create(name="rescue", public_key=_ed25519_line())
    server = _server(client, "rescued", key)
    # The SDK annotates ssh_keys as strings; the spec (and the SDK's docstring) say key IDs, integers.
    enabled = server.enable_rescue(type="linux64", ssh_keys=[key.id])  # type: ignore[list-item]
    assert enabled.root_password and enabled.action.command == "enable_rescue"
    enabled.action.wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is True
    disabled = server.disable_rescue()
    assert disabled.command == "disable_rescue"
    disabled.wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is False

    server.enable_rescue().action.wait_until_finished()
    server.reboot().wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is False, "booting into rescue consumes it"
    with pytest.raises(APIException) as unknown_key:
        server.enable_rescue(ssh_keys=[1])  # type: ignore[list-item]
    assert unknown_key.value.code == "invalid_input"


def test_new_servers_get_an_ipv6_64_outside_anything_dialable(client: Client, hz: ThreadedEmulator) -> None:
    server = _server(client, "dual-stack")
    ipv4 = server.public_net.ipv4.ip
    ipv6 = server.public_net.ipv6
    block = ipaddress.ip_network(ipv6.ip)
    assert (block.prefixlen, ipv6.network_mask) == (64, "64")
    assert block.subnet_of(ipaddress.ip_network("2001:db8::/32")), "documentation prefix, never routed"
    assert int(block.network_address) >> 64 & 0xFFFFFFFF == int(ipaddress.ip_address(ipv4)), "embeds the IPv4"
    primary = client.primary_ips.get_by_id(server.public_net.primary_ipv6.id)
    assert (primary.type, primary.ip, primary.assignee_id, primary.auto_delete) == (
        "ipv6",
        ipv6.ip,
        server.id,
        True,
    )
    assert all(ipaddress.ip_address(a) in LOOPBACK for a in hz.world.addresses.in_use())

    response = client.servers.create(
        name="v4-only",
        server_type=ServerType(name="cx22"),
        image=Image(name="debian-12"),
        public_net=ServerCreatePublicNetwork(enable_ipv6=False),
    )
    assert response.server.public_net.ipv6 is None
    with pytest.raises(APIException) as no_v4:
        client.servers.create(
            name="v6-only",
            server_type=ServerType(name="cx22"),
            image=Image(name="debian-12"),
            public_net=ServerCreatePublicNetwork(enable_ipv4=False),
        )
    assert no_v4.value.code == "invalid_input"


def test_deleting_an_assigned_floating_ip_is_422_must_be_unassigned(client: Client) -> None:
    server = _server(client, "fip-holder")
    created = client.floating_ips.create(type="ipv4", server=Server(id=server.id))
    created.action.wait_until_finished()
    fip = created.floating_ip
    with pytest.raises(APIException) as assigned:
        client.floating_ips.delete(fip)
    assert assigned.value.code == "must_be_unassigned"
    assert client.floating_ips.get_by_id(fip.id).server.id == server.id, "nothing was deleted"
    client.floating_ips.unassign(fip).wait_until_finished()
    assert client.floating_ips.delete(fip) is True


def test_primary_ips_are_created_used_by_a_new_server_and_deleted_when_unassigned(
    client: Client, hz: ThreadedEmulator
) -> None:
    created = client.primary_ips.create(type="ipv4", name="kept", location=Location(name="fsn1"))
    assert created.action is None
    kept = created.primary_ip
    assert ipaddress.ip_address(kept.ip) in LOOPBACK and kept.assignee_id is None
    assert kept.auto_delete is False
    v6 = client.primary_ips.create(type="ipv6", name="kept-v6", location=Location(name="fsn1")).primary_ip
    assert ipaddress.ip_network(v6.ip).prefixlen == 64

    response = client.servers.create(
        name="on-kept",
        server_type=ServerType(name="cx22"),
        image=Image(name="debian-12"),
        location=Location(name="fsn1"),
        public_net=ServerCreatePublicNetwork(ipv4=PrimaryIP(id=kept.id), ipv6=PrimaryIP(id=v6.id)),
    )
    response.action.wait_until_finished()
    server = response.server
    assert (server.public_net.ipv4.ip, server.public_net.ipv6.ip) == (kept.ip, v6.ip)
    with pytest.raises(APIException) as taken:
        client.servers.create(
            name="on-taken",
            server_type=ServerType(name="cx22"),
            image=Image(name="debian-12"),
            location=Location(name="fsn1"),
            public_net=ServerCreatePublicNetwork(ipv4=PrimaryIP(id=kept.id)),
        )
    assert taken.value.code == "primary_ip_assigned"
    with pytest.raises(APIException) as assigned:
        client.primary_ips.delete(kept)
    assert assigned.value.code == "must_be_unassigned"
    with pytest.raises(APIException) as running:
        client.primary_ips.create(type="ipv6", name="late", assignee_id=server.id, assignee_type="server")
    assert running.value.code == "server_not_stopped"

    client.servers.delete(server).wait_until_finished()
    left = client.primary_ips.get_by_id(kept.id)
    assert left.assignee_id is None and kept.ip in hz.world.addresses.in_use(), "auto_delete off: kept"
    assert client.primary_ips.delete(left) is True
    assert kept.ip not in hz.world.addresses.in_use()
    assert {p.name for p in client.primary_ips.get_all()} == {"kept-v6"}


def test_applying_a_firewall_to_a_missing_server_is_404_firewall_resource_not_found(client: Client) -> None:
    firewall = client.firewalls.create(name="lonely").firewall
    with pytest.raises(APIException) as missing:
        client.firewalls.apply_to_resources(
            firewall, [FirewallResource(type="server", server=Server(id=987654321))]
        )
    assert missing.value.code == "firewall_resource_not_found"
    with pytest.raises(APIException) as at_create:
        client.firewalls.create(
            name="born-lonely", resources=[FirewallResource(type="server", server=Server(id=987654321))]
        )
    assert at_create.value.code == "firewall_resource_not_found"
    assert client.firewalls.get_by_id(firewall.id).applied_to == []


def test_add_records_creates_a_missing_rrset_as_acme_clients_expect(client: Client) -> None:
    zone = client.zones.create(name="acme.example", mode="primary").zone
    challenge = ZoneRRSet(zone=Zone(name="acme.example"), name="_acme-challenge", type="TXT")
    action = client.zones.add_rrset_records(challenge, [ZoneRecord(value='"token-1"')], ttl=60)
    assert action.command == "add_rrset_records"
    action.wait_until_finished()
    rrset = client.zones.get_rrset(zone, "_acme-challenge", "TXT")
    assert ([r.value for r in rrset.records], rrset.ttl) == (['"token-1"'], 60)
    client.zones.add_rrset_records(challenge, [ZoneRecord(value='"token-2"')]).wait_until_finished()
    assert [r.value for r in client.zones.get_rrset(zone, "_acme-challenge", "TXT").records] == [
        '"token-1"',
        '"token-2"',
    ]
    with pytest.raises(APIException) as bad:
        client.zones.add_rrset_records(
            ZoneRRSet(zone=zone, name="Bad Name", type="TXT"), [ZoneRecord(value='"x"')]
        )
    assert bad.value.code == "invalid_input"


def test_zone_and_rrset_actions_report_the_real_command_names(client: Client) -> None:
    zone = client.zones.create(name="names.example", mode="primary", ttl=300).zone
    rrset = client.zones.create_rrset(
        zone, name="www", type="A", records=[ZoneRecord(value="127.20.0.7")]
    ).rrset
    commands = [
        client.zones.add_rrset_records(rrset, [ZoneRecord(value="127.20.0.8")]).command,
        client.zones.update_rrset_records(rrset, [ZoneRecord(value="127.20.0.8", comment="b")]).command,
        client.zones.remove_rrset_records(rrset, [ZoneRecord(value="127.20.0.8")]).command,
        client.zones.set_rrset_records(rrset, [ZoneRecord(value="127.20.0.9")]).command,
        client.zones.change_rrset_ttl(rrset, 120).command,
        client.zones.change_rrset_protection(rrset, change=False).command,
        client.zones.change_ttl(zone, 600).command,
        client.zones.change_protection(zone, delete=False).command,
        client.zones.delete_rrset(rrset).action.command,
        client.zones.delete(zone).action.command,
    ]
    assert commands == [
        "add_rrset_records",
        "update_rrset_records",
        "remove_rrset_records",
        "set_rrset_records",
        "change_rrset_ttl",
        "change_rrset_protection",
        "change_ttl",
        "change_protection",
        "delete_rrset",
        "delete_zone",
    ]


def test_images_and_pricing_have_every_field_the_spec_requires(client: Client, hz: ThreadedEmulator) -> None:
    image = client.images.get_by_name_and_architecture("debian-12", "x86")
    assert client.request("GET", f"/images/{image.id}")["image"]["deleted"] is None
    server = _server(client, "imaged")
    assert client.request("GET", f"/servers/{server.id}")["server"]["image"]["deleted"] is None
    pricing = client.request("GET", "/pricing")["pricing"]
    assert Decimal(pricing["volume"]["price_per_gb_month"]["net"]) > 0
    assert {lb["name"] for lb in pricing["load_balancer_types"]} == {"lb11", "lb21", "lb31"}
    assert {p["type"] for p in pricing["primary_ips"]} == {"ipv4", "ipv6"}
    with raw_client(hz) as raw:
        raw.get("/images")  # the hook checks every image in the list


def test_the_spec_checker_flags_what_the_spec_does_not_document() -> None:
    """The checker is not vacuous: each gap it exists for is reported."""
    nullable = ["name", "image_size", "created_from", "bound_to", "os_version", "deprecated"]
    present = ["id", "type", "status", "description", "disk_size", "created", "os_flavor", "labels"]
    image: dict[str, Any] = {key: None for key in nullable} | {key: "x" for key in [*present, "architecture"]}
    image["protection"] = {"delete": False}
    assert problems("GET", "/images/1", 200, {"image": image}, {}) == [
        "GET /images/1 -> 200.image.deleted: required field missing"
    ]
    action = {"action": {"id": 1, "command": "delete_zone", "status": "running", "progress": 0}}
    action["action"] |= {"started": "now", "finished": None, "resources": [], "error": None}
    assert problems("DELETE", "/zones/1", 200, action, {}) == ["DELETE /zones/1 -> 200: the spec answers 201"]
    assert problems("DELETE", "/zones/1", 201, action, {}) == []
    pagination: dict[str, Any] = {"page": 1, "per_page": 25}
    pagination |= {k: None for k in ("previous_page", "next_page", "last_page", "total_entries")}
    listing = {"locations": [], "meta": {"pagination": pagination}}
    assert problems("GET", "/locations", 200, listing, {}) == [
        "GET /locations -> 200: paged list without a Link header"
    ]
    error = {"error": {"code": "server_not_stopped", "message": "off first"}}
    assert problems("POST", "/servers/1/actions/change_type", 409, error, {}) == [
        "POST /servers/1/actions/change_type -> 409: "
        "error code 'server_not_stopped' is documented with status 422"
    ]
    assert problems("GET", "/volumes", 200, {}, {}) == [
        "GET /volumes -> 200: no documented operation in the table"
    ]
