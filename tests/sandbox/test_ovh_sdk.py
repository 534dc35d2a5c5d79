"""The official ``ovh`` SDK drives the OVHcloud emulator unchanged, over a real socket on 127.0.0.1.

python-ovh accepts only endpoint *names* (``ovh-eu``, ...) and looks them up in its public
``ovh.client.ENDPOINTS`` table; the tests register the sandbox URL there under a new name (with
``monkeypatch.setitem``, undone after each test) and otherwise use the SDK as any script would. The
SDK is synchronous, so the emulator runs on its own event loop in a background thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ovh  # type: ignore[import-untyped]
import ovh.client  # type: ignore[import-untyped]
import pytest
import requests

from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.httpkit import serve_in_thread
from legion_nb.emulators.ovh import OvhState, create_app, state_of
from legion_nb.emulators.ovh.auth import expected_signature
from legion_nb.emulators.world import SandboxWorld, Timing

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQvQ0h1aW5kZXJlZEJ5TGVnaW9uU2FuZGJveFRlc3RLZXk= op@legion"


@dataclass
class Served:
    url: str
    credentials: dict[str, str]
    state: OvhState
    world: SandboxWorld


@contextmanager
def running(world: SandboxWorld) -> Iterator[Served]:
    """The emulator on 127.0.0.1:<ephemeral>, on its own event loop in a thread (the SDK is blocking)."""
    with serve_in_thread(create_app, world) as threaded:
        yield Served(threaded.url, threaded.emulator.credentials, state_of(threaded.emulator), world)


@pytest.fixture
def served() -> Iterator[Served]:
    with running(SandboxWorld(seed=7, timing=Timing(action_seconds=0.05, boot_seconds=0.1))) as server:
        yield server


def sdk(served: Served, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> ovh.Client:
    """An ``ovh.Client`` for the sandbox, registered under a new endpoint name."""
    monkeypatch.setitem(ovh.client.ENDPOINTS, "legion-sandbox", served.url)
    creds = {k: served.credentials[k] for k in ("application_key", "application_secret", "consumer_key")}
    return ovh.Client(endpoint="legion-sandbox", **(creds | overrides))


@pytest.fixture
def client(served: Served, monkeypatch: pytest.MonkeyPatch) -> ovh.Client:
    return sdk(served, monkeypatch)


def project(served: Served) -> str:
    return f"/cloud/project/{served.credentials['service_name']}"


def wait_for_status(client: ovh.Client, path: str, wanted: str) -> dict[str, Any]:
    """Poll like a script would; the emulator's timings are a fraction of a second."""
    deadline = time.monotonic() + 10
    while True:
        instance: dict[str, Any] = client.get(path)
        if instance["status"] == wanted or time.monotonic() > deadline:
            return instance
        time.sleep(0.02)


def test_signature_test_vector_matches_the_sdk() -> None:
    # The documented OVHcloud vector, recomputed the way python-ovh signs.
    parts = [
        "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk",
        "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY",
        "GET",
        "https://eu.api.ovh.com/1.0/auth",
        "",
        "1457018875",
    ]
    digest = "$1$" + hashlib.sha1("+".join(parts).encode()).hexdigest()
    assert digest == "$1$e9556054b6309771395efa467c22e627407461ad"
    assert expected_signature(*parts) == digest


def test_auth_time_is_a_bare_integer_close_to_now(client: ovh.Client) -> None:
    server_time = client.get("/auth/time", _need_auth=False)
    assert isinstance(server_time, int)
    assert abs(server_time - time.time()) < 5
    assert client.time_delta in (-1, 0, 1)


def test_catalog_reads(client: ovh.Client, served: Served) -> None:
    regions = client.get(f"{project(served)}/region")
    assert regions == ["GRA11", "SBG5", "BHS5", "WAW1", "UK1"]
    region = client.get(f"{project(served)}/region/GRA11")
    assert region["status"] == "UP" and region["datacenterLocation"] == "GRA"

    flavors = client.get(f"{project(served)}/flavor", region="GRA11")
    assert sorted(f["name"] for f in flavors) == ["b2-7", "b3-8", "c3-4", "d2-2", "d2-4"]
    assert all(f["region"] == "GRA11" for f in flavors)
    b27 = next(f for f in flavors if f["name"] == "b2-7")
    assert (b27["vcpus"], b27["ram"], b27["disk"]) == (2, 7000, 50)
    assert b27["planCodes"]["hourly"] == "b2-7.consumption"

    images = client.get(f"{project(served)}/image", region="SBG5")
    assert sorted(i["name"] for i in images) == ["Debian 12", "Debian 13", "Ubuntu 24.04"]

    prices = client.get("/order/catalog/public/cloud", ovhSubsidiary="FR")
    hourly = next(a for a in prices["addons"] if a["planCode"] == "b2-7.consumption")
    assert hourly["pricings"][0]["intervalUnit"] == "hour"
    assert hourly["pricings"][0]["price"] == 6_810_000


def test_ssh_key_create_list_delete(client: ovh.Client, served: Served) -> None:
    key = client.post(f"{project(served)}/sshkey", name="operator", publicKey=PUBLIC_KEY)
    assert key["name"] == "operator" and key["fingerprint"].count(":") == 15
    assert [k["id"] for k in client.get(f"{project(served)}/sshkey")] == [key["id"]]
    with pytest.raises(ovh.exceptions.ResourceConflictError):
        client.post(f"{project(served)}/sshkey", name="operator", publicKey=PUBLIC_KEY)
    with pytest.raises(ovh.exceptions.BadParametersError):
        client.post(f"{project(served)}/sshkey", name="broken", publicKey="not a key")
    assert client.delete(f"{project(served)}/sshkey/{key['id']}") is None
    assert client.get(f"{project(served)}/sshkey") == []


def test_instance_lifecycle(client: ovh.Client, served: Served) -> None:
    base = project(served)
    flavor = next(f for f in client.get(f"{base}/flavor", region="GRA11") if f["name"] == "d2-2")
    image = next(i for i in client.get(f"{base}/image", region="GRA11") if i["name"] == "Debian 12")
    key = client.post(f"{base}/sshkey", name="op", publicKey=PUBLIC_KEY, region="GRA11")

    created = client.post(
        f"{base}/instance",
        name="node-1",
        flavorId=flavor["id"],
        imageId=image["id"],
        region="GRA11",
        sshKeyId=key["id"],
        userData="#cloud-config\n",
        monthlyBilling=False,
    )
    assert created["status"] == "BUILD" and created["ipAddresses"] == []
    path = f"{base}/instance/{created['id']}"
    active = wait_for_status(client, path, "ACTIVE")
    assert active["status"] == "ACTIVE"
    assert active["flavor"]["name"] == "d2-2" and active["image"]["name"] == "Debian 12"
    assert active["sshKey"]["id"] == key["id"]
    (address,) = active["ipAddresses"]
    assert address["type"] == "public" and address["version"] == 4
    assert address["ip"].startswith("127.") and address["ip"] != "127.0.0.1"

    # Names are not unique at OVHcloud: a second instance with the same name is accepted.
    twin = client.post(
        f"{base}/instance", name="node-1", flavorId=flavor["id"], imageId=image["id"], region="GRA11"
    )
    listed = client.get(f"{base}/instance")
    assert sorted(i["id"] for i in listed if i["name"] == "node-1") == sorted([created["id"], twin["id"]])

    assert client.post(f"{path}/reboot", type="soft") is None
    assert client.get(path)["status"] == "REBOOT"
    wait_for_status(client, path, "ACTIVE")
    rebuilt = client.post(f"{path}/reinstall", imageId=image["id"])
    assert rebuilt["status"] == "REBUILD"
    wait_for_status(client, path, "ACTIVE")

    assert client.delete(path) is None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.get(path)
        except ovh.exceptions.ResourceNotFoundError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the deleted instance never disappeared")
    assert address["ip"] not in served.world.addresses.in_use()


def test_instance_create_rejects_a_flavor_from_another_region(client: ovh.Client, served: Served) -> None:
    base = project(served)
    flavor = client.get(f"{base}/flavor", region="SBG5")[0]
    image = client.get(f"{base}/image", region="GRA11")[0]
    with pytest.raises(ovh.exceptions.BadParametersError, match="does not exist in region GRA11"):
        client.post(f"{base}/instance", name="x", flavorId=flavor["id"], imageId=image["id"], region="GRA11")
    assert client.get(f"{base}/instance") == []


def test_dns_records_are_published_only_on_refresh(client: ovh.Client, served: Served) -> None:
    assert client.get("/domain/zone") == ["example.com", "example.org", "legion.test"]
    zone = "/domain/zone/example.org"
    record = client.post(f"{zone}/record", fieldType="A", subDomain="www", target="127.20.0.9", ttl=60)
    assert record["zone"] == "example.org" and isinstance(record["id"], int)
    assert client.get(f"{zone}/record", fieldType="A", subDomain="www") == [record["id"]]
    assert client.get(f"{zone}/record/{record['id']}")["target"] == "127.20.0.9"

    published = served.state.dns.published
    assert client.get(f"{zone}/status")["isDeployed"] is False
    assert not any(r.field_type == "A" for r in published("example.org"))
    assert client.post(f"{zone}/refresh") is None
    assert client.get(f"{zone}/status")["isDeployed"] is True
    assert [r.target for r in published("example.org") if r.field_type == "A"] == ["127.20.0.9"]

    assert client.put(f"{zone}/record/{record['id']}", target="127.20.0.10", ttl=120) is None
    assert [r.target for r in published("example.org") if r.field_type == "A"] == ["127.20.0.9"]
    client.post(f"{zone}/refresh")
    assert [r.target for r in published("example.org") if r.field_type == "A"] == ["127.20.0.10"]

    assert client.delete(f"{zone}/record/{record['id']}") is None
    client.post(f"{zone}/refresh")
    assert client.get(f"{zone}/record", fieldType="A") == []
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        client.get("/domain/zone/not-a-zone.example/record")


def test_bills_follow_instance_lifetimes(client: ovh.Client, served: Served) -> None:
    base = project(served)
    assert client.get("/me/bill") == []
    flavor = next(f for f in client.get(f"{base}/flavor", region="WAW1") if f["name"] == "b2-7")
    image = client.get(f"{base}/image", region="WAW1")[0]
    client.post(f"{base}/instance", name="billed", flavorId=flavor["id"], imageId=image["id"], region="WAW1")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    (bill_id,) = client.get("/me/bill", **{"date.from": "2000-01-01", "date.to": f"{today}T23:59:59+00:00"})
    bill = client.get(f"/me/bill/{bill_id}")
    assert bill["priceWithoutTax"] == {"currencyCode": "EUR", "text": "0.07 €", "value": 0.07}
    (detail_id,) = client.get(f"/me/bill/{bill_id}/details")
    assert "billed" in client.get(f"/me/bill/{bill_id}/details/{detail_id}")["description"]
    assert client.get("/me/bill", **{"date.from": "2000-01-01", "date.to": "2000-01-02"}) == []


class ShiftedWorld(SandboxWorld):
    """A world whose clock can jump forward; the emulator's ``/auth/time`` and billing follow it."""

    offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset


def test_usage_names_each_instance_per_month(monkeypatch: pytest.MonkeyPatch) -> None:
    world = ShiftedWorld(seed=2, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with running(world) as server:
        before = sdk(server, monkeypatch)
        base = project(server)
        flavor = next(f for f in before.get(f"{base}/flavor", region="WAW1") if f["name"] == "b2-7")
        image = before.get(f"{base}/image", region="WAW1")[0]
        created = before.post(
            f"{base}/instance", name="long", flavorId=flavor["id"], imageId=image["id"], region="WAW1"
        )
        current = before.get(f"{base}/usage/current")
        (group,) = current["hourlyUsage"]["instance"]
        assert (group["reference"], group["region"]) == ("b2-7", "WAW1")
        assert group["details"] == [
            {"instanceId": created["id"], "quantity": {"unit": "Hour", "value": 1.0}, "totalPrice": 0.07}
        ]
        assert before.get(f"{base}/usage/history") == []

        world.offset = timedelta(days=40)  # forty days later, the instance still running
        with pytest.raises(ovh.exceptions.BadParametersError, match="Query out of time"):
            before.get(f"{base}/usage/history")  # the old client's clock delta is stale
        after = sdk(server, monkeypatch)  # a new client measures the clock again
        history = after.get(f"{base}/usage/history")
        assert history
        for period in history:
            detail = after.get(f"{base}/usage/history/{period['id']}")
            (line,) = detail["hourlyUsage"]["instance"][0]["details"]
            assert line["instanceId"] == created["id"] and line["quantity"]["value"] >= 1
        now_line = after.get(f"{base}/usage/current")["hourlyUsage"]["instance"][0]["details"][0]
        assert now_line["instanceId"] == created["id"]
        assert len(after.get("/me/bill")) == len(history) + 1


def test_wrong_application_secret_is_refused_as_ovh_does(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_secret = sdk(served, monkeypatch, application_secret="x" * 32)
    with pytest.raises(ovh.exceptions.BadParametersError, match="Invalid signature") as caught:
        wrong_secret.get("/domain/zone")
    assert caught.value.query_id and caught.value.query_id.startswith("EU.")
    with pytest.raises(ovh.exceptions.InvalidCredential):
        sdk(served, monkeypatch, consumer_key="y" * 32).get("/domain/zone")
    with pytest.raises(ovh.exceptions.InvalidKey):
        sdk(served, monkeypatch, application_key="z" * 16).get("/domain/zone")


def test_read_only_consumer_key_cannot_write(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    served.state.add_consumer_key("r" * 32, can_write=False)
    reader = sdk(served, monkeypatch, consumer_key="r" * 32)
    assert reader.get("/domain/zone")
    with pytest.raises(ovh.exceptions.NotGrantedCall):
        reader.post("/domain/zone/example.org/refresh")


def test_regional_create_reports_through_an_operation(client: ovh.Client, served: Served) -> None:
    base = project(served)
    flavor = next(f for f in client.get(f"{base}/flavor", region="UK1") if f["name"] == "c3-4")
    image = next(i for i in client.get(f"{base}/image", region="UK1") if i["name"] == "Ubuntu 24.04")
    operation = client.post(
        f"{base}/region/UK1/instance",
        name="async-1",
        flavor={"id": flavor["id"]},
        bootFrom={"imageId": image["id"]},
        sshKeyCreate={"name": "async-key", "publicKey": PUBLIC_KEY},
        network={"public": True},
        billingPeriod="hourly",
    )
    assert (operation["action"], operation["status"], operation["resourceId"]) == (
        "instance#create",
        "created",
        None,
    )
    deadline = time.monotonic() + 10
    while operation["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
        operation = client.get(f"{base}/operation/{operation['id']}")
        assert operation["status"] in ("in-progress", "completed")
    instance = client.get(f"{base}/instance/{operation['resourceId']}")
    assert (instance["name"], instance["status"], instance["sshKey"]["name"]) == (
        "async-1",
        "ACTIVE",
        "async-key",
    )
    assert [o["id"] for o in client.get(f"{base}/operation")] == [operation["id"]]


def test_injected_faults_speak_ovh(monkeypatch: pytest.MonkeyPatch) -> None:
    world = SandboxWorld(seed=1, faults=FaultPlan(rate=1.0, seed=1, weights={"rate_limited": 1.0}))
    with running(world) as server:
        client = sdk(server, monkeypatch)
        assert isinstance(client.get("/auth/time", _need_auth=False), int)  # the clock probe is never faulted
        with pytest.raises(ovh.exceptions.APIError, match="Too many requests") as caught:
            client.get("/domain/zone")
        assert caught.value.response.status_code == 429
        assert caught.value.response.json()["class"] == "Client::TooManyRequests"
        assert caught.value.query_id.startswith("EU.ext-1.")


def test_stale_timestamp_is_refused(served: Served) -> None:
    # Signed correctly but an hour late, as a client with a stale clock delta would sign.
    creds = served.credentials
    url = f"{served.url}/domain/zone"
    stale = str(int(time.time()) - 3600)
    signed = "+".join([creds["application_secret"], creds["consumer_key"], "GET", url, "", stale])
    response = requests.get(
        url,
        headers={
            "X-Ovh-Application": creds["application_key"],
            "X-Ovh-Consumer": creds["consumer_key"],
            "X-Ovh-Timestamp": stale,
            "X-Ovh-Signature": "$1$" + hashlib.sha1(signed.encode()).hexdigest(),
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "QUERY_TIME_OUT"


def test_errors_carry_class_message_and_query_id(client: ovh.Client, served: Served) -> None:
    with pytest.raises(ovh.exceptions.ResourceNotFoundError) as caught:
        client.get(f"{project(served)}/instance/does-not-exist")
    response = caught.value.response
    assert response.json() == {
        "class": "Client::NotFound",
        "message": "The requested object (instanceId = does-not-exist) does not exist",
    }
    assert response.headers["X-OVH-QUERYID"].startswith("EU.ext-1.")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match="invalid"):
        client.get("/no/such/route")
