"""Refresh over real HTTP: observed facts stored, Legion's own resources adopted, others left alone.

A state lost after a materialize (a new state planning the same cluster) adopts the labelled
servers, zone and firewall on refresh, and its materialize then creates no server. A server without
Legion's labels is reported as not Legion's and never deleted; a labelled one nobody plans is
reported as an orphan and never deleted either.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from e2ekit import PASSWORD, EngineFactory, hetzner, plan_cluster

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.sandbox_engine import sandbox_policy

NAMES = ("web-1", "web-2", "web-3")


async def _create_foreign_server(cloud: SandboxCloud, name: str, labels: dict[str, str]) -> None:
    block = cloud.endpoints()["hetzner"]
    server = next(iter(hetzner(cloud).servers.values()))
    body = {
        "name": name,
        "server_type": server.server_type.name,
        "location": server.location.name,
        "image": "debian-12",
        "labels": labels,
    }
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {block['token']}"}) as client:
        response = await client.post(f"{block['url']}/servers", json=body)
        assert response.status_code == 201, response.text


async def test_refresh_adopts_labelled_resources_and_leaves_the_rest(
    cloud: SandboxCloud, open_engine: EngineFactory, tmp_path: Path
) -> None:
    first = await open_engine()
    await plan_cluster(first)
    assert (await first.materialize(yes=True)).ok
    owned = next(iter(hetzner(cloud).servers.values())).labels
    await _create_foreign_server(cloud, "hand-made", {"team": "ops"})
    await _create_foreign_server(
        cloud, "stray", {**owned, "legion/id": "00000000-0000-4000-8000-000000000001"}
    )
    refreshed = await first.refresh()
    assert refreshed.ok
    report = refreshed.providers[0]
    assert "server hand-made" in report.unmanaged and "server stray" in report.orphans
    assert report.adopted == ()
    observed = first.state.observed["hetzner"]
    assert sorted(s.name for s in observed.servers.values()) == sorted([*NAMES, "hand-made", "stray"])
    before = cloud.world.counters.mutations("hetzner")
    assert (await first.materialize(yes=True)).ok
    assert cloud.world.counters.mutations("hetzner") == before  # nothing of theirs is touched
    await first.aclose()

    # The state is lost; a new one plans the same cluster and refreshes (as `legion refresh` would),
    # then the next process materializes (as `legion materialize` would).
    path = tmp_path / "second.legion"
    second = create_engine(path, SessionSettings(broker=sandbox_policy()))
    try:
        await second.bootstrap(PASSWORD)
        block = cloud.endpoints()["hetzner"]
        await second.credentials_set("hetzner", {"token": block["token"]}, endpoint=block["url"])
        await plan_cluster(second)
        result = await second.refresh()
        creates = cloud.world.counters.snapshot()["hetzner"].get("POST /v1/servers", 0)
        assert creates == 5  # three by the first engine, two by hand
        applied = await second.materialize(yes=True)  # the same engine: its actors learned it
        assert applied.ok, applied.summary
        assert cloud.world.counters.snapshot()["hetzner"].get("POST /v1/servers", 0) == creates
    finally:
        await second.aclose()
    assert set(result.providers[0].adopted) == {
        "server web-1",
        "server web-2",
        "server web-3",
        "dns zone example.org",
        "firewall legion-default-hetzner",
    }
    third = create_engine(path, SessionSettings(broker=sandbox_policy()))
    try:
        await third.unlock(PASSWORD)
        creates = cloud.world.counters.snapshot()["hetzner"].get("POST /v1/servers", 0)
        assert creates == 5  # three by the first engine, two by hand
        applied = await third.materialize(yes=True)
        assert applied.ok, applied.summary
        assert cloud.world.counters.snapshot()["hetzner"].get("POST /v1/servers", 0) == creates
        assert sorted(s.name for s in hetzner(cloud).servers.values()) == sorted(
            [*NAMES, "hand-made", "stray"]
        )
    finally:
        await third.aclose()


async def test_refresh_without_credentials_is_one_clear_error(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "bare.legion")
    try:
        await engine.bootstrap(PASSWORD)
        try:
            await engine.refresh()
        except Exception as exc:
            assert "legion credentials set" in str(exc)
        else:
            raise AssertionError("refresh without credentials must fail")
    finally:
        await engine.aclose()


async def test_a_resource_deleted_after_a_refresh_is_not_left_behind_as_an_orphan(
    cloud: SandboxCloud, open_engine: EngineFactory
) -> None:
    """Deleting is news about the provider: the last refresh's record of what Legion just deleted
    must not linger as an "orphan" in the diff or an unsettled row in the snapshot."""
    engine = await open_engine()
    await plan_cluster(engine)
    assert (await engine.materialize(yes=True)).ok
    assert (await engine.refresh()).ok  # observed now holds web-3
    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=["web-1", "web-2"])
    await engine.plan_remove_server(name="web-3")
    assert (await engine.materialize(yes=True)).ok
    assert "web-3" not in {s.name for s in hetzner(cloud).servers.values()}
    diff = await engine.diff()
    assert [(r.kind, r.name) for r in diff.resources if r.action == "orphan"] == []
    rows = (await engine.snapshot())["rows"]
    assert [r for r in rows if r["name"] == "web-3"] == []
    observed = engine.state.observed["hetzner"]
    assert "web-3" not in {s.name for s in observed.servers.values()}
    await engine.aclose()
