"""The derived cluster firewall plan: who may reach what, computed from the state alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from legion_nb.engine import planning
from legion_nb.engine.cluster.firewall_plan import (
    ADMIN_API_PORT,
    ANYWHERE,
    SYNC_PORT,
    build_cluster_firewall_plan,
    normalize_sources,
    planned_rule,
    rule_from_planned,
)
from legion_nb.engine.state.model import LegionState, Provider, Tracked, TrackedServer, empty_state, utcnow
from legion_nb.errors import ValidationError
from legion_nb.providers.base import FirewallRule, PortRange


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
    assert hetzner.warnings and "open to anywhere" in hetzner.warnings[0]


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
