"""The plan cost the snapshot view keeps: the price of the last state, reused only while the servers
it priced and the catalogs it read are the same objects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from legion_nb.engine import planning
from legion_nb.engine.billing.plan_cost import PlanCostCache, plan_cost
from legion_nb.engine.state.edits import with_tracked_server
from legion_nb.engine.state.model import synthetic_state
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.records import Catalog

CATALOGS = {provider: embedded_catalog(provider) for provider in ("hetzner", "ovh", "scaleway")}


def test_the_cache_prices_like_plan_cost_and_keeps_the_price_while_the_servers_stay() -> None:
    cache = PlanCostCache()
    state = synthetic_state(60)
    first = cache.cost_json(state, CATALOGS.__getitem__)
    assert first == plan_cost(state, CATALOGS.__getitem__).to_json()

    zoned = planning.upsert_dns_zone(state, zone="other.example.org", provider="hetzner")
    assert cache.cost_json(zoned, CATALOGS.__getitem__) is first

    grown = planning.upsert_server(zoned, name="extra-1", provider="hetzner", server_type="cx32")
    again = cache.cost_json(grown, CATALOGS.__getitem__)
    assert again == plan_cost(grown, CATALOGS.__getitem__).to_json()
    assert "extra-1" in {s["name"] for s in again["servers"]} and again != first


def test_a_new_catalog_prices_the_same_servers_again() -> None:
    cache = PlanCostCache()
    state = synthetic_state(60)
    before = cache.cost_json(state, CATALOGS.__getitem__)
    hetzner = CATALOGS["hetzner"]
    dearer = replace(
        hetzner,
        source="live",
        server_types=tuple(
            replace(t, prices=tuple(replace(p, monthly=p.monthly * 2) for p in t.prices))
            for t in hetzner.server_types
        ),
    )
    live: dict[str, Catalog] = {**CATALOGS, "hetzner": dearer}

    after = cache.cost_json(state, live.__getitem__)
    assert after == plan_cost(state, live.__getitem__).to_json()
    assert after["currencies"] != before["currencies"]


def test_a_server_edit_prices_that_server_again_and_lends_the_others_their_price() -> None:
    kept: dict[str, Any] = {}
    state = synthetic_state(60)
    odd = replace(state.tracked.servers["node-00009"], server_type="zz99")  # no catalog price
    state = with_tracked_server(state, odd)
    first = plan_cost(state, CATALOGS.__getitem__, kept=kept)
    assert "node-00009" in first.unpriced

    moved = planning.upsert_server(state, name="node-00003", provider="hetzner", server_type="cx32")
    second = plan_cost(moved, CATALOGS.__getitem__, kept=kept)

    assert second == plan_cost(moved, CATALOGS.__getitem__)
    before = {s.name: s for s in first.servers}
    after = {s.name: s for s in second.servers}
    assert after["node-00003"] is not before["node-00003"] and after["node-00003"].server_type == "cx32"
    assert after["node-00004"] is before["node-00004"]
    assert "node-00009" in second.unpriced  # a lent price keeps its verdict
