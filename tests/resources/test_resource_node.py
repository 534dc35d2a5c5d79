"""The server node actor against the sandbox: create, observe, delete, and lost answers."""

from __future__ import annotations

from resourcekit import SandboxProviders, State, change, materialize, plan_cluster, server_key

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine import planning
from legion_nb.engine.resources.pending import StatePendingRecorder
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.providers.catalog import embedded_catalog, resolve_server_choice
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.ownership import LEGION_ID_LABEL, LEGION_MANAGED_LABEL, OwnershipLabels
from legion_nb.providers.records import ServerSpec
from legion_nb.providers.resilience import CreateIntent


async def test_planned_servers_are_created_tracked_and_running(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2"))
    snapshots = await materialize(supervisor)

    servers = {s.name: s for s in await observer["hetzner"].list_servers()}
    assert set(servers) == {"web-1", "web-2"}
    tracked = persistence.state.tracked.servers
    for name in ("web-1", "web-2"):
        snap = snapshots[server_key(name)]
        assert (snap.lifecycle, snap.system, snap.health, snap.error) == (
            "running",
            "reachable",
            "healthy",
            None,
        )
        assert snap.facts["provider_id"] == servers[name].id == tracked[name].provider_id
        assert snap.facts["ipv4"] == servers[name].ipv4 == tracked[name].ipv4
        assert servers[name].labels[LEGION_MANAGED_LABEL] == "true"
        assert servers[name].labels[LEGION_ID_LABEL] == tracked[name].labels[LEGION_ID_LABEL]
    assert persistence.state.tracked.pending == {}


def _comparable(snapshots: dict[ResourceKey, ActorSnapshot]) -> dict[ResourceKey, tuple[object, ...]]:
    return {
        k: (s.lifecycle, s.system, s.health, s.operation, s.waiting, s.error, s.settled, dict(s.facts))
        for k, s in snapshots.items()
    }


async def test_a_second_wave_without_changes_mutates_nothing(
    supervisor: ResourceSupervisor, persistence: State, world: SandboxWorld
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2", "web-3"), zone="example.org")
    first = await materialize(supervisor)
    before = world.counters.mutations()

    second = await materialize(supervisor)

    assert world.counters.mutations() == before
    assert _comparable(second) == _comparable(first)


async def test_a_new_supervisor_on_the_same_state_shows_the_same_snapshot_and_creates_nothing(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    world: SandboxWorld,
    observer: dict[str, ProviderAdapter],
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2"), zone="example.org")
    first = await materialize(supervisor)
    await supervisor.aclose()
    before = world.counters.mutations()

    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as fresh:
        restored = {s.key: s for s in fresh.snapshots()}
        assert _comparable(restored) == _comparable(first)
        again = await materialize(fresh)
    assert _comparable(again) == _comparable(first)
    assert world.counters.mutations() == before
    assert len(await observer["hetzner"].list_servers()) == 2


async def test_removing_a_server_from_the_plan_deletes_it_on_the_next_wave(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1", "web-2"))
    await materialize(supervisor)
    await change(persistence, lambda s: planning.remove_server(s, name="web-2"))

    snapshots = await materialize(supervisor)

    assert [s.name for s in await observer["hetzner"].list_servers()] == ["web-1"]
    assert set(persistence.state.tracked.servers) == {"web-1"}
    assert snapshots[server_key("web-1")].lifecycle == "running"
    assert supervisor.actor(server_key("web-2")) is None  # untracked and unplanned: its actor stopped


async def test_a_create_left_pending_by_a_crash_is_settled_by_lookup_not_created_again(
    supervisor: ResourceSupervisor,
    persistence: State,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
) -> None:
    """The crash window: the intent is durable and the server exists, but nothing was tracked."""
    await plan_cluster(persistence, ("web-1",))
    ownership = OwnershipLabels.new()
    intent = CreateIntent("hetzner", "server", "web-1", ownership.legion_id)
    await StatePendingRecorder(persistence).record(intent)
    choice = resolve_server_choice(embedded_catalog("hetzner"), "cluster-node")
    created = await observer["hetzner"].create_server(
        ServerSpec(
            "web-1",
            choice.server_type.name,
            choice.location.name,
            choice.image.id,
            labels=ownership.as_labels(),
        )
    )
    creates = world.counters.snapshot()["hetzner"]["POST /v1/servers"]

    snapshots = await materialize(supervisor)

    assert world.counters.snapshot()["hetzner"]["POST /v1/servers"] == creates  # found, not created
    servers = await observer["hetzner"].list_servers()
    assert [s.id for s in servers] == [created.server.id]
    assert persistence.state.tracked.servers["web-1"].provider_id == created.server.id
    assert persistence.state.tracked.pending == {}
    assert snapshots[server_key("web-1")].lifecycle == "running"


async def test_a_pending_create_that_never_landed_is_cleared_and_created_once(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1",))
    intent = CreateIntent("hetzner", "server", "web-1", OwnershipLabels.new().legion_id)
    await StatePendingRecorder(persistence).record(intent)

    await materialize(supervisor)

    servers = await observer["hetzner"].list_servers()
    assert [s.name for s in servers] == ["web-1"]
    assert servers[0].labels[LEGION_ID_LABEL] != intent.legion_id  # a new intent for the real create
    assert persistence.state.tracked.pending == {}


async def test_an_invalid_server_type_fails_with_one_line_and_creates_nothing(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await change(
        persistence,
        lambda s: planning.upsert_server(s, name="web-1", provider="hetzner", server_type="no-such-type"),
    )
    await supervisor.sync_wave()
    snaps = {s.key: s for s in await supervisor.wait_settled(timeout=30)}
    snap = snaps[server_key("web-1")]

    assert snap.lifecycle == "error" and snap.settled
    assert snap.error is not None and "no-such-type" in snap.error and "\n" not in snap.error
    assert await observer["hetzner"].list_servers() == []
    assert persistence.state.tracked.pending == {}
    assert persistence.state.tracked.servers == {}


async def test_an_unreachable_provider_shows_on_the_row_and_a_repair_converges(
    supervisor: ResourceSupervisor,
    persistence: State,
    cloud: SandboxCloud,
    observer: dict[str, ProviderAdapter],
) -> None:
    await plan_cluster(persistence, ("web-1",))
    await plan_cluster(persistence, ("sat-1",), provider="scaleway")
    await cloud.suspend("hetzner")

    await supervisor.sync_wave()
    snaps = {s.key: s for s in await supervisor.wait_settled(timeout=60)}

    down = snaps[server_key("web-1")]
    assert (down.lifecycle, down.health) == ("error", "unreachable")
    assert down.error is not None and down.error.startswith("hetzner") and "\n" not in down.error
    assert snaps[server_key("sat-1")].lifecycle == "running"  # the other provider is unaffected
    assert persistence.state.tracked.pending == {}  # refused before sending: nothing to settle

    await cloud.resume("hetzner")
    firewall = ResourceKey("firewall", "legion-default-hetzner")
    assert snaps[firewall].error is not None  # its create met the same outage
    assert await supervisor.run_repairs() == [server_key("web-1"), firewall]  # servers first
    snaps = {s.key: s for s in await supervisor.wait_settled(timeout=60)}
    assert snaps[server_key("web-1")].lifecycle == "running"
    assert snaps[firewall].lifecycle == "applied"
    assert [s.name for s in await observer["hetzner"].list_servers()] == ["web-1"]
    assert await supervisor.run_repairs() == []


async def test_a_provider_without_credentials_fails_before_any_call_naming_the_fix(
    providers: SandboxProviders, persistence: State, world: SandboxWorld
) -> None:
    only_hetzner = SandboxProviders(providers.broker, providers.resilience, ("hetzner",))
    async with ResourceSupervisor(persistence, only_hetzner) as supervisor:
        await plan_cluster(persistence, ("sat-1",), provider="scaleway")
        await supervisor.sync_wave()
        rows = {s.key: s for s in await supervisor.wait_settled(timeout=30)}
    row = rows[server_key("sat-1")]
    assert row.lifecycle == "error" and row.health == "degraded"
    assert row.error == "scaleway: no usable credentials; run `legion credentials set scaleway`"
    assert world.counters.total("scaleway") == 0
    assert persistence.state.tracked.pending == {}


async def test_a_server_planned_at_another_provider_is_not_moved_silently(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("web-1",))
    await materialize(supervisor)
    await change(persistence, lambda s: planning.upsert_server(s, name="web-1", provider="scaleway"))

    await supervisor.sync_wave()
    rows = {s.key: s for s in await supervisor.wait_settled(timeout=30)}

    row = rows[server_key("web-1")]
    assert row.lifecycle == "error"
    assert row.error is not None and "planned at scaleway but Legion runs it at hetzner" in row.error
    assert [s.name for s in await observer["hetzner"].list_servers()] == ["web-1"]
    assert await observer["scaleway"].list_servers() == []


async def test_a_stale_intent_beside_a_tracked_server_is_settled_and_a_duplicate_is_reported(
    supervisor: ResourceSupervisor, persistence: State, observer: dict[str, ProviderAdapter]
) -> None:
    await plan_cluster(persistence, ("sat-1",), provider="scaleway")
    await materialize(supervisor)
    recorder = StatePendingRecorder(persistence)
    await recorder.record(CreateIntent("scaleway", "server", "sat-1", OwnershipLabels.new().legion_id))

    await materialize(supervisor)  # nothing carries that id: the intent is forgotten
    assert persistence.state.tracked.pending == {}

    twin = OwnershipLabels.new()
    await recorder.record(CreateIntent("scaleway", "server", "sat-1", twin.legion_id))
    choice = resolve_server_choice(embedded_catalog("scaleway"), "cluster-node")
    await observer["scaleway"].create_server(
        ServerSpec(
            "sat-1", choice.server_type.name, choice.location.name, choice.image.id, labels=twin.as_labels()
        )
    )
    await supervisor.sync_wave()
    rows = {s.key: s for s in await supervisor.wait_settled(timeout=60)}

    row = rows[server_key("sat-1")]
    assert row.error is not None and "a second server sat-1" in row.error and "provider console" in row.error
    assert len(await observer["scaleway"].list_servers()) == 2  # reported, never deleted by guesswork
    assert twin.legion_id in persistence.state.tracked.pending
