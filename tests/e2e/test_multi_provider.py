"""One cluster across Scaleway and OVH: each provider's wire, the firewall capability split
(OVH's set is kept as a node-level plan), and a zone whose records span both providers."""

from __future__ import annotations

import legion_nb
from legion_nb.sandbox_engine import sandbox_cloud


async def test_a_cluster_across_scaleway_and_ovh_materializes_and_refreshes_clean() -> None:
    engine = await legion_nb.sandbox(seed=5, providers=("scaleway", "ovh"))
    try:
        for name, provider in (("sc-1", "scaleway"), ("sc-2", "scaleway"), ("ovh-1", "ovh")):
            await engine.plan_upsert_server(name=name, provider=provider)
        await engine.plan_upsert_dns_zone(zone="multi.example.org", provider="scaleway")
        await engine.plan_upsert_dns_host(
            host="www", zone="multi.example.org", servers=["sc-1", "sc-2", "ovh-1"]
        )
        report = await engine.materialize(yes=True)
        assert report.ok, report.summary
        rows = {(r["kind"], r["name"]): r for r in (await engine.snapshot())["rows"]}
        assert rows[("firewall", "legion-default-ovh")]["note"].endswith("enforced on the nodes")
        # No operator access planned: each derived set warns in its own field; the note only explains.
        ovh_firewall = rows[("firewall", "legion-default-ovh")]
        assert ovh_firewall["note"] == "derived from cluster default; enforced on the nodes"
        assert [w["code"] for w in ovh_firewall["warnings"]] == ["open_access"]
        assert "open to anywhere" in ovh_firewall["warnings"][0]["message"]
        assert [(f.name, [w.code for w in f.warnings]) for f in report.warnings] == [
            ("legion-default-ovh", ["open_access"]),
            ("legion-default-scaleway", ["open_access"]),
        ]
        assert rows[("firewall", "legion-default-scaleway")]["state"] == "applied"
        assert {rows[("server", n)]["state"] for n in ("sc-1", "sc-2", "ovh-1")} == {"running"}

        refreshed = await engine.refresh()
        assert refreshed.ok, refreshed.summary
        observed = engine.state.observed
        assert sorted(s.name for s in observed["scaleway"].servers.values()) == ["sc-1", "sc-2"]
        assert [s.name for s in observed["ovh"].servers.values()] == ["ovh-1"]
        ovh_report = next(r for r in refreshed.providers if r.provider == "ovh")
        assert "firewall" in ovh_report.skipped  # OVH has no provider firewall to read

        counters = sandbox_cloud(engine).world.counters
        before = counters.mutations()
        assert (await engine.materialize(yes=True)).ok
        assert counters.mutations() == before
    finally:
        await engine.aclose()
