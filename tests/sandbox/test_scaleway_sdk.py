"""The official ``scaleway`` SDK, unchanged but for ``api_url``, against the Scaleway emulator."""
# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
import scaleway
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from scaleway.billing.v2beta1 import BillingV2Beta1API, InvoiceType, ListInvoicesRequestOrderBy
from scaleway.domain.v2beta1 import DomainV2Beta1API
from scaleway.domain.v2beta1.types import (
    Record,
    RecordChange,
    RecordChangeAdd,
    RecordChangeDelete,
    RecordChangeSet,
    RecordIdentifier,
    RecordType,
)
from scaleway.iam.v1alpha1 import IamV1Alpha1API
from scaleway.instance.v1 import InstanceV1API, ServerAction
from scaleway.instance.v1.custom_api import InstanceUtilsV1API
from scaleway.instance.v1.types import SetSecurityGroupRulesRequestRule
from scaleway.marketplace.v2 import MarketplaceV2API
from scaleway_core.api import ScalewayException
from sdkkit import scaleway_client

from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.httpkit import ThreadedEmulator, serve_in_thread
from legion_nb.emulators.scaleway import ACCOUNT_KEY, create_app
from legion_nb.emulators.scaleway.store import ServerUsage
from legion_nb.emulators.world import SandboxWorld, Timing

ZONE = "fr-par-1"


@pytest.fixture
def emulator(fast_world: SandboxWorld) -> Iterator[ThreadedEmulator]:
    with serve_in_thread(create_app, fast_world) as served:
        yield served


def sdk_client(emulator: ThreadedEmulator, *, secret_key: str | None = None) -> scaleway.Client:
    return scaleway_client(emulator.emulator.credentials, emulator.url, secret_key=secret_key)


@pytest.fixture
def client(emulator: ThreadedEmulator) -> scaleway.Client:
    return sdk_client(emulator)


def public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{raw} operator@example"


def wait_state(api: InstanceV1API, server_id: str, state: str) -> None:
    for _ in range(200):
        if api.get_server(server_id=server_id).server.state == state:
            return
        time.sleep(0.01)
    raise AssertionError(f"server {server_id} never reached {state}")


def test_credentials_block_passes_the_sdk_validation(emulator: ThreadedEmulator) -> None:
    creds = emulator.emulator.credentials
    assert set(creds) == {"access_key", "secret_key", "project_id", "organization_id", "zone"}
    assert sdk_client(emulator).validate()
    assert emulator.emulator.prefix == ""


def test_catalog_server_types_availability_and_images(client: scaleway.Client) -> None:
    api = InstanceV1API(client)
    types = api.list_servers_types().servers
    assert {"DEV1-S", "DEV1-M", "PLAY2-PICO", "PRO2-XXS"} <= set(types)
    dev1s = types["DEV1-S"]
    assert dev1s.ncpus == 2 and dev1s.ram == 2 * 1024**3 and dev1s.hourly_price > 0
    assert dev1s.monthly_price and dev1s.monthly_price > dev1s.hourly_price
    assert "COPARM1-2C-8G" not in types  # only sold in fr-par-2
    assert "COPARM1-2C-8G" in api.list_servers_types(zone="fr-par-2").servers
    availability = api.get_server_types_availability(zone="pl-waw-1").servers
    assert availability["PRO2-XS"].availability == "shortage"
    images = api.list_images_all()
    assert {i.name for i in images} >= {"Debian Bookworm", "Debian Trixie"}
    local = MarketplaceV2API(client).list_local_images(image_label="debian_bookworm", zone=ZONE).local_images
    assert {i.arch for i in local} == {"x86_64", "arm64"}
    x86 = next(i for i in local if i.arch == "x86_64")
    assert "DEV1-S" in x86.compatible_commercial_types
    assert x86.id in {i.id for i in images}


def test_ssh_key_create_list_delete(client: scaleway.Client) -> None:
    iam = IamV1Alpha1API(client)
    key = iam.create_ssh_key(name="operator", public_key=public_key())
    assert key.fingerprint.startswith("256 SHA256:") and key.project_id == client.default_project_id
    assert [k.id for k in iam.list_ssh_keys_all()] == [key.id]
    with pytest.raises(ScalewayException) as err:
        iam.create_ssh_key(name="again", public_key=key.public_key)
    assert err.value.status_code == 409
    with pytest.raises(ScalewayException) as bad:
        iam.create_ssh_key(name="junk", public_key="ssh-ed25519 not-base64!")
    body = json.loads(str(bad.value))
    assert body["type"] == "invalid_arguments" and body["details"][0]["argument_name"] == "public_key"
    iam.delete_ssh_key(ssh_key_id=key.id)
    assert iam.list_ssh_keys().total_count == 0


def test_server_create_power_on_list_by_tag_and_delete(
    emulator: ThreadedEmulator, client: scaleway.Client
) -> None:
    api = InstanceUtilsV1API(client)
    tags = ["legion/managed=true", "legion/id=7b0c3c0e-0f6b-4e5e-9d9a-2f6f1a1b2c3d"]
    created = api.create_server(commercial_type="DEV1-S", name="node-1", image="debian_bookworm", tags=tags)
    server = created.server
    assert server.state == "stopped" and server.tags == tags
    assert server.image.name == "Debian Bookworm"
    address = server.public_ip.address
    assert ipaddress.ip_address(address) in ipaddress.ip_network("127.0.0.0/8")
    twin = api.create_server(commercial_type="DEV1-S", name="node-1", image="debian_bookworm")
    assert twin.server.id != server.id  # names are not unique

    task = api.server_action(server_id=server.id, action=ServerAction.POWERON).task
    assert task.status == "pending" and task.description == "server_poweron"
    wait_state(api, server.id, "running")

    by_tag = api.list_servers_all(tags=tags[1:])
    assert [s.id for s in by_tag] == [server.id]
    assert len(api.list_servers_all(name="node-1")) == 2
    assert len(api.list_servers_all(per_page=1)) == 2

    with pytest.raises(ScalewayException) as running:
        api.delete_server(server_id=server.id)
    assert running.value.status_code == 400
    api.server_action(server_id=server.id, action=ServerAction.TERMINATE)
    for _ in range(200):
        if not api.list_servers_all(tags=tags[1:]):
            break
        time.sleep(0.01)
    assert not api.list_servers_all(tags=tags[1:])
    assert address not in emulator.world.addresses.in_use()
    api.delete_server(server_id=twin.server.id)
    with pytest.raises(ScalewayException) as gone:
        api.get_server(server_id=twin.server.id)
    assert gone.value.status_code == 404
    assert json.loads(str(gone.value))["type"] == "not_found"


def test_server_in_transition_refuses_actions_with_transient_state(client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    server = api.create_server(commercial_type="DEV1-S", image="debian_trixie").server
    api.server_action(server_id=server.id, action=ServerAction.POWERON)
    state = api.get_server(server_id=server.id).server.state
    if state == "starting":
        with pytest.raises(ScalewayException) as err:
            api.server_action(server_id=server.id, action=ServerAction.POWEROFF)
        assert json.loads(str(err.value))["type"] == "transient_state"
    wait_state(api, server.id, "running")
    with pytest.raises(ScalewayException) as again:
        api.server_action(server_id=server.id, action=ServerAction.POWERON)
    assert again.value.status_code == 400


def test_create_errors_name_the_argument(client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    cases = [
        ({"commercial_type": "DEV9-XL", "image": "debian_bookworm"}, "commercial_type"),
        ({"commercial_type": "DEV1-S", "image": "windows_95"}, "image"),
    ]
    for kwargs, argument in cases:
        with pytest.raises(ScalewayException) as err:
            api.create_server(**kwargs)
        body = json.loads(str(err.value))
        assert err.value.status_code == 400
        assert body["type"] == "invalid_arguments" and body["details"][0]["argument_name"] == argument
    with pytest.raises(ScalewayException) as stock:
        api.create_server(zone="pl-waw-1", commercial_type="PRO2-XS", image="debian_bookworm")
    assert json.loads(str(stock.value))["type"] == "out_of_stock"
    assert api.list_servers_all() == []


def test_security_group_rules_are_replaced_and_attached(client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    group = api.create_security_group(
        name="legion-cluster",
        description="cluster",
        stateful=True,
        tags=["legion/managed=true"],
        enable_default_security=True,
    ).security_group
    fixed = api.list_security_group_rules_all(security_group_id=group.id)
    assert fixed and all(not r.editable for r in fixed)
    rules = [
        SetSecurityGroupRulesRequestRule(
            action="accept",
            protocol="tcp",
            direction="inbound",
            ip_range="0.0.0.0/0",
            position=1,
            dest_port_from=22,
            dest_port_to=22,
            editable=True,
        ),
        SetSecurityGroupRulesRequestRule(
            action="accept",
            protocol="udp",
            direction="inbound",
            ip_range="10.0.0.0/8",
            position=2,
            dest_port_from=51820,
            dest_port_to=None,
            editable=True,
        ),
    ]
    api.set_security_group_rules(security_group_id=group.id, rules=rules)
    listed = api.list_security_group_rules_all(security_group_id=group.id)
    editable = [r for r in listed if r.editable]
    assert {(r.protocol, r.dest_port_from) for r in editable} == {("TCP", 22), ("UDP", 51820)}
    assert len(listed) == len(fixed) + 2
    api.set_security_group_rules(security_group_id=group.id, rules=rules[:1])
    assert len([r for r in api.list_security_group_rules_all(security_group_id=group.id) if r.editable]) == 1

    server = api.create_server(
        commercial_type="DEV1-S", image="debian_bookworm", security_group=group.id
    ).server
    assert server.security_group.id == group.id
    assert [s.id for s in api.get_security_group(security_group_id=group.id).security_group.servers] == [
        server.id
    ]
    with pytest.raises(ScalewayException) as in_use:
        api.delete_security_group(security_group_id=group.id)
    assert in_use.value.status_code == 409
    api.delete_server(server_id=server.id)
    api.delete_security_group(security_group_id=group.id)


def test_dns_zone_records_add_set_delete(client: scaleway.Client) -> None:
    dns = DomainV2Beta1API(client)
    zone = dns.create_dns_zone(domain="example.com", subdomain="lab")
    assert (zone.domain, zone.subdomain, zone.status) == ("example.com", "lab", "active")
    assert [z.subdomain for z in dns.list_dns_zones_all(domain="example.com")] == ["lab"]

    def a(name: str, data: str) -> Record:
        return Record(data=data, name=name, priority=0, ttl=300, type_=RecordType.A, id="")

    add = RecordChange(add=RecordChangeAdd(records=[a("www", "127.20.0.2"), a("www", "127.20.0.3")]))
    dns.update_dns_zone_records(dns_zone="lab.example.com", changes=[add], disallow_new_zone_creation=True)
    www = dns.list_dns_zone_records_all(dns_zone="lab.example.com", name="www")
    assert sorted(r.data for r in www) == ["127.20.0.2", "127.20.0.3"]

    ident = RecordIdentifier(name="www", type_=RecordType.A)
    set_ = RecordChange(set_=RecordChangeSet(id_fields=ident, records=[a("www", "127.20.0.9")]))
    dns.update_dns_zone_records(dns_zone="lab.example.com", changes=[set_], disallow_new_zone_creation=True)
    assert [r.data for r in dns.list_dns_zone_records_all(dns_zone="lab.example.com", name="www")] == [
        "127.20.0.9"
    ]

    delete = RecordChange(delete=RecordChangeDelete(id_fields=ident))
    dns.update_dns_zone_records(dns_zone="lab.example.com", changes=[delete], disallow_new_zone_creation=True)
    remaining = dns.list_dns_zone_records_all(dns_zone="lab.example.com", name="")
    assert {r.type_ for r in remaining} == {"NS"}

    bad = RecordChange(add=RecordChangeAdd(records=[a("api", "not-an-ip")]))
    with pytest.raises(ScalewayException) as err:
        dns.update_dns_zone_records(
            dns_zone="lab.example.com", changes=[bad], disallow_new_zone_creation=True
        )
    assert json.loads(str(err.value))["details"][0]["argument_name"] == "data"
    with pytest.raises(ScalewayException) as missing:
        dns.update_dns_zone_records(
            dns_zone="nowhere.example.org", changes=[add], disallow_new_zone_creation=True
        )
    assert missing.value.status_code == 404
    dns.delete_dns_zone(dns_zone="lab.example.com")
    assert dns.list_dns_zones(domain="").total_count == 0


def test_flexible_ip_attach_and_release(emulator: ThreadedEmulator, client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    ip = api.create_ip(type_="routed_ipv4", tags=["legion/managed=true"]).ip
    assert ipaddress.ip_address(ip.address) in ipaddress.ip_network("127.0.0.0/8")
    server = api.create_server(
        commercial_type="DEV1-S", image="debian_bookworm", public_ips=[ip.id], dynamic_ip_required=False
    ).server
    assert [p.address for p in server.public_ips] == [ip.address]
    assert api.get_ip(ip=ip.id).ip.server.id == server.id
    api.delete_server(server_id=server.id)
    assert api.get_ip(ip=ip.id).ip.server is None
    api.delete_ip(ip=ip.id)
    assert ip.address not in emulator.world.addresses.in_use()


def test_ids_are_found_only_in_their_own_zone(client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    server = api.create_server(commercial_type="DEV1-S", image="debian_bookworm").server
    ip = api.create_ip(type_="routed_ipv4").ip
    group = api.create_security_group(name="web", description="web", stateful=True).security_group
    other = "nl-ams-1"
    lookups = {
        "instance_server": lambda: api.get_server(server_id=server.id, zone=other),
        "instance_ip": lambda: api.get_ip(ip=ip.id, zone=other),
        "instance_security_group": lambda: api.get_security_group(security_group_id=group.id, zone=other),
    }
    for kind, lookup in lookups.items():
        with pytest.raises(ScalewayException) as err:
            lookup()
        assert err.value.status_code == 404
        body = json.loads(str(err.value))
        assert (body["type"], body["resource"]) == ("not_found", kind)
    with pytest.raises(ScalewayException) as err:
        api.create_ip(type_="routed_ipv4", server=server.id, zone=other)
    assert err.value.status_code == 404
    assert json.loads(str(err.value))["resource"] == "instance_server"
    assert api.get_server(server_id=server.id).server.zone == ZONE
    assert api.get_ip(ip=ip.id).ip.server is None


def test_wrong_secret_gets_the_sdk_error_and_request_id(emulator: ThreadedEmulator) -> None:
    wrong = sdk_client(emulator, secret_key="00000000-0000-4000-8000-000000000000")
    with pytest.raises(ScalewayException) as err:
        InstanceV1API(wrong).list_servers()
    assert err.value.status_code == 401
    body = json.loads(str(err.value))
    assert body["type"] == "denied_authentication" and body["method"] == "api_key"
    assert err.value.response.headers["x-request-id"]
    bare = requests.get(f"{emulator.url}/instance/v1/zones/{ZONE}/servers", timeout=10)
    assert bare.status_code == 401 and bare.json()["type"] == "denied_authentication"


def test_paging_limits(emulator: ThreadedEmulator) -> None:
    headers = {"X-Auth-Token": emulator.emulator.credentials["secret_key"]}
    url = f"{emulator.url}/instance/v1/zones/{ZONE}/products/servers"
    first = requests.get(url, params={"per_page": 2, "page": 1}, headers=headers, timeout=10)
    assert len(first.json()["servers"]) == 2 and int(first.headers["X-Total-Count"]) >= 7
    too_big = requests.get(url, params={"per_page": 101}, headers=headers, timeout=10)
    assert too_big.status_code == 400 and too_big.json()["details"][0]["argument_name"] == "per_page"
    unknown_zone = requests.get(
        f"{emulator.url}/instance/v1/zones/mars-1/servers", headers=headers, timeout=10
    )
    assert unknown_zone.status_code == 400


def test_user_data_round_trip(client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    server = api.create_server(commercial_type="DEV1-S", image="debian_bookworm").server
    api.set_server_user_data(server_id=server.id, key="cloud-init", content=b"#cloud-config\n")
    assert api.list_server_user_data(server_id=server.id).user_data == ["cloud-init"]
    assert api.get_server_user_data(server_id=server.id, key="cloud-init").content == b"#cloud-config\n"
    api.delete_server_user_data(server_id=server.id, key="cloud-init")
    assert api.list_server_user_data(server_id=server.id).user_data == []


def test_quota_and_foreign_project_are_refused_with_scaleway_bodies() -> None:
    world = SandboxWorld(seed=3, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with serve_in_thread(lambda w: create_app(w, servers_per_zone=1), world) as served:
        api = InstanceUtilsV1API(sdk_client(served))
        api.create_server(commercial_type="DEV1-S", image="debian_bookworm")
        with pytest.raises(ScalewayException) as quota:
            api.create_server(commercial_type="DEV1-S", image="debian_bookworm")
        body = json.loads(str(quota.value))
        assert quota.value.status_code == 403 and body["type"] == "quotas_exceeded"
        assert body["details"] == [{"resource": "instances", "quota": 1, "current": 1}]
        with pytest.raises(ScalewayException) as foreign:
            api.list_servers(project="00000000-0000-4000-8000-00000000beef")
        assert json.loads(str(foreign.value))["type"] == "permissions_denied"


def test_injected_faults_answer_in_scaleway_shape() -> None:
    faults = FaultPlan(rate=1.0, seed=5, weights={"rate_limited": 1.0})
    world = SandboxWorld(seed=5, timing=Timing(action_seconds=0.05, boot_seconds=0.05), faults=faults)
    with serve_in_thread(create_app, world) as served:
        with pytest.raises(ScalewayException) as err:
            InstanceV1API(sdk_client(served)).list_servers()
        response = err.value.response
        assert response.status_code == 429 and response.json()["type"] == "too_many_requests"
        assert response.headers["x-request-id"] and response.headers["Retry-After"]
        assert world.counters.snapshot()["scaleway"] == {"GET /instance/v1/zones/{zone}/servers": 1}


def test_billing_consumptions_cover_deleted_servers(client: scaleway.Client) -> None:
    api = InstanceUtilsV1API(client)
    server = api.create_server(commercial_type="DEV1-M", name="billed", image="debian_bookworm").server
    api.delete_server(server_id=server.id)
    billing = BillingV2Beta1API(client)
    period = time.strftime("%Y-%m", time.gmtime())
    [line] = billing.list_consumptions_all(billing_period=period)
    assert (line.resource_name, line.billed_quantity, line.consumer_id) == ("billed", "1", server.id)
    assert line.value.currency_code == "EUR" and (line.value.units, line.value.nanos) == (0, 19_800_000)
    assert billing.list_consumptions(billing_period="1999-01").total_count == 0
    with pytest.raises(ScalewayException) as err:
        billing.list_consumptions(billing_period="November")
    assert json.loads(str(err.value))["details"][0]["argument_name"] == "billing_period"


def test_billing_invoices_one_per_period_issued_when_closed_and_draft_for_the_current(
    emulator: ThreadedEmulator, client: scaleway.Client
) -> None:
    """``GET /billing/v2beta1/invoices``: the SDK lists, filters, orders and fetches them."""
    billing = BillingV2Beta1API(client)
    assert billing.list_invoices().total_count == 0, "no consumption, no invoice"
    now = datetime.now(UTC)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    account = emulator.emulator.app[ACCOUNT_KEY]
    account.usage.append(
        ServerUsage("srv-old", "old", "DEV1-M", ZONE, last_month + timedelta(days=3), this_month)
    )
    account.usage.append(ServerUsage("srv-new", "new", "DEV1-M", ZONE, this_month, None))

    listed = billing.list_invoices_all()
    assert [i.billing_period for i in listed] == [last_month, this_month], "by number, the draft has none (0)"
    issued, draft = listed
    assert (draft.state, draft.number, draft.issued_date) == ("draft", 0, None)
    assert (issued.state, issued.number, issued.type_) == ("issued", 1, "periodic")
    assert issued.issued_date == this_month + timedelta(days=1)
    assert issued.due_date == issued.issued_date + timedelta(days=14)
    untaxed = issued.total_untaxed.units + Decimal(issued.total_untaxed.nanos) / 10**9
    taxed = issued.total_taxed.units + Decimal(issued.total_taxed.nanos) / 10**9
    assert untaxed > 0 and taxed == untaxed + (untaxed * Decimal("0.20")).quantize(Decimal("0.01"))
    assert billing.get_invoice(invoice_id=issued.id).total_untaxed == issued.total_untaxed

    since = billing.list_invoices(billing_period_start_after=this_month)
    assert [i.id for i in since.invoices] == [draft.id]
    oldest_first = billing.list_invoices(order_by=ListInvoicesRequestOrderBy.START_DATE_ASC)
    assert [i.id for i in oldest_first.invoices] == [issued.id, draft.id]
    assert billing.list_invoices(invoice_type=InvoiceType.PURCHASE).total_count == 0
    with pytest.raises(ScalewayException) as missing:
        billing.get_invoice(invoice_id="00000000-0000-4000-8000-000000000000")
    assert missing.value.status_code == 404
