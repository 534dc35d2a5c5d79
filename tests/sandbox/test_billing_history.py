"""Back-dated billing history and OVH's usage forecast, read with the official SDKs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import ovh  # type: ignore[import-untyped]
import ovh.client  # type: ignore[import-untyped]
import pytest
from scaleway.billing.v2beta1 import BillingV2Beta1API
from sdkkit import scaleway_client

from legion_nb.emulators.history import past_servers
from legion_nb.emulators.httpkit import ThreadedEmulator, serve_in_thread
from legion_nb.emulators.ovh import create_app as ovh_app
from legion_nb.emulators.scaleway import create_app as scaleway_app
from legion_nb.emulators.world import SandboxWorld, Timing


def _world(days: int) -> SandboxWorld:
    return SandboxWorld(seed=11, timing=Timing(action_seconds=0.05, boot_seconds=0.05), history_days=days)


@pytest.fixture
def scaleway_served() -> Iterator[ThreadedEmulator]:
    with serve_in_thread(scaleway_app, _world(90)) as served:
        yield served


@pytest.fixture
def ovh_served() -> Iterator[ThreadedEmulator]:
    with serve_in_thread(ovh_app, _world(90)) as served:
        yield served


def _ovh(served: ThreadedEmulator, monkeypatch: pytest.MonkeyPatch) -> ovh.Client:
    monkeypatch.setitem(ovh.client.ENDPOINTS, "legion-history", served.url)
    creds = served.emulator.credentials
    return ovh.Client(
        endpoint="legion-history",
        application_key=creds["application_key"],
        application_secret=creds["application_secret"],
        consumer_key=creds["consumer_key"],
    )


def _months(days: int) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    months, cursor = set(), now - dt.timedelta(days=days)
    while cursor <= now:
        months.add(cursor.strftime("%Y-%m"))
        cursor += dt.timedelta(days=1)
    return sorted(months)


def test_history_is_reproducible_bounded_and_past() -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    first = past_servers(3, "ovh", 60, now, ["a", "b"])
    assert first == past_servers(3, "ovh", 60, now, ["a", "b"]) and len(first) == 15
    assert all(now - dt.timedelta(days=60) <= s.created < s.deleted < now for s in first)
    assert past_servers(3, "ovh", 0, now, ["a"]) == []
    with pytest.raises(ValueError, match="negative"):
        SandboxWorld(history_days=-1)


def test_scaleway_history_shows_in_consumptions_and_invoices(scaleway_served: ThreadedEmulator) -> None:
    client = scaleway_client(scaleway_served.emulator.credentials, scaleway_served.url)
    billing = BillingV2Beta1API(client)
    per_month = {
        month: sum(
            (Decimal(c.value.units) + Decimal(c.value.nanos) / 10**9 for c in lines),
            Decimal(0),
        )
        for month in _months(90)
        if (lines := billing.list_consumptions_all(billing_period=month))
    }
    assert len(per_month) >= 3, "ninety days of history span at least three billing months"
    invoices = billing.list_invoices_all()
    assert {i.billing_period.strftime("%Y-%m") for i in invoices} == set(per_month)
    for invoice in invoices:
        untaxed = invoice.total_untaxed
        assert untaxed is not None
        amount = Decimal(untaxed.units) + Decimal(untaxed.nanos) / 10**9
        assert amount == per_month[invoice.billing_period.strftime("%Y-%m")]


def test_ovh_history_shows_in_usage_and_bills_and_forecast_covers_running_instances(
    ovh_served: ThreadedEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _ovh(ovh_served, monkeypatch)
    base = f"/cloud/project/{ovh_served.emulator.credentials['service_name']}"
    history = client.get(f"{base}/usage/history")
    assert len(history) >= 2
    assert len(client.get("/me/bill")) >= len(history)
    flavor = next(f for f in client.get(f"{base}/flavor", region="GRA11") if f["name"] == "b2-7")
    image = client.get(f"{base}/image", region="GRA11")[0]
    created = client.post(
        f"{base}/instance", name="now", flavorId=flavor["id"], imageId=image["id"], region="GRA11"
    )
    forecast = client.get(f"{base}/usage/forecast")
    now = dt.datetime.now(dt.UTC)
    month_end = (
        now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=32)
    ).replace(day=1)
    hours_left = -(-(month_end - now) // dt.timedelta(hours=1))
    details = [d for g in forecast["hourlyUsage"]["instance"] for d in g["details"]]
    (mine,) = [d for d in details if d["instanceId"] == created["id"]]
    assert mine["quantity"]["value"] >= hours_left
    assert forecast["usableCredits"]["currencyCode"] == "EUR"
    assert forecast["period"]["to"].startswith(month_end.strftime("%Y-%m-%d"))
