"""The pure diff: actions and field-by-field views."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from legion_nb.engine import planning
from legion_nb.engine.cluster.firewall_plan import cluster_firewall_name, cluster_orphan_rule
from legion_nb.engine.diff import POLICY, FieldDiff, ServerRows, diff
from legion_nb.engine.snapshot import StateView
from legion_nb.engine.state.model import (
    CreatePending,
    LegionState,
    ObservedDnsZone,
    ObservedFirewall,
    ObservedProvider,
    ObservedServer,
    Tracked,
    TrackedDnsZone,
    TrackedFirewall,
    TrackedServer,
    empty_state,
    synthetic_state,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MANAGED = {"legion/managed": "true", "legion/id": "6f1c5e0a-2b7d-4c3e-9a8f-1d2e3f4a5b6c"}
"""Both of the labels Legion writes at create time: what makes an unheld resource an orphan."""


def rows(state: LegionState) -> dict[tuple[str, str], tuple[str, dict[str, FieldDiff]]]:
    return {(r.kind, r.name): (r.action, {f.field: f for f in r.fields}) for r in diff(state).resources}


def base() -> LegionState:
    state = planning.upsert_server(empty_state(), name="new", provider="hetzner")
    state = planning.upsert_server(state, name="same", provider="hetzner", server_type="cx22")
    state = planning.upsert_server(state, name="changed", provider="hetzner", server_type="cx32")
    state = planning.upsert_server(state, name="adoptable", provider="hetzner")
    state = planning.upsert_dns_zone(state, zone="example.org", provider="hetzner")
    tracked = {
        name: TrackedServer(
            name=name,
            provider="hetzner",
            provider_id=pid,
            created=NOW,
            server_type="cx22",
            location="fsn1",
            image="debian-12",
            status="running",
            labels=MANAGED,
        )
        for name, pid in (("same", "1"), ("changed", "2"), ("retired", "3"))
    }
    observed = ObservedProvider(
        provider="hetzner",
        refreshed=NOW,
        servers={
            "1": ObservedServer(provider_id="1", name="same", status="running", labels=MANAGED),
            "2": ObservedServer(provider_id="2", name="changed", status="off", labels=MANAGED),
            "3": ObservedServer(provider_id="3", name="retired", labels=MANAGED),
            "4": ObservedServer(provider_id="4", name="adoptable"),
            "5": ObservedServer(provider_id="5", name="stray", labels=MANAGED),
            "6": ObservedServer(provider_id="6", name="foreign"),
        },
        dns_zones={"z1": ObservedDnsZone(zone="old.example.org", provider_id="z1", labels=MANAGED)},
    )
    return replace(state, tracked=Tracked(servers=tracked), observed={"hetzner": observed})


def test_every_action() -> None:
    table = rows(base())
    assert table[("server", "new")][0] == "create"
    assert table[("server", "same")][0] == "unchanged"
    assert table[("server", "changed")][0] == "update"
    assert table[("server", "retired")][0] == "delete"
    assert table[("server", "adoptable")][0] == "adopt"
    assert table[("server", "stray")][0] == "orphan"
    assert ("server", "foreign") not in table  # not ours: no label, not planned
    assert table[("dns_zone", "example.org")][0] == "create"
    assert table[("dns_zone", "old.example.org")][0] == "orphan"


def test_fields_show_three_views_and_policy() -> None:
    table = rows(base())
    _, fields = table[("server", "changed")]
    st = fields["server_type"]
    assert (st.planned, st.tracked, st.changed) == ("cx32", "cx22", True)
    assert fields["status"].observed == "off"
    assert fields["location"].planned == POLICY and not fields["location"].changed
    _, new_fields = table[("server", "new")]
    assert new_fields["image"].planned == POLICY
    assert new_fields["image"].tracked is None


def test_a_tracked_server_gone_at_a_refreshed_provider_is_recreated() -> None:
    state = base()
    observed = state.observed["hetzner"]
    servers = {k: v for k, v in observed.servers.items() if k != "1"}
    later = NOW + dt.timedelta(minutes=5)  # a refresh after the server was created
    state = replace(state, observed={"hetzner": replace(observed, servers=servers, refreshed=later)})
    resource = next(r for r in diff(state).resources if r.name == "same")
    assert resource.action == "create"
    assert "gone" in resource.note


def test_a_server_created_after_the_last_refresh_is_not_gone() -> None:
    state = base()
    observed = state.observed["hetzner"]
    servers = {k: v for k, v in observed.servers.items() if k != "1"}
    earlier = NOW - dt.timedelta(minutes=5)  # the refresh ran before materialize created it
    state = replace(state, observed={"hetzner": replace(observed, servers=servers, refreshed=earlier)})
    resource = next(r for r in diff(state).resources if r.name == "same")
    assert resource.action == "unchanged" and "gone" not in resource.note


def test_no_refresh_yet_means_no_verdict_from_absence() -> None:
    state = replace(base(), observed={})
    assert rows(state)[("server", "same")][0] == "unchanged"


def test_pending_creates_are_noted() -> None:
    state = base()
    pending = CreatePending(key="p", provider="hetzner", kind="server", name="new", started=NOW)
    state = replace(state, tracked=replace(state.tracked, pending={"p": pending}))
    resource = next(r for r in diff(state).resources if r.name == "new")
    assert resource.action == "create" and "pending" in resource.note


def test_tracked_zone_with_records_and_firewall_update() -> None:
    state = base()
    state = replace(
        state,
        tracked=replace(
            state.tracked,
            dns_zones={
                "example.org": TrackedDnsZone(zone="example.org", provider="hetzner", provider_id="z9")
            },
        ),
    )
    action, fields = rows(state)[("dns_zone", "example.org")]
    assert action == "create"  # tracked, but the refreshed provider does not show z9
    assert fields["provider_id"].tracked == "z9"


def test_diff_is_pure_and_deterministic() -> None:
    state = synthetic_state(300)
    first, second = diff(state), diff(state)
    assert first == second
    assert first.counts() == {"unchanged": 300, "create": 6}  # 3 zones and 3 firewalls are only planned
    assert [r.name for r in first.resources if r.kind == "server"] == sorted(state.tracked.servers)


def test_json_form_carries_changed_flags() -> None:
    data = diff(base()).to_json()
    assert data["counts"]["create"] >= 2
    changed = next(r for r in data["resources"] if r["name"] == "changed")
    assert any(f["field"] == "server_type" and f["changed"] for f in changed["fields"])


def test_a_provider_move_is_an_update_that_says_it_replaces() -> None:
    state = planning.upsert_server(base(), name="same", provider="scaleway", server_type="cx22")
    resource = next(r for r in diff(state).resources if r.name == "same")
    assert resource.action == "update"
    assert "replaces it" in resource.note


def test_server_rows_kept_between_diffs_give_the_same_diff_and_rebuild_only_what_changed() -> None:
    rows = ServerRows()
    before = synthetic_state(60)
    assert diff(before, server_rows=rows) == diff(before)

    servers = dict(before.tracked.servers)
    servers["node-00007"] = replace(servers["node-00007"], status="off", ipv4="127.0.0.99")
    del servers["node-00008"]  # tracked no more: the row says create again
    after = replace(before, tracked=replace(before.tracked, servers=servers))
    after = planning.upsert_server(after, name="fresh-1", provider="hetzner")
    after = replace(
        after,
        observed={p: replace(o, refreshed=None) if p == "ovh" else o for p, o in after.observed.items()},
    )
    first = {r.name: r for r in diff(before, server_rows=rows).resources}
    second = diff(after, server_rows=rows)

    assert second == diff(after)
    by_name = {r.name: r for r in second.resources}
    assert by_name["node-00003"] is first["node-00003"]  # hetzner, untouched: the same row
    assert by_name["node-00007"] is not first["node-00007"]
    assert by_name["node-00001"] is not first["node-00001"]  # its provider's observation changed
    assert by_name["fresh-1"].action == "create"


def test_a_commit_that_leaves_the_servers_alone_keeps_every_server_row() -> None:
    rows = ServerRows()
    before = base()  # orphans, an adoptable and a foreign server at a refreshed provider
    first = diff(before, server_rows=rows)
    after = planning.upsert_dns_zone(before, zone="other.example.org", provider="hetzner")
    second = diff(after, server_rows=rows)

    assert second == diff(after)
    kept = [r for r in first.resources if r.kind == "server"]
    again = [r for r in second.resources if r.kind == "server"]
    assert len(again) == len(kept) and all(a is b for a, b in zip(kept, again, strict=True))

    refreshed = replace(after.observed["hetzner"], refreshed=NOW + dt.timedelta(hours=1), servers={})
    later = replace(after, observed={"hetzner": refreshed})  # a refresh finds every server gone
    assert diff(later, server_rows=rows) == diff(later)
    assert {r.name: r.action for r in diff(later, server_rows=rows).resources}["same"] == "create"


def test_a_listed_firewall_named_for_a_derived_set_is_wanted_as_refresh_and_orphan_delete_judge() -> None:
    """Refresh adopts it and orphan_delete refuses it, so the diff must not call it an orphan."""
    derived = cluster_firewall_name("default", "hetzner")  # base() plans hetzner nodes in "default"
    observed = base().observed["hetzner"]
    firewalls = {
        "f1": ObservedFirewall(derived, "f1", MANAGED),
        "f2": ObservedFirewall("left-fw", "f2", MANAGED),
    }
    state = replace(base(), observed={"hetzner": replace(observed, firewalls=firewalls)})
    rule = cluster_orphan_rule(state)
    assert "refresh adopts it" in rule.refusal("hetzner", firewalls["f1"])
    pure = {r.name: r.action for r in diff(state, orphans=rule).resources if r.kind == "firewall"}
    assert pure == {"left-fw": "orphan"}  # the derived sets are added by the view, below
    view = {r.name: r for r in StateView.of(state).resources if r.kind == "firewall"}
    assert view["left-fw"].action == "orphan"
    assert view[derived].action == "adopt" and "orphan_delete" not in view[derived].note


def test_a_derived_set_the_provider_already_lists_is_adopted_only_when_refresh_would_take_it() -> None:
    """Before the first refresh tracks it, a Legion-labelled firewall with a derived set's name is
    what refresh adopts: the row says ``adopt``, not ``create``. One without both Legion labels (or
    already tracked under another name) is not refresh's to take, so a new set is still created."""
    derived = cluster_firewall_name("default", "hetzner")
    observed = base().observed["hetzner"]

    def action_with(*found: ObservedFirewall, state: LegionState | None = None) -> str:
        listed = {f.provider_id: f for f in found}
        start = state if state is not None else base()
        seen = replace(start, observed={"hetzner": replace(observed, firewalls=listed)})
        return {r.name: r.action for r in StateView.of(seen).resources if r.kind == "firewall"}[derived]

    assert action_with() == "create"
    assert action_with(ObservedFirewall(derived, "f1", MANAGED)) == "adopt"
    assert action_with(ObservedFirewall(derived, "f1", {"legion/managed": "true"})) == "create"
    assert action_with(ObservedFirewall(derived, "f1", {})) == "create"
    other = TrackedFirewall("renamed", "hetzner", "f1")
    held = replace(base(), tracked=replace(base().tracked, firewalls={"renamed": other}))
    assert action_with(ObservedFirewall(derived, "f1", MANAGED), state=held) == "create"
