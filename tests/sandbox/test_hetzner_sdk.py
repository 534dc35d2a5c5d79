"""The Hetzner emulator driven by the official ``hcloud`` SDK, with only ``api_endpoint`` changed."""

# hcloud's domain models type every field Optional; these tests assert the values are there.
# mypy: disable-error-code="union-attr,arg-type,misc"

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import requests
from hcloud import APIException, Client
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer
from hcloud.ssh_keys import BoundSSHKey
from hcloud.zones import ZoneRecord

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


@pytest.fixture
def hz(fast_world: SandboxWorld) -> Iterator[ThreadedEmulator]:
    with serve_in_thread(create_app, fast_world) as served:
        yield served


@pytest.fixture
def client(hz: ThreadedEmulator) -> Client:
    return Client(token=hz.emulator.credentials["token"], api_endpoint=hz.url, poll_interval=0.02)


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
    wrong = Client(token="nope", api_endpoint=hz.url)
    with pytest.raises(APIException) as err:
        wrong.servers.get_all()
    assert err.value.code == "unauthorized"

    readonly = Client(token=hz.emulator.app[READONLY_TOKEN], api_endpoint=hz.url)
    assert readonly.servers.get_all() == []
    with pytest.raises(APIException) as ro:
        readonly.ssh_keys.create(name="k", public_key=_ed25519_line())
    assert ro.value.code == "token_readonly"


def test_raw_wire_headers_actions_filter_and_errors(hz: ThreadedEmulator, client: Client) -> None:
    server = _server(client, "wire")
    auth = {"Authorization": f"Bearer {hz.emulator.credentials['token']}"}
    with httpx.Client(base_url=hz.url, headers=auth) as raw:
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
        auth = {"Authorization": f"Bearer {hz.emulator.credentials['token']}"}
        with httpx.Client(base_url=hz.url, headers=auth) as raw:
            statuses = [raw.get("/locations").status_code for _ in range(3)]
            limited = raw.get("/locations")
        assert statuses == [200, 200, 200]
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert limited.headers["RateLimit-Remaining"] == "0"


def test_drop_after_commit_leaves_the_key_created_but_the_client_uninformed(hz: ThreadedEmulator) -> None:
    client = Client(token=hz.emulator.credentials["token"], api_endpoint=hz.url)
    hz.world.faults.weights = {"drop_after_commit": 1.0}
    hz.world.faults.rate = 1.0
    with pytest.raises(requests.ConnectionError):
        client.ssh_keys.create(name="ambiguous", public_key=_ed25519_line())
    hz.world.faults.rate = 0.0
    assert [k.name for k in client.ssh_keys.get_all()] == ["ambiguous"], "the call landed before the drop"
    with pytest.raises(APIException) as retry:
        client.ssh_keys.create(name="ambiguous", public_key=_ed25519_line())
    assert retry.value.code == "uniqueness_error", "a blind retry proves the first call landed"
