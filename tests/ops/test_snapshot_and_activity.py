"""The app snapshot assembler, activity derivation, and coalesced publication through the engine."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from legion_nb.engine import planning
from legion_nb.engine.activity import ActivityEmitter, CurrentOperation
from legion_nb.engine.cluster.firewall_plan import OPEN_WARNING
from legion_nb.engine.diff import ServerRows
from legion_nb.engine.events import EventHub
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.snapshot import SnapshotRows, StateView, assemble
from legion_nb.engine.state.model import (
    LegionState,
    PlannedCluster,
    PlannedServer,
    Scheme,
    Tracked,
    TrackedFirewall,
    utcnow,
)

PASSWORD = "ops password 1"


def _actor(kind: str, name: str, **changes: object) -> ActorSnapshot:
    base = ActorSnapshot(
        key=ResourceKey(kind, name),  # type: ignore[arg-type]
        provider="hetzner",
        lifecycle="running",
        system=None,
        health="unknown",
        operation=None,
        substage=None,
        waiting=None,
        error=None,
        settled=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _planned(*names: str) -> LegionState:
    servers = {n: PlannedServer(name=n, provider="hetzner") for n in names}
    return LegionState(scheme=Scheme(clusters={"default": PlannedCluster("default", servers)}))


def test_rows_without_an_actor_read_unknown_and_actor_rows_carry_beliefs() -> None:
    state = _planned("web-1", "web-2")
    snapshot = assemble(state, 4, [_actor("server", "web-1", operation="create", settled=False)])
    rows = {(r["kind"], r["name"]): r for r in snapshot["rows"]}
    assert snapshot["revision"] == 4 and snapshot["locked"] is False
    assert (
        rows[("server", "web-1")]["state"] == "running" and rows[("server", "web-1")]["operation"] == "create"
    )
    assert rows[("server", "web-2")]["state"] == "unknown" and rows[("server", "web-2")]["action"] == "create"
    assert {f["field"] for f in rows[("server", "web-2")]["fields"]} >= {"server_type", "location"}


def test_derived_firewall_sets_read_create_then_unchanged_never_delete() -> None:
    state = _planned("web-1")
    rows = {(r["kind"], r["name"]): r for r in assemble(state, 1, [])["rows"]}
    derived = rows[("firewall", "legion-default-hetzner")]
    assert derived["action"] == "create" and derived["note"].startswith("derived from cluster default")
    assert derived["note"] == "derived from cluster default"  # explanation only; the warning apart
    assert derived["warnings"] == [{"code": OPEN_WARNING.code, "message": OPEN_WARNING.message}]
    tracked = dataclasses.replace(
        state,
        tracked=Tracked(
            firewalls={"legion-default-hetzner": TrackedFirewall("legion-default-hetzner", "hetzner", "9")}
        ),
    )
    rows = {(r["kind"], r["name"]): r for r in assemble(tracked, 2, [])["rows"]}
    assert rows[("firewall", "legion-default-hetzner")]["action"] == "unchanged"


def test_kept_rows_are_the_same_rows_a_fresh_assembly_builds_and_only_moved_ones_are_new() -> None:
    built, server_rows = SnapshotRows(), ServerRows()
    state = _planned("web-1", "web-2")
    actors = [_actor("server", "web-1"), _actor("server", "web-2", operation="create", settled=False)]
    view = StateView.of(state, server_rows=server_rows)
    first = assemble(state, 1, actors, view=view, built=built)
    assert first == assemble(state, 1, actors, view=view)

    zoned = planning.upsert_dns_zone(state, zone="example.org", provider="hetzner")
    view = StateView.of(zoned, previous=view, server_rows=server_rows)  # the server rows carry over
    moved = [actors[0], dataclasses.replace(actors[1], operation=None, settled=True)]
    second = assemble(zoned, 2, moved, view=view, built=built)

    assert second == assemble(zoned, 2, moved, view=view)
    by_name = {r["name"]: r for r in second["rows"]}
    kept = {r["name"]: r for r in first["rows"]}
    assert by_name["web-1"] is kept["web-1"]  # neither its diff row nor its actor moved
    assert by_name["web-2"] is not kept["web-2"] and by_name["web-2"]["settled"] is True
    assert by_name["example.org"]["action"] == "create"


def test_a_settled_actor_the_state_no_longer_names_is_not_shown() -> None:
    state = _planned()
    gone = _actor("dns_zone", "old.example.org")
    working = _actor("dns_zone", "busy.example.org", operation="delete", settled=False)
    names = {r["name"] for r in assemble(state, 1, [gone, working])["rows"]}
    assert names == {"busy.example.org"}


async def test_activity_is_derived_from_snapshots_without_percentages() -> None:
    hub = EventHub()
    activity = ActivityEmitter(hub)
    stream = hub.subscribe(["activity"])
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)  # the subscription exists once its generator runs
    activity.begin(CurrentOperation(id="op-1", kind="materialize", started=utcnow()))
    waiting = _actor(
        "dns_zone", "example.org", lifecycle="waiting", waiting="waiting for web-1", settled=False
    )
    activity.actors_changed([waiting, dataclasses.replace(waiting, revision=7)])  # same visible status
    failed = _actor("server", "web-1", lifecycle="failed", error="hetzner: cannot reach it")
    activity.actors_changed([failed])
    stale = _actor(
        "firewall", "fw", lifecycle="applied", waiting="legion materialize: rules and servers out of date"
    )
    activity.actors_changed([stale])
    event = await asyncio.wait_for(first, 5)
    summaries = [item["summary"] for item in event.data]
    assert summaries == [
        "materialize started",
        "dns zone example.org: waiting for web-1",
        "server web-1: failed - hetzner: cannot reach it",
        "firewall fw: applied, waiting for legion materialize: rules and servers out of date",
    ]
    view = activity.view([waiting, failed])
    assert view["operation"]["id"] == "op-1"
    assert view["counts"] == {"failed": 1, "waiting": 1} and view["total"] == 2 and view["settled"] == 1
    assert view["current"][0]["waiting"] == "waiting for web-1"
    assert view["errors"] == [{"kind": "server", "name": "web-1", "error": "hetzner: cannot reach it"}]
    assert "percent" not in str(view)
    activity.finish("failed", "materialize incomplete")
    assert activity.view([])["last"]["status"] == "failed"
    hub.close()
    await stream.aclose()


async def test_an_actor_retired_after_its_resource_was_deleted_says_nothing_more() -> None:
    """The supervisor stops the actor of a deleted server: that is the actor's end, not a status
    of the server (a deleted server cannot then stop). A new actor for the name is news again."""
    hub = EventHub()
    activity = ActivityEmitter(hub)
    stream = hub.subscribe(["activity"])
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)  # the subscription exists once its generator runs
    deleting = _actor("server", "web-1", lifecycle="deleting", operation="delete", settled=False)
    activity.actors_changed([deleting])
    activity.actors_changed([_actor("server", "web-1", lifecycle="deleted")])
    activity.actors_changed([_actor("server", "web-1", lifecycle="stopped")])
    activity.actors_changed([_actor("server", "web-1", lifecycle="planned", settled=False)])  # planned again
    event = await asyncio.wait_for(first, 5)
    assert [item["summary"] for item in event.data] == [
        "server web-1: deleting (delete)",
        "server web-1: deleted",
        "server web-1: planned",
    ]
    hub.close()
    await stream.aclose()


async def test_ten_thousand_actor_changes_in_one_tick_are_one_publication(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "s.legion")
    await engine.bootstrap(PASSWORD)
    try:
        await engine.plan_upsert_server(name="web-1", provider="hetzner")
        resources = engine.core.resources
        key = ResourceKey("server", "web-1")
        while resources.actor(key) is None:  # the supervisor starts it after the commit
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let start-up publications drain
        actor = resources.actor(key)
        assert actor is not None
        current = actor.snapshot()
        stream = engine.subscribe(["snapshot"])
        await asyncio.wait_for(stream.__anext__(), 5)  # the latest snapshot, sent on subscribing
        hub_before, supervisor_before = engine.events.publications, resources.publications
        for revision in range(10_000):  # the path every actor reports through, all in one tick
            actor.context.changed(dataclasses.replace(current, revision=current.revision + revision + 1))
        event = await asyncio.wait_for(stream.__anext__(), 5)
        await asyncio.sleep(0.05)
        assert resources.publications - supervisor_before == 1
        assert engine.events.publications - hub_before == 1
        assert [r["name"] for r in event.data["rows"] if r["kind"] == "server"] == ["web-1"]
        await stream.aclose()
    finally:
        await engine.aclose()
