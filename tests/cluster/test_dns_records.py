"""DNS records synthesized from planned hosts and tracked endpoints."""

from __future__ import annotations

from dataclasses import replace

from legion_nb.engine import planning
from legion_nb.engine.cluster.dns_records import records_signature, synthesize_zone_records
from legion_nb.engine.state.model import LegionState, TrackedDnsRecord, TrackedServer, empty_state, utcnow


def _tracked(state: LegionState, name: str, ipv4: str | None, ipv6: str | None = None) -> LegionState:
    record = TrackedServer(
        name=name, provider="hetzner", provider_id=f"id-{name}", created=utcnow(), ipv4=ipv4, ipv6=ipv6
    )
    return replace(state, tracked=replace(state.tracked, servers={**state.tracked.servers, name: record}))


def _state() -> LegionState:
    state = empty_state()
    for name in ("a", "b", "c"):
        state = planning.upsert_server(state, name=name, provider="hetzner")
    state = planning.upsert_dns_zone(state, zone="example.org", provider="hetzner")
    state = planning.upsert_dns_zone(state, zone="other.org", provider="hetzner")
    state = planning.upsert_dns_host(state, host="www", zone="example.org", servers=["a", "b", "c"])
    state = planning.upsert_dns_host(state, host="@", zone="example.org", servers=["a"])
    state = planning.upsert_dns_host(state, host="api", zone="other.org", servers=["b"])
    state = _tracked(state, "a", "127.20.0.1", "::2")
    return _tracked(state, "b", "127.20.0.2")


def test_a_and_aaaa_rrsets_per_host_with_the_missing_endpoints_named() -> None:
    plan = synthesize_zone_records(_state(), "example.org", ttl=120)

    assert plan.records == (
        TrackedDnsRecord("@", "A", 120, ("127.20.0.1",)),
        TrackedDnsRecord("@", "AAAA", 120, ("::2",)),
        TrackedDnsRecord("www", "A", 120, ("127.20.0.1", "127.20.0.2")),
        TrackedDnsRecord("www", "AAAA", 120, ("::2",)),
    )
    assert plan.missing == ("c",)
    assert plan.hosts == ("example.org", "www.example.org")
    assert synthesize_zone_records(_state(), "other.org").records[0].values == ("127.20.0.2",)


def test_unplanned_servers_contribute_nothing_even_while_still_tracked() -> None:
    state = planning.upsert_dns_host(_state(), host="www", zone="example.org", servers=["a"])
    state = planning.remove_server(planning.remove_dns_host(state, host="api", zone="other.org"), name="b")
    plan = synthesize_zone_records(state, "example.org")
    assert {r.values for r in plan.records if r.type == "A"} == {("127.20.0.1",)}
    assert synthesize_zone_records(state, "other.org").records == ()


def test_a_zone_without_hosts_wants_no_records_and_signatures_ignore_order() -> None:
    assert synthesize_zone_records(empty_state(), "example.org").records == ()
    one = (TrackedDnsRecord("www", "A", 300, ("127.0.0.2", "127.0.0.1")), TrackedDnsRecord("@", "A", 300, ()))
    assert records_signature(one) == records_signature(tuple(reversed(one)))
