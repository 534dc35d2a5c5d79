"""Public IPs in the orphan report: an address Legion labelled that no tracked server holds any more
is flagged with its kind, address and cost, and the cleanup path deletes it; an address someone
else made is shown but never flagged or deleted."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hcloud import Client
from hcloud.locations import Location

import legion_nb
from legion_nb.emulators.hetzner import state_of
from legion_nb.emulators.hetzner.catalog import pricing
from legion_nb.engine.billing.ledger_store import Listed
from legion_nb.engine.billing.reconcile import reconcile
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import PublicIp
from legion_nb.sandbox_engine import sandbox_cloud


@pytest.fixture
async def engine() -> Any:
    engine = await legion_nb.sandbox(seed=6)
    try:
        yield engine
    finally:
        await engine.aclose()


def _monthly(family: str, location: str) -> Decimal:
    group = next(g for g in pricing()[family] if g["type"] == "ipv4")
    return Decimal(next(p for p in group["prices"] if p["location"] == location)["price_monthly"]["net"])


async def _lines(engine: Engine) -> dict[str, dict[str, Any]]:
    return {r["resource"]: r for r in await engine.billing_reconciliation() if r["provider"] == "hetzner"}


async def _legion_floating_ip(engine: Engine, name: str, location: str) -> PublicIp:
    """A floating IP made the way Legion makes one: a durable create intent, then the create with
    Legion's ownership labels. Nothing tracks it afterwards, just as when a run is killed before it
    records what it made."""
    resilience = engine.core.providers.resilience
    return await resilience.create_floating_ip("hetzner", name, "ipv4", location, str(uuid.uuid4()))


async def test_a_floating_ip_left_when_its_server_leaves_the_plan_is_an_orphan_that_cleanup_deletes(
    engine: Engine,
) -> None:
    await engine.plan_upsert_server(name="h-1", provider="hetzner")
    assert (await engine.materialize(yes=True)).ok
    tracked = engine.state.tracked.servers["h-1"]
    ip = await _legion_floating_ip(engine, "h-1-vip", tracked.location)
    broker = engine.core.providers.broker
    assigned = await broker.mutate(
        "hetzner", "assign vip", lambda a: a.assign_floating_ip(ip.id, tracked.provider_id)
    )
    await broker.wait([assigned] if assigned else [])

    held = (await _lines(engine))[f"floating_ip/{ip.id}"]
    assert (held["ownership"], held["orphan"]) == ("planned", False), "its server is planned: not an orphan"

    await engine.plan_remove_server("h-1")
    assert (await engine.materialize(yes=True)).ok
    left = (await _lines(engine))[f"floating_ip/{ip.id}"]
    assert (left["orphan"], left["ownership"], left["kind"], left["address"]) == (
        True,
        "labelled",
        "floating_ip",
        ip.ip,
    )
    assert Decimal(left["estimate"]) == _monthly("floating_ips", tracked.location)

    result = await engine.orphan_delete(provider="hetzner", resource=left["resource"])
    assert result.status == "succeeded"
    assert int(ip.id) not in state_of(sandbox_cloud(engine).emulator("hetzner")).floating_ips
    assert f"floating_ip/{ip.id}" not in {r for r, line in (await _lines(engine)).items() if line["orphan"]}


def _sdk_floating_ip(endpoint: dict[str, str]) -> tuple[int, str]:
    client = Client(token=endpoint["token"], api_endpoint=endpoint["url"])
    created = client.floating_ips.create(type="ipv4", home_location=Location(name="fsn1"), name="theirs")
    assert created.floating_ip.id is not None and created.floating_ip.ip is not None
    return created.floating_ip.id, created.floating_ip.ip


async def test_a_labelled_ip_a_create_left_behind_is_flagged_and_an_unlabelled_sdk_ip_never_is(
    engine: Engine,
) -> None:
    cloud = sandbox_cloud(engine)
    hetzner = cloud.endpoints()["hetzner"]
    left = await _legion_floating_ip(engine, "vip", "fsn1")
    assert [p.kind for p in engine.state.tracked.pending.values()] == ["floating_ip"], "the intent stays"
    # the hcloud SDK is synchronous and the emulator answers on this loop: call it from a thread
    theirs_id, theirs_ip = await asyncio.to_thread(_sdk_floating_ip, hetzner)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {hetzner['token']}"}) as client:
        answer = await client.post(
            f"{hetzner['url']}/primary_ips",
            json={
                "type": "ipv4",
                "name": "spare",
                "location": "nbg1",
                "labels": OwnershipLabels(str(uuid.uuid4())).as_labels(),
            },
        )
        answer.raise_for_status()
        spare = answer.json()["primary_ip"]

    lines = await _lines(engine)
    flagged = {
        (r["resource"], r["kind"], r["address"], r["ownership"]) for r in lines.values() if r["orphan"]
    }
    assert flagged == {
        (f"floating_ip/{left.id}", "floating_ip", left.ip, "labelled"),
        (f"primary_ip/{spare['id']}", "primary_ip", spare["ip"], "labelled"),
    }
    assert Decimal(lines[f"floating_ip/{left.id}"]["estimate"]) == _monthly("floating_ips", "fsn1")
    assert Decimal(lines[f"primary_ip/{spare['id']}"]["estimate"]) > 0
    theirs = lines[f"floating_ip/{theirs_id}"]
    assert (theirs["ownership"], theirs["orphan"], theirs["address"]) == ("unlabelled", False, theirs_ip)

    with pytest.raises(UsageError, match="not an orphan"):
        await engine.orphan_delete(provider="hetzner", resource=theirs["resource"])
    assert theirs_id in state_of(cloud.emulator("hetzner")).floating_ips, "nothing of theirs was deleted"
    result = await engine.orphan_delete(provider="hetzner", resource=f"primary_ip/{spare['id']}")
    assert result.status == "succeeded"
    assert spare["id"] not in state_of(cloud.emulator("hetzner")).primary_ips


def test_a_listed_ip_without_ledger_rows_is_flagged_only_when_legion_labelled_it() -> None:
    # Scaleway's flexible IPs have no price of their own in the catalog: they are listed, never billed apart
    listing = [
        Listed(
            "scaleway", "floating_ip/fr-par-1/a", "mine", "labelled", kind="floating_ip", address="127.9.0.1"
        ),
        Listed(
            "scaleway", "floating_ip/fr-par-1/b", "b", "unlabelled", kind="floating_ip", address="127.9.0.2"
        ),
        Listed("scaleway", "fr-par-1/s", "stray", "unlabelled", kind="server"),
    ]
    lines = reconcile([], listing, dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    assert {(x.resource_id, x.kind, x.address, x.orphan) for x in lines} == {
        ("floating_ip/fr-par-1/a", "floating_ip", "127.9.0.1", True),
        ("floating_ip/fr-par-1/b", "floating_ip", "127.9.0.2", False),
        ("fr-par-1/s", "server", "", True),
    }
