"""The panels over a real engine: rows from the snapshot stream, one comm message per redraw."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import IPython
import pytest
from IPython.core.events import EventManager, available_events
from widgetkit import RecordingComm, RedrawGate, until, until_matches_engine

from legion_nb.engine.runtime import Engine
from legion_nb.widgets import ActivityPanel, Dashboard, LivePanel, PlanDiffPanel, ResourcesPanel, show
from legion_nb.widgets.panel import STATIC
from legion_nb.widgets.rows import (
    PanelDataError,
    Snapshot,
    activity_lines,
    parse_snapshot,
    state_counts,
    tally,
)

SERVERS = ("node-1", "node-2", "node-3")


async def plan_cluster_and_draw(engine: Engine, panel: LivePanel) -> None:
    """Plan the cluster and wait until ``panel`` has drawn the state revision that holds it."""
    await plan_cluster(engine)
    revision = engine.assert_unlocked().revision
    await until(lambda: panel.revision == revision)


def keys(snapshot: Snapshot) -> list[tuple[str, str]]:
    return [(r["kind"], r["name"]) for r in snapshot.rows]


async def plan_cluster(engine: Engine) -> None:
    for name in SERVERS:
        await engine.plan_upsert_server(name=name, provider="hetzner")
    await engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=list(SERVERS))


async def test_resources_panel_shows_the_engines_rows(engine: Engine) -> None:
    panel = ResourcesPanel(engine, min_interval=0)
    await plan_cluster_and_draw(engine, panel)
    # Exactly what the engine published, nothing invented.
    await until_matches_engine(engine, lambda: panel.rows, lambda data: list(parse_snapshot(data).rows))
    planned = {(r["kind"], r["name"]): r for r in panel.rows}
    for name in SERVERS:
        assert planned["server", name]["provider"] == "hetzner"
        assert planned["server", name]["action"] == "create"
    assert planned["dns_zone", "example.org"]["action"] == "create"
    assert all(r["state"] for r in panel.rows)  # a lifecycle state, or "unknown" until an actor reports
    assert set(panel.rows[0]) == {
        "kind",
        "name",
        "provider",
        "action",
        "state",
        "operation",
        "substage",
        "waiting",
        "error",
        "settled",
        "note",
        "warnings",
    }
    # No operator access planned: the derived firewall's row carries the warning as its own field.
    firewall = planned["firewall", "legion-default-hetzner"]
    assert [w["code"] for w in firewall["warnings"]] == ["open_access"]
    assert "open to anywhere" in firewall["warnings"][0]["message"]
    assert "WARNING" not in firewall["note"] and firewall["note"] == "derived from cluster default"
    assert planned["server", SERVERS[0]]["warnings"] == []
    assert panel.feed_status == "live" and not panel.locked
    panel.close()


async def test_each_redraw_is_one_comm_message(
    quiet_engine: Engine, recorded_comms: list[RecordingComm]
) -> None:
    engine, gate = quiet_engine, RedrawGate()
    panel = ResourcesPanel(engine, min_interval=0, sleep=gate)
    (channel,) = [c for c in recorded_comms if c.comm_id == panel.model_id]  # not its Layout's comm
    feed = panel.feed
    assert feed is not None
    await gate.rested()  # the engine's current snapshot is drawn
    assert feed.redraws == 1
    await engine.plan_upsert_server(name="solo", provider="ovh")
    while not any(r["name"] == "solo" for r in panel.rows):  # redraw by redraw until the change shows
        before, shown = len(channel.updates()), panel.get_state()
        await gate.next_redraw()
        updates = channel.updates()[before:]
        # a redraw that changes what the panel holds is one comm message; one that changes nothing, none
        assert len(updates) == (0 if panel.get_state() == shown else 1), updates
    assert len(updates) == 1  # rows and revision travelled together (hold_sync)
    assert {"rows", "revision"} <= set(updates[0]["state"])
    panel.close()


async def test_plan_diff_panel_shows_fields_and_actions_and_follows_the_lock(engine: Engine) -> None:
    panel = PlanDiffPanel(engine, min_interval=0)
    await plan_cluster_and_draw(engine, panel)
    shown = lambda: [(r["kind"], r["name"]) for r in panel.resources]  # noqa: E731
    data = await until_matches_engine(engine, shown, lambda d: keys(parse_snapshot(d)))
    assert panel.counts == tally(r["action"] for r in parse_snapshot(data).rows)
    node = next(r for r in panel.resources if r["name"] == "node-1")
    fields = {f["field"]: f for f in node["fields"]}
    assert fields["provider"]["planned"] == "hetzner" and fields["provider"]["tracked"] is None
    assert fields["server_type"]["planned"] == "(policy)"  # the catalog policy will choose
    assert not any(f["changed"] for f in node["fields"])

    await engine.logout()
    await until(lambda: panel.locked)
    assert panel.resources == [] and panel.counts == {} and panel.revision is None
    panel.close()


def test_the_recent_activity_lines_are_the_headlines_legion_materialize_prints() -> None:
    """A phase's end is a detail (the next phase's start tells it): left out of the recent lines
    as ``legion materialize`` leaves it out; a failure always shows."""
    at = "2026-11-27T16:30:05+00:00"

    def phase(name: str, status: str, *, detail: bool) -> dict[str, object]:
        summary = f"node web-1: add {name} {status}"
        return {"event": "phase", "node": "web-1", "operation": "add", "phase": name, "status": status,
                "time": at, "summary": summary, "detail": detail}  # fmt: skip

    batch = [
        phase("kexec", "started", detail=False),
        phase("kexec", "ended", detail=True),
        phase("reboot", "failed", detail=False),
        {"event": "resource", "summary": "server web-1: running", "time": at},
    ]
    assert activity_lines(batch) == [
        "16:30:05 node web-1: add kexec started",
        "16:30:05 node web-1: add reboot failed",
        "16:30:05 server web-1: running",
    ]


async def test_activity_panel_counts_states_and_actions_and_keeps_recent_items(engine: Engine) -> None:
    panel = ActivityPanel(engine, min_interval=0)
    await plan_cluster_and_draw(engine, panel)
    data = await until_matches_engine(
        engine, lambda: panel.states, lambda d: state_counts(parse_snapshot(d).rows)
    )
    snapshot = parse_snapshot(data)
    assert panel.total == len(snapshot.rows) >= 4
    assert panel.actions == tally(r["action"] for r in snapshot.rows)
    assert panel.settled == sum(r["settled"] for r in snapshot.rows)
    assert panel.operations == []  # nothing runs: no operation shown, no invented progress
    assert panel.running == ""
    engine.events.publish(
        "activity", {"event": "begin", "summary": "materialize started", "time": "2026-11-27T16:30:05+00:00"}
    )
    engine.events.publish("activity", {"kind": "refresh", "provider": "hetzner"})
    await until(lambda: '{"kind":"refresh","provider":"hetzner"}' in panel.recent)
    assert panel.recent[-2:] == ["16:30:05 materialize started", '{"kind":"refresh","provider":"hetzner"}']
    assert panel.running == "materialize started"
    end = {"event": "end", "summary": "materialize: 4 settled", "status": "succeeded"}
    engine.events.publish("activity", end)
    await until(lambda: panel.running == "")
    assert panel.last_operation == "materialize: 4 settled (succeeded)"
    panel.close()


async def test_plan_diff_fields_are_the_engines_own_diff(engine: Engine) -> None:
    panel = PlanDiffPanel(engine, min_interval=0)
    await plan_cluster(engine)
    await until(lambda: {"node-1", "node-2", "node-3", "example.org"} <= {r["name"] for r in panel.resources})
    shown = {(r["kind"], r["name"]): r for r in panel.resources}
    for resource in (await engine.diff()).to_json()["resources"]:
        row = shown[resource["kind"], resource["name"]]
        assert row["action"] == resource["action"]
        assert row["fields"] == resource["fields"]
    panel.close()


async def test_close_cancels_the_feed(engine: Engine) -> None:
    others = engine.events.subscribers  # the session's own followers (Legion's log)
    panel = ResourcesPanel(engine, min_interval=0)
    await until(lambda: engine.events.subscribers == others + 1)
    panel.close()
    feed = panel.feed
    assert feed is not None
    await feed.wait_closed()
    assert not feed.running and engine.events.subscribers == others


async def test_show_stacks_the_three_panels_and_close_stops_them_all(engine: Engine) -> None:
    others = engine.events.subscribers  # the session's own followers (Legion's log)
    dashboard = show(engine, min_interval=0)
    assert isinstance(dashboard, Dashboard)
    kinds = (ResourcesPanel, PlanDiffPanel, ActivityPanel)
    assert len(dashboard.children) == 3
    assert all(isinstance(p, kind) for p, kind in zip(dashboard.children, kinds, strict=True))
    await plan_cluster(engine)
    await until(lambda: dashboard.activity.total >= 4 and len(dashboard.plan_diff.resources) >= 4)
    dashboard.close()
    for panel in dashboard.panels:
        assert panel.feed is not None
        await panel.feed.wait_closed()
    assert engine.events.subscribers == others


async def test_a_snapshot_the_panel_cannot_read_is_logged_and_the_next_one_drawn(
    quiet_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine, gate = quiet_engine, RedrawGate()
    panel = ResourcesPanel(engine, min_interval=0, sleep=gate)
    feed = panel.feed
    assert feed is not None
    await gate.rested()  # the engine's current snapshot is drawn; a quiet engine publishes no other
    assert feed.redraws == 1
    with caplog.at_level(logging.ERROR, logger="legion_nb.widgets.feed"):
        engine.events.publish("snapshot", {"rows": "not a list"})
        await gate.next_redraw()  # the only publication since: the unreadable snapshot
    assert feed.redraws == 2
    assert any("drawing an update failed" in r.getMessage() for r in caplog.records)
    await engine.plan_upsert_dns_zone(zone="example.net", provider="scaleway")
    while "example.net" not in [r["name"] for r in panel.rows]:  # the feed carries on with the next ones
        await gate.next_redraw()
    panel.close()


def test_panels_need_a_running_loop(tmp_path: Path) -> None:
    from legion_nb.engine.runtime import create_engine  # noqa: PLC0415
    from legion_nb.errors import UsageError  # noqa: PLC0415

    with pytest.raises(UsageError, match="running event loop"):
        ResourcesPanel(create_engine(tmp_path / "s.legion"))


def test_bad_shapes_are_one_line_panel_data_errors() -> None:
    for bad in ([1, 2], "text", {"rows": {"a": 1}}, {"rows": [3]}):
        with pytest.raises(PanelDataError) as info:
            parse_snapshot(bad)
        assert "\n" not in str(info.value) and "upgrade engine and widgets together" in str(info.value)
    with pytest.raises(PanelDataError, match="fields are not a list"):
        parse_snapshot({"rows": [{"kind": "server", "fields": "provider"}]})
    with pytest.raises(PanelDataError, match="a diff field is a NoneType"):
        parse_snapshot({"rows": [{"kind": "server", "fields": [None]}]})
    with pytest.raises(PanelDataError, match="warnings are not a list"):
        parse_snapshot({"rows": [{"kind": "firewall", "warnings": "SSH is open"}]})
    with pytest.raises(PanelDataError, match="a warning is a str"):
        parse_snapshot({"rows": [{"kind": "firewall", "warnings": ["SSH is open"]}]})


def test_rows_fill_missing_keys_and_keep_structured_values_readable() -> None:
    snapshot = parse_snapshot(
        {"revision": 7, "rows": [{"kind": "server", "name": "a", "waiting": {"zone": "example.org"}}]}
    )
    (row,) = snapshot.rows
    assert row["state"] == "unknown" and row["operation"] == "" and row["provider"] == ""
    assert row["waiting"] == '{"zone":"example.org"}'
    assert snapshot.revision == 7 and not snapshot.locked


def test_the_static_files_ship_inside_the_package() -> None:
    for name in ("common.js", "resources.js", "plan_diff.js", "activity.js", "panels.css"):
        assert (STATIC / name).is_file(), name
    for panel in (ResourcesPanel, PlanDiffPanel, ActivityPanel):
        assert "export default" in str(panel._esm)
        assert "lnbMount" in str(panel._esm)  # the shared helpers are part of each module


async def test_after_each_cell_a_changed_panel_sends_its_whole_state_from_that_cell(
    engine: Engine, recorded_comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed's updates answer the cell that made the panel, and a headless run (nbclient) keeps only
    the running cell's messages; the state sent again after each cell is what a saved notebook holds."""
    events = EventManager(shell=None, available_events=available_events)
    monkeypatch.setattr(IPython, "get_ipython", lambda: SimpleNamespace(events=events))
    panel = ResourcesPanel(engine, min_interval=0)
    (channel,) = [c for c in recorded_comms if c.comm_id == panel.model_id]
    feed = panel.feed
    assert feed is not None
    await plan_cluster(engine)
    await until(lambda: {r["name"] for r in panel.rows} >= set(SERVERS))
    before = len(channel.updates())
    events.trigger("post_run_cell", None)
    (resent,) = channel.updates()[before:]
    assert resent["state"]["feed_status"] == "live"
    assert {r["name"] for r in resent["state"]["rows"]} >= set(SERVERS)
    events.trigger("post_run_cell", None)  # nothing changed since: nothing to send again
    assert len(channel.updates()) == before + 1
    panel.close()
