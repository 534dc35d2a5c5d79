"""Only a wave touches the cloud: restoring a node actor reads, and a server left off stays off.

A crash can fall between Scaleway's create (it creates servers stopped) and the power-on that
belongs to it, leaving a durable create intent and a stopped server; a server Legion tracks may
also be found off, or still provisioning. Each new supervisor here is a new session on the same
state (a ``legion status``): it settles the intent by lookup and shows the server off, and the
emulator sees no POST, PUT, PATCH or DELETE until a wave (``legion materialize``) starts it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from resourcekit import SandboxProviders, State, materialize, plan_cluster, server_key
from sandbox.sdkkit import scaleway_client
from scaleway.instance.v1 import InstanceV1API, ServerAction  # type: ignore[import-untyped]

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.diff import diff
from legion_nb.engine.providers_service import record_inventory
from legion_nb.engine.resources.node import tracked_server_from
from legion_nb.engine.resources.pending import StatePendingRecorder
from legion_nb.engine.resources.snapshot import ActorSnapshot
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.state.edits import track_server
from legion_nb.providers.catalog import embedded_catalog, resolve_server_choice
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import Server, ServerSpec
from legion_nb.providers.resilience import CreateIntent

NAME = "sc-1"


async def stopped_server(adapter: ProviderAdapter, labels: dict[str, str]) -> Server:
    """A server of ours at Scaleway, powered off (as a create whose power-on never came leaves it)."""
    choice = resolve_server_choice(embedded_catalog("scaleway"), "cluster-node")
    spec = ServerSpec(NAME, choice.server_type.name, choice.location.name, choice.image.id, labels=labels)
    server_id = (await adapter.create_server(spec)).server.id
    await until(adapter, server_id, "running")
    await adapter.power_off(server_id)
    return await until(adapter, server_id, "off")


async def until(adapter: ProviderAdapter, server_id: str, status: str) -> Server:
    while (server := await adapter.get_server(server_id)).status != status:
        await asyncio.sleep(0.005)
    return server


def server_actions(world: SandboxWorld) -> int:
    """Power actions (and other ``POST .../action``) the Scaleway emulator answered so far."""
    counts = world.counters.snapshot().get("scaleway", {})
    return sum(n for route, n in counts.items() if route.startswith("POST ") and route.endswith("/action"))


async def refresh(persistence: State, adapter: ProviderAdapter) -> dt.datetime:
    """What ``legion refresh`` writes: the provider's inventory as observed facts; when it listed."""
    servers = await adapter.list_servers()
    await persistence.mutate(
        lambda s: (record_inventory(s, adapter.name, servers, [], [])[0], None), reason="test: refresh"
    )
    refreshed = persistence.state.observed[adapter.name].refreshed
    assert refreshed is not None
    return refreshed


async def restored_row(session: ResourceSupervisor) -> ActorSnapshot:
    (row,) = [s for s in await session.wait_settled(timeout=60) if s.key == server_key(NAME)]
    return row


@pytest.mark.parametrize("left", ["pending create", "tracked provisioning"])
async def test_a_server_left_off_stays_off_across_sessions_until_a_wave_starts_it(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
    left: str,
) -> None:
    await plan_cluster(persistence, (NAME,), provider="scaleway")
    ownership = OwnershipLabels.new()
    server = await stopped_server(observer["scaleway"], ownership.as_labels())
    if left == "pending create":  # the crash fell between the create and its power-on
        await StatePendingRecorder(persistence).record(
            CreateIntent("scaleway", "server", NAME, ownership.legion_id)
        )
    else:  # tracked while the provider still reported it provisioning
        record = dataclasses.replace(
            tracked_server_from(server, "scaleway", cluster="default", role="cluster"), status="provisioning"
        )
        await persistence.mutate(lambda s: (track_server(s, record), None), reason="test: tracked")
    await supervisor.aclose()
    before = world.counters.mutations()

    actions = server_actions(world)
    for _ in range(3):  # three sessions opening (legion status, legion snapshot, an unlock)
        async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as session:
            row = await restored_row(session)
        assert (row.lifecycle, row.system, row.operation, row.error) == ("running", "down", None, None), row
        assert row.waiting == "legion materialize: server is off", row
        assert row.facts["provider_id"] == server.id and row.facts["status"] == "off", row
        assert world.counters.mutations() == before, world.counters.snapshot()["scaleway"]
        assert (await observer["scaleway"].get_server(server.id)).status == "off"
    tracked = persistence.state.tracked
    assert tracked.pending == {} and tracked.servers[NAME].provider_id == server.id
    assert tracked.servers[NAME].status == "off"

    assert server_actions(world) == actions

    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as session:
        await restored_row(session)
        row = (await materialize(session))[server_key(NAME)]
    assert (row.lifecycle, row.system, row.waiting) == ("running", "reachable", None), row
    assert (await observer["scaleway"].get_server(server.id)).status == "running"
    assert server_actions(world) == actions + 1  # the wave's one power-on
    assert [s.id for s in await observer["scaleway"].list_servers()] == [server.id]  # never created again


async def test_a_server_a_refresh_sees_powered_off_shows_down_until_a_wave_starts_it(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    observer: dict[str, ProviderAdapter],
    world: SandboxWorld,
) -> None:
    await plan_cluster(persistence, (NAME,), provider="scaleway")
    row = (await materialize(supervisor))[server_key(NAME)]
    assert (row.lifecycle, row.system) == ("running", "reachable"), row
    server_id = persistence.state.tracked.servers[NAME].provider_id
    await observer["scaleway"].power_off(server_id)
    await until(observer["scaleway"], server_id, "off")

    await refresh(persistence, observer["scaleway"])
    before, actions = world.counters.mutations(), server_actions(world)
    await supervisor.follow_observation()  # the live session learns it from the state
    row = await restored_row(supervisor)
    assert (row.lifecycle, row.system, row.error, row.facts["status"]) == ("running", "down", None, "off"), (
        row
    )
    assert row.waiting == "legion materialize: server is off", row
    assert persistence.state.tracked.servers[NAME].status == "running"  # the refresh tracked nothing new
    await supervisor.aclose()
    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as session:
        row = await restored_row(session)  # a new session (``legion status``) shows it the same way
        assert (row.system, row.waiting) == ("down", "legion materialize: server is off"), row
        assert (world.counters.mutations(), server_actions(world)) == (before, actions)  # read only

        row = (await materialize(session))[server_key(NAME)]
    assert (row.lifecycle, row.system, row.waiting) == ("running", "reachable", None), row
    assert server_actions(world) == actions + 1  # the wave's one power-on
    assert persistence.state.observed["scaleway"].servers[server_id].status == "running"
    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as session:
        row = await restored_row(session)
    assert (row.system, row.waiting) == ("reachable", None), row


async def test_a_server_tracked_off_that_a_refresh_sees_running_comes_back_without_a_power_action(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    observer: dict[str, ProviderAdapter],
    cloud: SandboxCloud,
    world: SandboxWorld,
) -> None:
    """The operator powers on, with Scaleway's own SDK, a server Legion last read off (a create
    settled by lookup): the refresh that sees it running brings the row back as the provider
    reports it, in the live session and the next, with the status field showing the tracked ``off``
    apart from the observed ``running``, and nothing Legion sends powers it on or off; the next
    wave finds it running and only reads it."""
    await plan_cluster(persistence, (NAME,), provider="scaleway")
    ownership = OwnershipLabels.new()
    server = await stopped_server(observer["scaleway"], ownership.as_labels())
    intent = CreateIntent("scaleway", "server", NAME, ownership.legion_id)
    await StatePendingRecorder(persistence).record(intent)
    await supervisor.aclose()
    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as session:
        row = await restored_row(session)  # a session opening settles the create: tracked off
        assert (row.system, persistence.state.tracked.servers[NAME].status) == ("down", "off"), row

        credentials = cloud.endpoints()["scaleway"]
        api = InstanceV1API(scaleway_client(credentials, credentials["url"]))
        zone, uuid = server.id.split("/")  # the adapter's id is "<zone>/<uuid>"
        await asyncio.to_thread(api.server_action, zone=zone, server_id=uuid, action=ServerAction.POWERON)
        await until(observer["scaleway"], server.id, "running")
        before, actions = world.counters.mutations(), server_actions(world)
        refreshed_at = await refresh(persistence, observer["scaleway"])
        await session.follow_observation()
        row = await restored_row(session)
        assert (row.lifecycle, row.system, row.waiting, row.facts["status"]) == (
            "running",
            "reachable",
            None,
            "running",
        ), row
        assert row.facts["status_seen_at"] == refreshed_at.isoformat()

    async with ResourceSupervisor(persistence, providers, settings=supervisor.settings) as session:
        row = await restored_row(session)  # the next session (``legion status``) shows it the same
        assert (row.system, row.waiting, row.facts["status"]) == ("reachable", None, "running"), row
        assert (world.counters.mutations(), server_actions(world)) == (before, actions)  # read only
        assert persistence.state.tracked.servers[NAME].status == "off"  # tracked: Legion's last read
        (row_diff,) = [r for r in diff(persistence.state).resources if r.name == NAME]
        (status,) = [f for f in row_diff.fields if f.field == "status"]
        assert (status.tracked, status.observed) == ("off", "running")  # the row shows the drift

        row = (await materialize(session))[server_key(NAME)]
    assert (row.lifecycle, row.system, row.waiting) == ("running", "reachable", None), row
    assert server_actions(world) == actions  # running already: the wave only read it
    assert persistence.state.tracked.servers[NAME].status == "running"


async def test_an_actor_read_that_changes_the_observed_status_dates_it_and_leaves_the_listing_time(
    supervisor: ResourceSupervisor,
    persistence: State,
    providers: SandboxProviders,
    observer: dict[str, ProviderAdapter],
) -> None:
    """A refresh sees a server off; the wave that powers it on reads it running. The observation
    follows that read with its own time, while the provider's ``refreshed`` (when the inventory was
    last listed, which decides what the listing could call gone) stays the refresh's."""
    await plan_cluster(persistence, (NAME,), provider="scaleway")
    await materialize(supervisor)
    server_id = persistence.state.tracked.servers[NAME].provider_id
    await observer["scaleway"].power_off(server_id)
    await until(observer["scaleway"], server_id, "off")
    refreshed_at = await refresh(persistence, observer["scaleway"])

    await materialize(supervisor)

    observed = persistence.state.observed["scaleway"]
    assert observed.refreshed == refreshed_at
    seen = observed.servers[server_id]
    assert seen.status == "running" and seen.seen is not None and seen.seen > refreshed_at
    row = supervisor.snapshot(server_key(NAME))
    assert row is not None and row.facts["status_seen_at"] == seen.seen.isoformat()
