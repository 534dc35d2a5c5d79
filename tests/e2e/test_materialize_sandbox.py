"""Materialize end to end over real HTTP against the sandbox's Hetzner emulator.

The bar (issue 4): a 3-server cluster + zone + DNS host materializes and the provider then holds
exactly those servers, a firewall whose TCP 4413 rule admits only the peers' addresses, and the A
records; removing a server deletes it and updates records and firewall; a no-change materialize
sends no mutating request; a new engine on the same state shows the same snapshot and creates
nothing.
"""

from __future__ import annotations

import asyncio

import pytest
from e2ekit import EngineFactory, hetzner, host_records, peer_sources, plan_cluster, provider_view

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.errors import ApplyRunningError, UsageError
from legion_nb.providers.ownership import LEGION_ID_LABEL, LEGION_MANAGED_LABEL

NAMES = ("web-1", "web-2", "web-3")


def _rows(snapshot: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    rows = snapshot["rows"]
    assert isinstance(rows, list)
    return {(r["kind"], r["name"]): r for r in rows}


async def test_a_cluster_materializes_converges_and_shrinks(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    engine = await open_engine()
    await plan_cluster(engine)

    report = await engine.materialize(yes=True)
    assert report.ok, report.summary
    project = hetzner(cloud)
    view = provider_view(project)
    addresses = view["servers"]
    assert isinstance(addresses, dict) and sorted(addresses) == list(NAMES)
    for server in project.servers.values():
        assert server.labels[LEGION_MANAGED_LABEL] == "true" and server.labels[LEGION_ID_LABEL]
        assert server.server_type.name and server.location.name  # chosen by the catalog policy
    peers = peer_sources(view)
    assert view["firewalls"] == {
        "legion-default-hetzner": {
            "sync_sources": peers,
            "ports": ["22", "4413", "8443"],
            "applied": list(NAMES),
        }
    }
    assert view["records"] == host_records(view)
    tracked = engine.state.tracked
    assert sorted(tracked.servers) == list(NAMES) and not tracked.pending
    rows = _rows(await engine.snapshot())
    assert {rows[("server", n)]["state"] for n in NAMES} == {"running"}
    assert all(row["action"] == "unchanged" for row in rows.values())

    # A second materialize with nothing to change sends no state-changing request.
    before = cloud.world.counters.mutations("hetzner")
    again = await engine.materialize(yes=True)
    assert again.ok and cloud.world.counters.mutations("hetzner") == before

    # Removing a server: it is deleted; the records and the firewall follow.
    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=["web-1", "web-2"])
    await engine.plan_remove_server("web-3")
    shrunk = await engine.materialize(yes=True)
    assert shrunk.ok, shrunk.summary
    view = provider_view(project)
    remaining = view["servers"]
    assert isinstance(remaining, dict) and sorted(remaining) == ["web-1", "web-2"]
    assert view["firewalls"] == {
        "legion-default-hetzner": {
            "sync_sources": peer_sources(view),
            "ports": ["22", "4413", "8443"],
            "applied": ["web-1", "web-2"],
        }
    }
    assert view["records"] == host_records(view)
    assert sorted(engine.state.tracked.servers) == ["web-1", "web-2"]
    log = [(op.kind, op.status) for op in engine.state.operations]
    assert log.count(("materialize", "succeeded")) == 3


async def test_a_new_engine_on_the_same_state_shows_the_same_snapshot_and_creates_nothing(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    first = await open_engine()
    await plan_cluster(first)
    assert (await first.materialize(yes=True)).ok
    seen = _rows(await first.snapshot())
    await first.aclose()

    second = await open_engine()
    mutations = cloud.world.counters.mutations("hetzner")
    reopened = _rows(await second.snapshot())
    keep = ("kind", "name", "provider", "action", "state", "facts")
    assert {k: {f: r[f] for f in keep} for k, r in reopened.items()} == {
        k: {f: r[f] for f in keep} for k, r in seen.items()
    }
    report = await second.materialize(yes=True)
    assert report.ok, report.summary
    assert cloud.world.counters.mutations("hetzner") == mutations
    assert len(hetzner(cloud).servers) == 3


async def test_materialize_needs_yes_and_runs_one_at_a_time(open_engine: EngineFactory) -> None:
    engine = await open_engine()
    await plan_cluster(engine, ("solo-1",))
    with pytest.raises(UsageError, match="review `legion diff`"):
        await engine.materialize(yes=False)
    running = asyncio.create_task(engine.materialize(yes=True))
    activity = await engine.activity()
    while activity["operation"] is None:
        await asyncio.sleep(0)
        activity = await engine.activity()
    assert activity["operation"]["kind"] == "materialize"
    with pytest.raises(ApplyRunningError, match="already running"):
        await engine.materialize(yes=True)
    assert (await running).ok
    done = await engine.activity()
    assert done["operation"] is None and done["last"]["status"] == "succeeded"
    assert done["errors"] == [] and done["total"] == done["settled"]


async def test_server_commands_reboot_reinstall_delete(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    engine = await open_engine()
    await plan_cluster(engine, ("cmd-1", "cmd-2"))
    assert (await engine.materialize(yes=True)).ok
    counters = cloud.world.counters
    before = counters.mutations("hetzner")
    reboot = await engine.server_reboot("cmd-1")
    assert reboot.status == "succeeded" and counters.mutations("hetzner") == before + 1
    reinstall = await engine.server_reinstall("cmd-1")
    assert reinstall.status == "succeeded" and counters.mutations("hetzner") == before + 2
    assert hetzner(cloud).servers[int(engine.state.tracked.servers["cmd-1"].provider_id)].status == "running"

    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=["cmd-1"])
    deleted = await engine.server_delete("cmd-2")
    assert deleted.status == "succeeded", deleted.summary
    assert sorted(s.name for s in hetzner(cloud).servers.values()) == ["cmd-1"]
    assert engine.state.scheme.find_server("cmd-2") is None
    assert "cmd-2" not in engine.state.tracked.servers
    with pytest.raises(UsageError, match="not tracked"):
        await engine.server_reboot("cmd-2")


async def test_deleting_a_server_a_dns_host_still_names_is_refused_before_anything(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    engine = await open_engine()
    await plan_cluster(engine, ("keep-1",))
    assert (await engine.materialize(yes=True)).ok
    log = len(engine.state.operations)
    with pytest.raises(UsageError, match=r"still used by DNS host www\.example\.org"):
        await engine.server_delete("keep-1")
    assert len(engine.state.operations) == log and len(hetzner(cloud).servers) == 1
