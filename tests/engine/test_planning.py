"""Planning actions: pure, validated, never cascading, changing only the scheme."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from legion_nb.engine import planning
from legion_nb.engine.state.model import LegionState, PlannedCluster, PlannedServer, empty_state
from legion_nb.engine.state.validation import normalize_hostname, normalize_zone, validate_scheme
from legion_nb.errors import ValidationError


def planned() -> LegionState:
    state = empty_state()
    state = planning.upsert_server(state, name="web-1", provider="hetzner")
    state = planning.upsert_server(
        state, name="web-2", provider="hetzner", server_type="cx32", cluster="prod"
    )
    state = planning.upsert_dns_zone(state, zone="Example.ORG.", provider="hetzner")
    state = planning.upsert_dns_host(state, host="www", zone="example.org", servers=["web-1", "web-2"])
    return planning.upsert_firewall(
        state, name="edge", provider="hetzner", rules=["in tcp 22 0.0.0.0/0 ::/0"], servers=["web-1"]
    )


def server(state: LegionState, name: str) -> tuple[str, PlannedServer]:
    found = state.scheme.find_server(name)
    assert found is not None, name
    return found


def test_a_plan_builds_up_and_validates() -> None:
    state = planned()
    validate_scheme(state.scheme)
    assert server(state, "web-1")[0] == "default"
    assert server(state, "web-2")[0] == "prod"
    assert state.scheme.dns_zones["example.org"].provider == "hetzner"  # normalized
    assert state.scheme.dns_hosts["www.example.org"].servers == ("web-1", "web-2")
    rule = state.scheme.firewalls["edge"].rules[0]
    assert (rule.direction, rule.protocol, rule.port, rule.sources) == (
        "in",
        "tcp",
        "22",
        ("0.0.0.0/0", "::/0"),
    )
    assert state.tracked == empty_state().tracked


def test_omitted_choices_stay_empty_for_the_policy() -> None:
    planned_server = server(planned(), "web-1")[1]
    assert (planned_server.server_type, planned_server.location, planned_server.image) == ("", "", "")


def test_add_is_an_upsert_and_can_move_clusters() -> None:
    state = planning.upsert_server(
        planned(), name="web-1", provider="hetzner", image="debian-12", cluster="prod"
    )
    assert set(state.scheme.clusters) == {"prod"}  # the emptied default cluster went away
    assert server(state, "web-1")[1].image == "debian-12"
    again = planning.upsert_dns_host(state, host="www.example.org", zone="example.org", servers=["web-2"])
    assert again.scheme.dns_hosts["www.example.org"].servers == ("web-2",)
    assert len(again.scheme.dns_hosts) == 1


def test_apex_hosts() -> None:
    state = planning.upsert_dns_host(planned(), host="@", zone="example.org", servers=["web-1"])
    assert state.scheme.dns_hosts["example.org"].host == "@"
    state = planning.remove_dns_host(state, host="example.org", zone="example.org")
    assert "example.org" not in state.scheme.dns_hosts


def test_removing_a_zone_in_use_names_its_hosts_and_changes_nothing() -> None:
    state = planned()
    with pytest.raises(ValidationError, match=r"still has DNS host\(s\) www.example.org: remove them first"):
        planning.remove_dns_zone(state, zone="example.org")
    state = planning.remove_dns_host(state, host="www", zone="example.org")
    state = planning.remove_dns_zone(state, zone="example.org")
    assert state.scheme.dns_zones == {}


def test_removing_a_server_in_use_names_its_users() -> None:
    with pytest.raises(ValidationError, match=r"DNS host www\.example\.org, firewall edge"):
        planning.remove_server(planned(), name="web-1")


def test_removing_something_unplanned_says_so() -> None:
    with pytest.raises(ValidationError, match="server nope is not planned"):
        planning.remove_server(planned(), name="nope")
    with pytest.raises(ValidationError, match="not planned"):
        planning.remove_firewall(planned(), name="nope")


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda s: planning.upsert_server(s, name="-bad", provider="hetzner"), "invalid label '-bad'"),
        (lambda s: planning.upsert_server(s, name="a_b", provider="hetzner"), "invalid label 'a_b'"),
        (lambda s: planning.upsert_server(s, name="x" * 64, provider="hetzner"), "invalid label"),
        (lambda s: planning.upsert_server(s, name="ok", provider="aws"), "unknown provider 'aws'"),
        (lambda s: planning.upsert_server(s, name="ok", provider="ovh", image="two words"), "one word"),
        (lambda s: planning.upsert_server(s, name="ok", provider="ovh", role="boss"), "role 'boss'"),
        (lambda s: planning.upsert_dns_zone(s, zone="localhost", provider="ovh"), "at least 2 labels"),
        (lambda s: planning.upsert_dns_zone(s, zone="10.0.0.1", provider="ovh"), "numeric label"),
        (
            lambda s: planning.upsert_dns_host(s, host="api", zone="other.org", servers=["web-1"]),
            "not planned",
        ),
        (
            lambda s: planning.upsert_dns_host(s, host="api", zone="example.org", servers=["ghost"]),
            "unplanned server(s) ghost",
        ),
        (
            lambda s: planning.upsert_dns_host(s, host="api", zone="example.org", servers=[]),
            "at least one server",
        ),
        (
            lambda s: planning.upsert_dns_host(s, host="api", zone="example.org", servers=["web-1", "web-1"]),
            "twice",
        ),
        (
            lambda s: planning.upsert_firewall(s, name="f", provider="ovh", servers=["web-1"]),
            "a provider firewall guards only",
        ),
        (
            lambda s: planning.upsert_firewall(s, name="f", provider="hetzner", rules=["in tcp 0.0.0.0/0"]),
            "needs a port",
        ),
        (
            lambda s: planning.upsert_firewall(
                s, name="f", provider="hetzner", rules=["in tcp 70000 0.0.0.0/0"]
            ),
            "1-65535",
        ),
        (
            lambda s: planning.upsert_firewall(
                s, name="f", provider="hetzner", rules=["in icmp 5 0.0.0.0/0"]
            ),
            "not an IP network",
        ),
        (
            lambda s: planning.upsert_firewall(s, name="f", provider="hetzner", rules=["in tcp 22"]),
            "at least one address",
        ),
        (
            lambda s: planning.upsert_firewall(
                s, name="f", provider="hetzner", rules=["sideways tcp 22 ::/0"]
            ),
            "direction",
        ),
        (
            lambda s: planning.upsert_firewall(s, name="f", provider="hetzner", rules=[{"protocol": "tcp"}]),
            "lacks 'direction'",
        ),
        (lambda s: planning.upsert_server(s, name="web-1", provider="ovh"), "take it out of them"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_changes(
    call: Callable[[LegionState], LegionState], needle: str
) -> None:
    state = planned()
    before = state
    with pytest.raises(ValidationError) as info:
        call(state)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert state == before


def test_hostname_rules() -> None:
    assert normalize_hostname("A.b-c.D.") == "a.b-c.d"
    assert normalize_hostname("a" * 63) == "a" * 63
    with pytest.raises(ValidationError, match="longer than 253"):
        normalize_hostname(".".join(["a" * 63] * 4))
    with pytest.raises(ValidationError, match="empty"):
        normalize_hostname(" ")
    with pytest.raises(ValidationError):
        normalize_hostname("a..b")
    assert normalize_zone("xn--bcher-kva.example") == "xn--bcher-kva.example"


def test_validate_scheme_catches_hand_made_inconsistencies() -> None:
    state = planned()
    dup = PlannedCluster(name="other", servers={"web-1": PlannedServer(name="web-1", provider="hetzner")})
    with pytest.raises(ValidationError, match="planned in two clusters"):
        validate_scheme(replace(state.scheme, clusters={**state.scheme.clusters, "other": dup}))
    with pytest.raises(ValidationError, match="unplanned zone"):
        validate_scheme(replace(state.scheme, dns_zones={}))


def test_names_fit_every_place_they_go_and_say_which_limit() -> None:
    # Before: a 65-253 character server name was planned, then materialize failed late with
    # "internal error (ValueError)" when the node certificate's common name (at most 64) was built.
    state = planned()
    longest = "n" * 60 + ".abc"  # 64 characters
    assert server(planning.upsert_server(state, name=longest, provider="hetzner"), longest)[1].name == longest
    too_long = "n" * 61 + ".abc"
    with pytest.raises(ValidationError, match="65 characters: a node certificate's common name") as info:
        planning.upsert_server(state, name=too_long, provider="hetzner")
    assert "\n" not in str(info.value) and "at most 64" in str(info.value)
    with pytest.raises(ValidationError, match="at most 64"):
        planning.upsert_server(state, name=".".join(["a" * 63] * 3), provider="scaleway")
    fits = "c" * 47
    assert fits in planning.upsert_server(state, name="x1", provider="ovh", cluster=fits).scheme.clusters
    with pytest.raises(ValidationError, match=r"'legion-c{48}-scaleway' must stay a DNS label") as info:
        planning.upsert_server(state, name="x1", provider="ovh", cluster="c" * 48)
    assert "at most 47" in str(info.value)
    cluster = PlannedCluster(
        name="solo", servers={too_long: PlannedServer(name=too_long, provider="hetzner")}
    )
    hand_made = replace(empty_state().scheme, clusters={"solo": cluster})
    with pytest.raises(ValidationError, match="at most 64"):
        validate_scheme(hand_made)
