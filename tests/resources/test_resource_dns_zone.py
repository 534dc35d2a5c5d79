"""The DNS zone actor: zone creation, synthesized A records, waiting reasons, teardown."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from resourcekit import State, change, materialize, plan_cluster

from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine import planning
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.records import DnsRecord

ZONE = ResourceKey("dns_zone", "example.org")


def _addresses(records: list[DnsRecord], name: str, rtype: str = "A") -> set[str]:
    return {v for r in records if r.name == name and r.type == rtype for v in r.values}


async def test_a_zone_gets_one_a_record_per_host_with_every_server_address(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    published: list[ActorSnapshot] = []
    supervisor.subscribe(lambda batch: published.extend(s for s in batch if s.key == ZONE))
    await plan_cluster(persistence, ("web-1", "web-2", "web-3"), zone="example.org")

    rows = await materialize(supervisor)

    tracked = persistence.state.tracked
    addresses = {tracked.servers[n].ipv4 for n in ("web-1", "web-2", "web-3")}
    ipv6 = {tracked.servers[n].ipv6 for n in ("web-1", "web-2", "web-3")}
    assert None not in ipv6, "Hetzner servers get an IPv6 /64; the AAAA RRset holds each one's ::1"
    assert [z.name for z in await observer["hetzner"].list_zones()] == ["example.org"]
    published_records = await observer["hetzner"].list_records("example.org")
    assert _addresses(published_records, "www") == addresses
    assert _addresses(published_records, "www", "AAAA") == ipv6
    assert [(r.name, r.type, set(r.values)) for r in tracked.dns_zones["example.org"].records] == [
        ("www", "A", addresses),
        ("www", "AAAA", ipv6),
    ]
    zone = rows[ZONE]
    assert (zone.lifecycle, zone.health, zone.waiting) == ("applied", "healthy", None)
    waits = [s.waiting for s in published if s.waiting]
    assert waits and all(w.startswith("waiting for endpoints of web-") for w in waits)


async def test_shrinking_a_host_and_removing_its_server_updates_the_records(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2"), zone="example.org")
    await materialize(supervisor)
    kept = persistence.state.tracked.servers["web-1"].ipv4

    await change(
        persistence, lambda s: planning.upsert_dns_host(s, host="www", zone="example.org", servers=["web-1"])
    )
    await change(persistence, lambda s: planning.remove_server(s, name="web-2"))
    await materialize(supervisor)

    assert _addresses(await observer["hetzner"].list_records("example.org"), "www") == {kept}
    assert [s.name for s in await observer["hetzner"].list_servers()] == ["web-1"]


async def test_a_host_whose_server_failed_gets_what_is_known_and_says_what_is_missing(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1",))
    await change(
        persistence,
        lambda s: planning.upsert_server(s, name="web-2", provider="hetzner", server_type="no-such-type"),
    )
    await change(persistence, lambda s: planning.upsert_dns_zone(s, zone="example.org", provider="hetzner"))
    await change(
        persistence,
        lambda s: planning.upsert_dns_host(s, host="www", zone="example.org", servers=["web-1", "web-2"]),
    )

    await supervisor.sync_wave()
    rows = {s.key: s for s in await supervisor.wait_settled(timeout=60)}

    assert rows[ResourceKey("server", "web-2")].lifecycle == "error"
    zone = rows[ZONE]
    assert (zone.lifecycle, zone.settled, zone.error) == ("applied", True, None)
    assert zone.facts["missing_endpoints"] == "web-2"
    web1 = persistence.state.tracked.servers["web-1"].ipv4
    assert _addresses(await observer["hetzner"].list_records("example.org"), "www") == {web1}


async def test_a_zone_removed_from_the_plan_is_deleted(
    supervisor: ResourceSupervisor,
    persistence: State,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
) -> None:
    await plan_cluster(persistence, ("web-1",), zone="example.org")
    await materialize(supervisor)

    await change(persistence, lambda s: planning.remove_dns_host(s, host="www", zone="example.org"))
    await change(persistence, lambda s: planning.remove_dns_zone(s, zone="example.org"))
    await materialize(supervisor)

    assert await observer["hetzner"].list_zones() == []
    assert persistence.state.tracked.dns_zones == {}
    assert supervisor.actor(ZONE) is None


async def test_an_endpoint_learned_after_a_wave_reaches_the_records_without_a_new_wave(
    supervisor: ResourceSupervisor,
    persistence: State,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
) -> None:
    """Tracked endpoints are the blackboard: when a server's address changes in the state, the
    applied zone converges on its own, and a plan edit alone changes nothing at the provider."""
    await plan_cluster(persistence, ("web-1",), zone="example.org")
    await materialize(supervisor)

    def move(s: LegionState) -> LegionState:
        servers = dict(s.tracked.servers)
        servers["web-1"] = replace(servers["web-1"], ipv4="127.20.7.7")
        return replace(s, tracked=replace(s.tracked, servers=servers))

    start = supervisor.snapshot(ZONE)
    assert start is not None
    reapplied = asyncio.Event()

    def watch(batch: list[ActorSnapshot]) -> None:
        if any(z.key == ZONE and z.revision > start.revision and z.lifecycle == "applied" for z in batch):
            reapplied.set()

    supervisor.subscribe(watch)
    await change(persistence, move)
    await asyncio.wait_for(reapplied.wait(), timeout=30)

    assert "127.20.7.7" in _addresses(await observer["hetzner"].list_records("example.org"), "www")

    before = world.counters.mutations()
    await change(
        persistence, lambda s: planning.upsert_dns_host(s, host="api", zone="example.org", servers=["web-1"])
    )
    await asyncio.sleep(0.05)
    assert world.counters.mutations() == before
    assert (await supervisor.wait_settled([ZONE]))[0].lifecycle == "applied"


async def test_an_ovh_zone_outside_the_account_fails_alone_with_the_reason(
    supervisor: ResourceSupervisor, persistence: State
) -> None:
    """OVH zones come with a domain: the zone row says so in one line; the servers still converge."""
    await plan_cluster(persistence, ("node-1", "node-2"), provider="ovh", zone="example.net")
    await supervisor.sync_wave()
    rows = {s.key: s for s in await supervisor.wait_settled(timeout=60)}

    zone = rows[ResourceKey("dns_zone", "example.net")]
    assert (zone.lifecycle, zone.settled, zone.waiting) == ("error", True, None)
    assert zone.error is not None and "order or transfer the domain first" in zone.error
    assert {rows[ResourceKey("server", n)].lifecycle for n in ("node-1", "node-2")} == {"running"}
    assert persistence.state.tracked.dns_zones == {} and persistence.state.tracked.pending == {}
