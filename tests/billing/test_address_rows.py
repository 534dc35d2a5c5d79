"""Hetzner addresses as ledger rows of their own: a floating IP's monthly-only price, a primary IP
that outlives its server, and a server whose address is billed apart getting no ``/ipv4`` row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from legion_nb.engine.billing.ledger import address_facts, address_rows, server_facts
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.records import (
    Catalog,
    CatalogAddon,
    CatalogPrice,
    CatalogServerType,
    PublicIp,
    Server,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
CATALOG = Catalog(
    provider="hetzner",
    currency="EUR",
    server_types=(
        CatalogServerType(
            "cx22", 2, 4, 40, "x86", (CatalogPrice("fsn1", Decimal("0.006"), Decimal("3.79")),), ("fsn1",)
        ),
    ),
    locations=(),
    images=(),
    addons=(
        CatalogAddon("primary_ipv4", "fsn1", Decimal("0.0008"), Decimal("0.50")),
        CatalogAddon("floating_ipv4", "fsn1", Decimal(0), Decimal("3.00")),
    ),
)


def _server(created: dt.datetime) -> Server:
    return Server(
        provider="hetzner",
        id="7",
        name="web",
        status="running",
        provider_status="running",
        ipv4="127.20.0.9",
        server_type="cx22",
        location="fsn1",
        created=created,
    )


def test_a_floating_ip_costs_its_monthly_price_per_started_month_assigned_or_not() -> None:
    server = _server(NOW - dt.timedelta(days=3))
    floating = [
        PublicIp(
            "hetzner",
            "floating",
            "5",
            "vip",
            "127.30.0.1",
            "ipv4",
            "7",
            "fsn1",
            created=NOW - dt.timedelta(minutes=30),
        ),
        PublicIp(
            "hetzner",
            "floating",
            "6",
            "spare",
            "127.30.0.2",
            "ipv4",
            None,
            "fsn1",
            created=NOW - dt.timedelta(days=40),
        ),
    ]
    facts = address_facts(LegionState(), "hetzner", "", servers=[server], ips=floating, catalog=CATALOG)
    rows = address_rows(facts, NOW - dt.timedelta(days=62), NOW)
    by_month: dict[tuple[str, dt.datetime], Decimal] = {}
    for r in rows:
        key = (r.resource_id, r.start.replace(day=1))
        by_month[key] = by_month.get(key, Decimal(0)) + r.billed_cost
    october, november = dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 11, 1, tzinfo=UTC)
    assert by_month == {
        ("floating_ip/5", november): Decimal("3.00"),
        ("floating_ip/6", october): Decimal("3.00"),
        ("floating_ip/6", november): Decimal("3.00"),
    }
    assert {(r.resource_id, r.kind, r.sku, r.server) for r in rows} == {
        ("floating_ip/5", "floating_ip", "floating_ipv4", "7"),
        ("floating_ip/6", "floating_ip", "floating_ipv4", ""),
    }


def test_a_primary_ip_outliving_its_server_is_billed_from_its_own_creation() -> None:
    # its server is gone (not listed); the address was created 60 days ago and is billed on
    ip = PublicIp(
        "hetzner",
        "primary",
        "9",
        "kept",
        "127.20.0.9",
        "ipv4",
        None,
        "fsn1",
        created=NOW - dt.timedelta(days=60),
    )
    facts = address_facts(LegionState(), "hetzner", "", servers=[], ips=[ip], catalog=CATALOG)
    rows = address_rows(facts, NOW - dt.timedelta(days=62), NOW)
    october = [r for r in rows if r.start.month == 10]
    november = [r for r in rows if r.start.month == 11]
    assert sum(r.billed_cost for r in october) == Decimal("0.50"), "a whole month costs the cap"
    hours = 19 * 24 + 13  # November 1st 00:00 to the 20th 12:30, the running hour started
    assert sum(r.billed_cost for r in november) == min(Decimal("0.0008") * hours, Decimal("0.50"))
    assert {(r.kind, r.resource_name, r.server, r.ownership) for r in rows} == {
        ("primary_ip", "kept", "", "unlabelled")
    }


def test_a_server_whose_primary_ip_is_billed_apart_gets_no_ipv4_row_and_the_ip_takes_its_plan() -> None:
    server = _server(NOW - dt.timedelta(minutes=30))
    ip = PublicIp(
        "hetzner",
        "primary",
        "9",
        "ip-web",
        "127.20.0.9",
        "ipv4",
        "7",
        "fsn1",
        created=NOW - dt.timedelta(minutes=30),
    )
    facts = server_facts(LegionState(), "hetzner", "", [server], CATALOG, billed_apart=frozenset({"7"}))
    assert facts[0].ipv4_rates == ()
    (address,) = address_facts(LegionState(), "hetzner", "", servers=[server], ips=[ip], catalog=CATALOG)
    (row,) = address_rows([address], NOW - dt.timedelta(days=1), NOW)
    assert (row.resource_id, row.server, row.billed_cost) == ("primary_ip/9", "7", Decimal("0.0008"))
