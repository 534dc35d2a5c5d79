"""The plan cost the snapshot view keeps: the price of the last state, reused only while the servers
it priced and the catalogs it read are the same objects."""

from __future__ import annotations

from dataclasses import replace

from legion_nb.engine import planning
from legion_nb.engine.billing.plan_cost import PlanCostCache, plan_cost
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
