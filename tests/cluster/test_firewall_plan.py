"""The derived cluster firewall plan: who may reach what, computed from the state alone (the
operator's planned access for SSH and the admin API, the cluster's peers for Tribes sync)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from legion_nb.engine import planning
from legion_nb.engine.cluster.firewall_plan import (
    ADMIN_API_PORT,
    ANYWHERE,
    ENV_IGNORED_WARNING,
    OPEN_WARNING,
    SSH_PORT,
    SYNC_PORT,
    build_cluster_firewall_plan,
    normalize_sources,
    planned_rule,
    rule_from_planned,
)
from legion_nb.engine.diff import ACCESS_FIELD, FieldDiff, diff
from legion_nb.engine.snapshot import with_derived_firewalls
from legion_nb.engine.state.model import (
    LegionState,
    Provider,
    Tracked,
    TrackedFirewall,
    TrackedServer,
    empty_state,
    utcnow,
)
from legion_nb.errors import ValidationError
from legion_nb.providers.records import FirewallRule, PortRange


def _tracked(
    state: LegionState, name: str, provider: Provider, ipv4: str, ipv6: str | None = None
) -> LegionState:
    record = TrackedServer(
        name=name,
        provider=provider,
        provider_id=f"id-{name}",
        created=utcnow(),
        ipv4=ipv4,
        ipv6=ipv6,
    )
    servers = {**state.tracked.servers, name: record}
    return replace(state, tracked=replace(state.tracked, servers=servers))


def _cluster() -> LegionState:
    state = empty_state()
    for name, provider in (("a", "hetzner"), ("b", "hetzner"), ("c", "scaleway"), ("d", "ovh")):
        state = planning.upsert_server(state, name=name, provider=provider)
    state = planning.upsert_server(state, name="sat", provider="hetzner", role="satellite")
    state = _tracked(state, "a", "hetzner", "127.20.0.1", "::2")
    state = _tracked(state, "c", "scaleway", "127.20.0.3")
    return _tracked(state, "sat", "hetzner", "127.20.0.9")


def _sources(rules: tuple[FirewallRule, ...], port: int) -> tuple[str, ...]:
    return next(r.sources for r in rules if r.port == PortRange.single(port))


def test_one_set_per_provider_with_sync_only_from_the_cluster_peers() -> None:
    plan = build_cluster_firewall_plan(_cluster(), admin_sources=["198.51.100.7"])

    assert set(plan) == {"legion-default-hetzner", "legion-default-scaleway", "legion-default-ovh"}
    hetzner = plan["legion-default-hetzner"]
    assert hetzner.servers == ("a", "b")  # the satellite is not a cluster node
    peers = ("127.20.0.1/32", "127.20.0.3/32", "::2/128")
    for firewall in plan.values():
        assert _sources(firewall.rules, SYNC_PORT) == peers  # every provider admits every peer
        assert (
            _sources(firewall.rules, 22) == _sources(firewall.rules, ADMIN_API_PORT) == ("198.51.100.7/32",)
        )
        assert len(firewall.rules) == 3 and firewall.warnings == ()
    assert (plan["legion-default-ovh"].node_level, hetzner.node_level) == (True, False)


def test_without_operator_addresses_admin_ports_are_open_with_a_warning() -> None:
    plan = build_cluster_firewall_plan(_cluster())
    hetzner = plan["legion-default-hetzner"]
    assert _sources(hetzner.rules, 22) == ANYWHERE
    assert hetzner.warnings and "open to anywhere" in hetzner.warnings[0].message
    assert hetzner.warnings[0].code == "open_access"


def test_no_sync_rule_before_any_peer_has_an_address() -> None:
    state = planning.upsert_server(empty_state(), name="a", provider="hetzner")
    [firewall] = build_cluster_firewall_plan(state).values()
    assert [r.port for r in firewall.rules] == [PortRange.single(22), PortRange.single(ADMIN_API_PORT)]


def test_an_empty_state_plans_no_firewall() -> None:
    assert build_cluster_firewall_plan(LegionState(tracked=Tracked())) == {}


def test_bad_operator_addresses_are_refused_in_one_line() -> None:
    with pytest.raises(ValidationError, match="not an address or CIDR") as caught:
        build_cluster_firewall_plan(_cluster(), admin_sources=["300.1.2.3"])
    assert "\n" not in str(caught.value)
    assert normalize_sources(["10.0.0.1/8", "::1", "10.0.0.0/8"]) == ("10.0.0.0/8", "::1/128")


def test_a_planned_firewall_of_the_same_name_replaces_the_derived_one() -> None:
    state = planning.upsert_firewall(
        _cluster(),
        name="legion-default-hetzner",
        provider="hetzner",
        rules=["in tcp 80 0.0.0.0/0"],
        servers=["a"],
    )
    firewall = build_cluster_firewall_plan(state)["legion-default-hetzner"]
    assert firewall.cluster is None and firewall.servers == ("a",)
    assert [(r.port, r.sources) for r in firewall.rules] == [(PortRange.single(80), ("0.0.0.0/0",))]
    assert firewall.warnings


def test_rules_survive_the_round_trip_through_the_state_form() -> None:
    rules = (
        FirewallRule("in", "tcp", PortRange(1024, 2048), sources=("10.0.0.0/8",)),
        FirewallRule("in", "icmp", None, sources=("0.0.0.0/0",)),
        FirewallRule("out", "udp", PortRange.single(53), destinations=("9.9.9.9/32",)),
    )
    assert tuple(rule_from_planned(planned_rule(r)) for r in rules) == rules


# -- the planned operator access -----------------------------------------------------------

PLANNED = ("198.51.100.0/24", "2001:db8::/48")
PEERS = ("127.20.0.1/32", "127.20.0.3/32", "::2/128")


def _planned_access() -> LegionState:
    return planning.set_operator_cidrs(_cluster(), cidrs=["2001:db8::/48", "198.51.100.0/24"])


def _by_port(rules: tuple[FirewallRule, ...]) -> dict[int, tuple[str, ...]]:
    return {r.port.first: r.sources for r in rules if r.port is not None}


def test_operator_ports_open_only_to_the_planned_cidrs_and_sync_only_to_peers() -> None:
    plan = build_cluster_firewall_plan(_planned_access())
    assert set(plan) == {"legion-default-hetzner", "legion-default-ovh", "legion-default-scaleway"}
    for firewall in plan.values():
        assert _by_port(firewall.rules) == {SSH_PORT: PLANNED, ADMIN_API_PORT: PLANNED, SYNC_PORT: PEERS}
        assert all(r.direction == "in" and r.protocol == "tcp" for r in firewall.rules)
        assert firewall.warnings == ()


def test_the_plan_wins_over_the_setting_and_says_so_when_they_differ() -> None:
    state = _planned_access()
    overridden = build_cluster_firewall_plan(state, admin_sources=["203.0.113.7"])["legion-default-hetzner"]
    assert _by_port(overridden.rules)[SSH_PORT] == PLANNED
    assert overridden.warnings == (ENV_IGNORED_WARNING,)
    same = build_cluster_firewall_plan(state, admin_sources=list(PLANNED))["legion-default-hetzner"]
    assert same.warnings == ()


def test_without_planned_access_the_setting_then_anywhere_apply() -> None:
    state = planning.clear_operator_cidrs(_planned_access())
    fallback = build_cluster_firewall_plan(state, admin_sources=["203.0.113.7"])["legion-default-ovh"]
    assert _by_port(fallback.rules)[ADMIN_API_PORT] == ("203.0.113.7/32",) and fallback.warnings == ()
    open_plan = build_cluster_firewall_plan(state)["legion-default-ovh"]
    assert _by_port(open_plan.rules) == {SSH_PORT: ANYWHERE, ADMIN_API_PORT: ANYWHERE, SYNC_PORT: PEERS}
    assert open_plan.warnings == (OPEN_WARNING,)


def test_a_planned_slash_zero_still_warns() -> None:
    state = planning.set_operator_cidrs(_planned_access(), cidrs=["0.0.0.0/0"])
    firewall = build_cluster_firewall_plan(state)["legion-default-hetzner"]
    assert _by_port(firewall.rules)[SSH_PORT] == ("0.0.0.0/0",) and firewall.warnings == (OPEN_WARNING,)


def _rows(
    state: LegionState, admin: tuple[str, ...] | None = None
) -> dict[str, tuple[str, dict[str, FieldDiff]]]:
    result = with_derived_firewalls(diff(state), state, admin)
    return {
        r.name: (r.action, {f.field: f for f in r.fields}) for r in result.resources if r.kind == "firewall"
    }


def test_the_diff_shows_planned_access_and_an_access_change_is_an_update() -> None:
    state = _planned_access()
    action, fields = _rows(state)["legion-default-hetzner"]
    access = fields[ACCESS_FIELD]
    assert action == "create" and access.planned == "198.51.100.0/24,2001:db8::/48"

    desired = build_cluster_firewall_plan(state)["legion-default-hetzner"]
    converged = TrackedFirewall(
        "legion-default-hetzner", "hetzner", "9", rules=tuple(planned_rule(r) for r in desired.rules)
    )
    state = replace(state, tracked=replace(state.tracked, firewalls={converged.name: converged}))
    assert _rows(state)["legion-default-hetzner"][0] == "unchanged"

    moved = planning.set_operator_cidrs(state, cidrs=["203.0.113.7"])
    action, fields = _rows(moved)["legion-default-hetzner"]
    access = fields[ACCESS_FIELD]
    assert action == "update"
    assert (access.tracked, access.planned, access.changed) == (
        "198.51.100.0/24,2001:db8::/48",
        "203.0.113.7/32",
        True,
    )
    cleared = planning.clear_operator_cidrs(state)
    action, fields = _rows(cleared)["legion-default-hetzner"]
    assert action == "update" and fields[ACCESS_FIELD].planned == "0.0.0.0/0,::/0"
    # the pure diff row count is untouched: access is a field, not a resource of its own
    assert {r.kind for r in diff(moved).resources} == {"server", "firewall"}


def test_a_tracked_firewall_without_recorded_rules_is_not_an_update() -> None:
    state = _planned_access()
    bare = TrackedFirewall("legion-default-scaleway", "scaleway", "7")
    state = replace(state, tracked=replace(state.tracked, firewalls={bare.name: bare}))
    action, fields = _rows(state)["legion-default-scaleway"]
    assert action == "unchanged" and fields[ACCESS_FIELD].tracked is None


def test_the_access_field_unions_every_ssh_rule_of_the_tracked_firewall() -> None:
    state = _planned_access()
    split = tuple(
        planned_rule(FirewallRule("in", "tcp", PortRange.single(SSH_PORT), sources=(cidr,)))
        for cidr in PLANNED
    )
    tracked = TrackedFirewall("legion-default-hetzner", "hetzner", "9", rules=split)
    state = replace(state, tracked=replace(state.tracked, firewalls={tracked.name: tracked}))
    assert _rows(state)["legion-default-hetzner"][0] == "unchanged"
