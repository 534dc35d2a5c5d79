"""The ledger on the sandbox: servers on all three providers, the providers' own figures read back
with the official SDKs, Hetzner's estimate by its rules, and an orphan made behind Legion's back."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import ovh  # type: ignore[import-untyped]
import ovh.client  # type: ignore[import-untyped]
import pytest
from sandbox.sdkkit import scaleway_client
from scaleway.billing.v2beta1 import BillingV2Beta1API

import legion_nb
from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.hetzner import state_of
from legion_nb.emulators.hetzner.catalog import SERVER_TYPES, pricing
from legion_nb.engine.billing.hourly import month_start
from legion_nb.engine.paths import log_dir_for
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.sandbox_engine import create_unplanned_server, sandbox_cloud


def _scaleway_total(endpoint: dict[str, str], month: str) -> Decimal:
    client = scaleway_client(endpoint, endpoint["url"])
    lines = BillingV2Beta1API(client).list_consumptions_all(billing_period=month)
    return sum((Decimal(c.value.units) + Decimal(c.value.nanos) / 10**9 for c in lines), Decimal(0))


def _ovh_total(endpoint: dict[str, str]) -> Decimal:
    ovh.client.ENDPOINTS["legion-billing-test"] = endpoint["url"]
    client = ovh.Client(
        endpoint="legion-billing-test",
        application_key=endpoint["application_key"],
        application_secret=endpoint["application_secret"],
        consumer_key=endpoint["consumer_key"],
    )
    current = client.get(f"/cloud/project/{endpoint['service_name']}/usage/current")
    return sum(
        (
            Decimal(str(detail["totalPrice"]))
            for usage in (current["hourlyUsage"], current["monthlyUsage"])
            for group in usage["instance"]
            for detail in group["details"]
        ),
        Decimal(0),
    )


def _hetzner_price(type_name: str, location: str) -> tuple[Decimal, Decimal]:
    spec = next(t for t in SERVER_TYPES if t.name == type_name)
    price = next(p for p in spec.prices() if p["location"] == location)
    return Decimal(price["price_hourly"]["net"]), Decimal(price["price_monthly"]["net"])


def _back_date(cloud: SandboxCloud, server_id: int, age: dt.timedelta) -> None:
    project = state_of(cloud.emulator("hetzner"))
    record = project.servers[server_id]
    record.created = (dt.datetime.now(dt.UTC) - age).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def engine() -> Any:
    engine = await legion_nb.sandbox(seed=4, history_days=45)
    try:
        yield engine
    finally:
        await engine.aclose()


async def test_the_ledger_covers_all_three_providers_and_matches_their_sdks(engine: Engine) -> None:
    for name, provider in (("h-1", "hetzner"), ("s-1", "scaleway"), ("o-1", "ovh")):
        await engine.plan_upsert_server(name=name, provider=provider)
    report = await engine.materialize(yes=True)
    assert report.ok, report.summary
    cloud = sandbox_cloud(engine)
    endpoints = cloud.endpoints()
    hetzner_id = int(engine.state.tracked.servers["h-1"].provider_id)
    _back_date(cloud, hetzner_id, dt.timedelta(minutes=30))
    long_id = int((await create_unplanned_server(engine, "long-lived", legion_labels=False)).id)
    _back_date(cloud, long_id, dt.timedelta(days=70))
    stray_id = int((await create_unplanned_server(engine, "stray")).id)

    rows = await engine.billing_ledger()
    assert {r["provider"] for r in rows} == {"hetzner", "scaleway", "ovh"}
    assert all(isinstance(r["billed_cost"], str) and r["currency"] for r in rows)
    month = month_start(dt.datetime.now(dt.UTC))

    def total(provider: str, source: str) -> Decimal:
        return sum(
            (Decimal(r["billed_cost"]) for r in rows if r["provider"] == provider and r["source"] == source),
            Decimal(0),
        )

    scaleway_sdk = await asyncio.to_thread(_scaleway_total, endpoints["scaleway"], f"{month:%Y-%m}")
    assert total("scaleway", "usage") == scaleway_sdk > 0
    assert total("ovh", "usage") == await asyncio.to_thread(_ovh_total, endpoints["ovh"]) > 0
    assert total("scaleway", "estimate") > 0 and total("ovh", "estimate") > 0

    tracked = engine.state.tracked.servers["h-1"]
    hourly, _ = _hetzner_price(tracked.server_type, tracked.location)
    mine = [r for r in rows if r["resource"] == str(hetzner_id)]
    assert [(Decimal(r["billed_cost"]), r["ownership"], r["cluster"]) for r in mine] == [
        (hourly, "planned", tracked.cluster)
    ], "thirty minutes cost one started hour"
    # the server's primary IPv4 is billed once, as a primary IP of its own that names its server
    (address,) = [r for r in rows if r["kind"] == "primary_ip" and r["server"] == str(hetzner_id)]
    assert (address["sku"], Decimal(address["billed_cost"])) == ("primary_ipv4", Decimal("0.0008"))
    assert not [r for r in rows if r["resource"] == f"{hetzner_id}/ipv4"]
    previous = month_start(month - dt.timedelta(days=1))
    last_month = await engine.billing_ledger(month=f"{previous:%Y-%m}", collect=False)
    for provider in ("scaleway", "ovh"):  # last month's invoice equals last month's usage lines
        (invoice,) = [r for r in last_month if r["provider"] == provider and r["source"] == "invoice"]
        usage = [
            Decimal(r["billed_cost"])
            for r in last_month
            if r["provider"] == provider and r["source"] == "usage"
        ]
        assert invoice["kind"] == "invoice" and Decimal(invoice["billed_cost"]) == sum(usage) > 0, provider
    long_rows = [r for r in last_month if r["resource"] == str(long_id)]
    _, monthly = _hetzner_price("cx22", "fsn1")
    assert sum(Decimal(r["billed_cost"]) for r in long_rows) == monthly, "a whole month costs the cap"

    reconciliation = await engine.billing_reconciliation(collect=False)
    orphans = {r["resource_name"]: r["ownership"] for r in reconciliation if r["orphan"]}
    assert orphans == {"stray": "labelled", "long-lived": "unlabelled"}
    assert str(stray_id) in {r["resource"] for r in reconciliation if r["orphan"]}
    scaleway_lines = [
        r for r in reconciliation if r["provider"] == "scaleway" and r["ownership"] == "planned"
    ]
    assert scaleway_lines and all(r["difference"] is not None for r in scaleway_lines)

    by_provider = await engine.billing_frame(by="provider", collect=False)
    assert set(by_provider["provider"]) == {"hetzner", "scaleway", "ovh"}
    scaleway_total = by_provider[by_provider["provider"] == "scaleway"]["billed_cost"].sum()
    assert isinstance(scaleway_total, Decimal) and scaleway_total == scaleway_sdk
    assert str(by_provider.index.tz) == "UTC"

    forecast = await engine.billing_forecast(collect=False)
    for line in forecast:
        assert Decimal(line["forecast"]) == Decimal(line["month_to_date"]) + Decimal(line["remaining"])
    assert {line["provider"] for line in forecast} == {"hetzner", "scaleway", "ovh"}
    ovh_line = next(line for line in forecast if line["provider"] == "ovh")
    assert ovh_line["provider_forecast"] is not None, "OVH publishes its own forecast"
    assert Decimal(ovh_line["provider_forecast"]) >= Decimal(ovh_line["month_to_date"])
    assert Decimal(ovh_line["forecast"]) > Decimal(ovh_line["month_to_date"]), "o-1 keeps running"
    assert (log_dir_for(engine.state_path) / "ledger.sqlite").exists()


async def test_bad_billing_input_is_refused_with_one_line(engine: Engine) -> None:
    with pytest.raises(UsageError, match="YYYY-MM"):
        await engine.billing_ledger(month="November", collect=False)
    with pytest.raises(UsageError, match="provider, cluster, resource or day"):
        await engine.billing_ledger(by="colour", collect=False)
    with pytest.raises(UsageError, match="1 to 3660"):
        await engine.billing_collect(days=0)


async def _hetzner_post(cloud: SandboxCloud, path: str, body: dict[str, Any]) -> dict[str, Any]:
    endpoint = cloud.endpoints()["hetzner"]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {endpoint['token']}"}) as client:
        answer = await client.post(f"{endpoint['url']}{path}", json=body)
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found


def _address_price(family: str, location: str) -> tuple[Decimal | None, Decimal]:
    group = next(g for g in pricing()[family] if g["type"] == "ipv4")
    price = next(p for p in group["prices"] if p["location"] == location)
    hourly = price.get("price_hourly")
    return (Decimal(hourly["net"]) if hourly else None), Decimal(price["price_monthly"]["net"])


async def test_hetzner_floating_and_standalone_primary_ips_are_own_rows(engine: Engine) -> None:
    cloud = sandbox_cloud(engine)
    floating = (await _hetzner_post(cloud, "/floating_ips", {"type": "ipv4", "home_location": "fsn1"}))[
        "floating_ip"
    ]
    project = state_of(cloud.emulator("hetzner"))
    thirty = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    project.floating_ips[floating["id"]].created = thirty.isoformat().replace("+00:00", "Z")
    primary = (
        await _hetzner_post(cloud, "/primary_ips", {"type": "ipv4", "name": "spare", "location": "nbg1"})
    )["primary_ip"]

    rows = await engine.billing_ledger()

    (fip,) = [r for r in rows if r["resource"] == f"floating_ip/{floating['id']}"]
    hourly, monthly = _address_price("floating_ips", "fsn1")
    assert hourly is None, "the pricing gives floating IPs a monthly price only"
    assert (fip["kind"], fip["sku"], fip["server"], fip["resource_name"]) == (
        "floating_ip",
        "floating_ipv4",
        "",
        floating["name"],
    )
    assert Decimal(fip["billed_cost"]) == monthly, "a started month of a floating IP costs its monthly price"
    (pip,) = [r for r in rows if r["resource"] == f"primary_ip/{primary['id']}"]
    hourly, _ = _address_price("primary_ips", "nbg1")
    assert (pip["kind"], pip["resource_name"], pip["server"]) == ("primary_ip", "spare", "")
    assert Decimal(pip["billed_cost"]) == hourly, "a new standalone primary IP costs one started hour"
    reconciliation = await engine.billing_reconciliation(collect=False)
    lines = {r["resource"]: (r["ownership"], r["orphan"]) for r in reconciliation}
    # shown as not Legion's, but cleanup deletes servers only: an address is never flagged
    assert lines[f"floating_ip/{floating['id']}"] == ("unlabelled", False)
    assert lines[f"primary_ip/{primary['id']}"] == ("unlabelled", False)


async def test_the_days_add_up_to_the_month_to_date_with_the_rest_unattributed(engine: Engine) -> None:
    """The providers bill months, Legion estimates days of what it lists: servers of the back-dated
    history ran before any collection, so their cost has no day. The by-day rows say so in one
    ``unattributed`` row per provider and month, and add up to the forecast's month to date exactly;
    the forecast counts one figure per provider (usage, never usage and invoice together)."""
    for name, provider in (("live-h", "hetzner"), ("live-s", "scaleway"), ("live-o", "ovh")):
        await create_unplanned_server(engine, name, provider=provider)
    forecast = {line["provider"]: line for line in await engine.billing_forecast()}
    rows = await engine.billing_ledger(collect=False)
    now = month_start(dt.datetime.now(dt.UTC))
    for provider in ("scaleway", "ovh"):
        usage = [
            Decimal(r["billed_cost"]) for r in rows if r["provider"] == provider and r["source"] == "usage"
        ]
        assert Decimal(forecast[provider]["month_to_date"]) == sum(usage, Decimal(0)), provider
        assert forecast[provider]["source"] == "usage"
    unattributed = 0
    for month in (now, month_start(now - dt.timedelta(days=1))):
        days = await engine.billing_ledger(month=f"{month:%Y-%m}", by="day", collect=False)
        totals = await engine.billing_ledger(month=f"{month:%Y-%m}", by="provider", collect=False)
        for total in totals:
            mine = [
                d for d in days if (d["provider"], d["currency"]) == (total["provider"], total["currency"])
            ]
            assert sum(Decimal(d["billed_cost"]) for d in mine) == Decimal(total["billed_cost"]), total
            rest = [d for d in mine if d["part"] == "unattributed"]
            assert len(rest) <= 1 and all(d["source"] == total["source"] != "estimate" for d in rest), rest
            unattributed += len(rest)
        if month == now:
            assert {d["provider"] for d in days if d["part"] == "day"} == {"hetzner", "scaleway", "ovh"}
            for provider, line in forecast.items():
                mine = [Decimal(d["billed_cost"]) for d in days if d["provider"] == provider]
                assert sum(mine, Decimal(0)) == Decimal(line["month_to_date"]), provider
    assert unattributed, "the history's servers ran before any collection: some cost has no day"
    frame = await engine.billing_frame(by="day", collect=False)
    assert list(frame["part"].cat.categories) in (["day"], ["day", "unattributed"])
    per_provider = frame.groupby("provider", observed=True)["billed_cost"].sum()
    assert {p: per_provider[p] for p in forecast} == {
        p: Decimal(x["month_to_date"]) for p, x in forecast.items()
    }
