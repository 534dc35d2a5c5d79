"""Faults: injected provider failures and an unreachable provider, end to end over real HTTP.

With 20 % of the emulator's API calls failing (429, 5xx, committed-then-dropped) materialize still
converges to the same provider state as a clean run: the three servers once each (no duplicate from
a dropped create), the peer-only 4413 rule and the A records. With the provider unreachable the
affected rows carry the error, materialize reports failure in one line, nothing tracked is lost,
and a rerun once it is back converges.
"""

from __future__ import annotations

import pytest
from e2ekit import EngineFactory, hetzner, host_records, peer_sources, plan_cluster, provider_view

from legion_nb.emulators.cloud import SandboxCloud

NAMES = ("web-1", "web-2", "web-3")
RUNS = 6


@pytest.mark.slow
async def test_twenty_percent_faults_converge_to_the_clean_state(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    engine = await open_engine()
    await plan_cluster(engine)
    cloud.world.faults.rate = 0.2
    reports = []
    for _ in range(RUNS):  # a run may end with a temporary error; reruns converge
        reports.append(await engine.materialize(yes=True))
        if reports[-1].ok:
            break
    assert reports[-1].ok, [r.summary for r in reports]
    cloud.world.faults.rate = 0.0
    project = hetzner(cloud)
    view = provider_view(project)
    addresses = view["servers"]
    assert isinstance(addresses, dict) and sorted(addresses) == list(NAMES)
    assert len(project.servers) == 3  # no duplicate from a create whose answer was dropped
    assert view["firewalls"] == {
        "legion-default-hetzner": {
            "sync_sources": peer_sources(view),
            "ports": ["22", "4413", "8443"],
            "applied": list(NAMES),
        }
    }
    assert view["records"] == host_records(view)
    assert sorted(engine.state.tracked.servers) == list(NAMES)
    assert not engine.state.tracked.pending
    # Once converged, a clean rerun changes nothing.
    before = cloud.world.counters.mutations("hetzner")
    assert (await engine.materialize(yes=True)).ok
    assert cloud.world.counters.mutations("hetzner") == before


async def test_an_unreachable_provider_fails_visibly_and_a_rerun_converges(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    engine = await open_engine()
    await plan_cluster(engine, ("web-1", "web-2"))
    assert (await engine.materialize(yes=True)).ok
    tracked_before = dict(engine.state.tracked.servers)

    await engine.plan_upsert_server(name="web-3", provider="hetzner")
    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=list(NAMES))
    await cloud.suspend("hetzner")
    failed = await engine.materialize(yes=True)
    assert not failed.ok and failed.status == "failed"
    assert "\n" not in failed.summary and failed.summary.startswith("materialize incomplete:")
    rows = {(r["kind"], r["name"]): r for r in (await engine.snapshot())["rows"]}
    assert "cannot reach" in rows[("server", "web-3")]["error"]
    assert dict(engine.state.tracked.servers) == tracked_before  # nothing tracked is lost
    assert engine.state.operations[-1].status == "failed"

    await cloud.resume("hetzner")
    again = await engine.materialize(yes=True)
    assert again.ok, again.summary
    view = provider_view(hetzner(cloud))
    addresses = view["servers"]
    assert isinstance(addresses, dict) and sorted(addresses) == list(NAMES)
    assert view["records"] == host_records(view)
    rows = {(r["kind"], r["name"]): r for r in (await engine.snapshot())["rows"]}
    assert all(not row["error"] for row in rows.values())
