"""A satellite's short setup path through the durable deployment runtime.

The sandbox materializes one satellite: its node actor creates the server and runs
``satellite_add`` (provision, SSH bootstrap with the host key pinned on first contact, Sender setup,
HTTP health) over real SSH, with no installer, OS install, certificates, Tribes or NBDE, and the
satellite's Sender API answers only once set up. A setup phase cut short (cancelled, as an engine
shutdown does, or failing) leaves the execution retryable, and a resume finishes it without
repeating the bootstrap. A satellite that later presents another host key is refused until the
operator re-pins it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from runtimekit import create_state, engine, sandbox

import legion_nb
from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.deployment.node_reach import (
    PinnedHostKeyRefusedError,
    reopen_host_key_window,
    satellite_endpoint,
)
from legion_nb.engine.deployment.phases import SATELLITE_PHASES, NodeOperation, Phase, WrongRoleError
from legion_nb.engine.deployment.security import NodeSecurity
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.satellite import SatelliteClient, SatelliteError
from legion_nb.sandbox_engine import free_port, sandbox_cloud

pytestmark = pytest.mark.slow

STEPS = ("satellite-bootstrap exit 0", "satellite-setup exit 0")


def steps_run(node: SimulatedNode) -> list[str]:
    """The install vocabulary the node ran, in order (from its journal)."""
    return [e.message for e in node.system.journal if e.unit == "legion-node"]


async def sender_health(node: SimulatedNode, state: LegionState) -> dict[str, Any]:
    """The satellite's Sender API health, asked as Legion asks it (mTLS, the operator certificate)."""
    assert node.sender_port is not None
    found = satellite_endpoint(state, node.hostname, node.sender_port)
    assert found is not None
    url, cluster = found
    client = SatelliteClient(node.hostname, url, cluster.operator_ssl_context())
    try:
        return await client.health()
    finally:
        await client.aclose()


async def test_materialize_sets_a_satellite_up_over_ssh_and_it_ends_healthy_over_http() -> None:
    satellite = await legion_nb.sandbox(
        seed=43, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        await satellite.plan_upsert_server(name="sat1", provider="hetzner", role="satellite")
        report = await satellite.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)

        record = satellite.state.tracked.servers["sat1"]
        assert record.execution is not None
        execution = record.execution
        assert (execution.operation, execution.status, execution.phase) == (
            "satellite_add",
            "succeeded",
            "satellite_health",
        )
        fleet = sandbox_cloud(satellite).nodes
        assert fleet is not None
        node = fleet.by_hostname("sat1")
        assert steps_run(node) == list(STEPS)  # in order, and nothing of a cluster node's install
        assert node.system.phase == "cloud-image" and node.system.tribes_config is None
        assert not node.system.certs_activated
        security = NodeSecurity.from_dict(satellite.state.deployment.nodes["sat1"].security)
        assert security.satellite_host_key == node.host_public_key  # pinned on first contact
        assert node.system.is_authorized(security.admin.username, security.admin.authorized_keys_line())
        assert (await sender_health(node, satellite.state))["node"] == "sat1"

        runs = await satellite.observe_once(["nodes"])
        assert runs["nodes"]["ok"] and runs["nodes"]["items"] == 1, runs
        row = next(r for r in (await satellite.snapshot())["rows"] if r["name"] == "sat1")
        assert (row["health"], row["reason"]) == ("healthy", None), row
    finally:
        await satellite.aclose()


@pytest.mark.parametrize("cut", ["cancelled", "failed"])
async def test_a_setup_cut_short_is_retryable_and_a_resume_finishes_it(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "state" / "state.legion"
    await create_state(path, satellites=("sat1",))
    inside = asyncio.Event()
    cuts = [cut]

    async def cut_setup(node: str, phase: Phase, point: str) -> None:
        if (node, phase, point) != ("sat1", Phase.SATELLITE_SETUP, "configuring") or not cuts:
            return
        inside.set()
        if cuts.pop() == "failed":
            raise RuntimeError("sender package mirror unreachable")
        await asyncio.Event().wait()  # until the engine shuts down (the task is cancelled)

    sender_port = free_port()
    async with (
        sandbox(seed=11, sender_port=sender_port) as world,
        engine(path, world.credentials(), world.ssh_port, delay=cut_setup, sender_port=sender_port) as parts,
    ):
        run = asyncio.create_task(parts.runtime.run("sat1", NodeOperation.SATELLITE_ADD))
        await inside.wait()
        if cut == "cancelled":
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
        else:
            with pytest.raises(RuntimeError, match="mirror unreachable"):
                await run

        stopped = parts.runtime.execution("sat1")
        assert stopped is not None
        assert (stopped.phase, stopped.status, stopped.retryable, stopped.phase_done) == (
            "satellite_setup",
            "interrupted" if cut == "cancelled" else "failed",
            True,
            False,
        )
        node = world.fleet.by_hostname("sat1")
        with pytest.raises(SatelliteError, match="does not answer"):
            await sender_health(node, parts.persistence.state)  # not set up: the Sender API is not up yet

        done = await parts.runtime.resume("sat1")

        assert (done.operation, done.status, done.phase) == ("satellite_add", "succeeded", "satellite_health")
        assert steps_run(node) == list(STEPS)  # the bootstrap was not repeated
        assert (await sender_health(node, parts.persistence.state))["node"] == "sat1"
        assert [phase for phase in parts.runtime.metrics.runs] == list(SATELLITE_PHASES)
        assert parts.runtime.metrics.runs[Phase.SATELLITE_SETUP] == 2


async def test_a_satellite_presenting_another_host_key_is_refused_until_repinned(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.legion"
    await create_state(path, satellites=("sat1",))
    sender_port = free_port()
    async with (
        sandbox(seed=12, sender_port=sender_port) as world,
        engine(path, world.credentials(), world.ssh_port, sender_port=sender_port) as parts,
    ):
        await parts.runtime.run("sat1", NodeOperation.SATELLITE_ADD)
        node = world.fleet.by_hostname("sat1")
        admin = NodeSecurity.from_dict(parts.persistence.state.deployment.nodes["sat1"].security).admin
        # rebuilt outside Legion: a new image host key, root still accepting the provider key
        await world.fleet.rebuild(node.address, "sat1", authorized_keys=[admin.authorized_keys_line()])

        with pytest.raises(PinnedHostKeyRefusedError, match="legion server repin sat1"):
            await parts.runtime.run("sat1", NodeOperation.SATELLITE_ADD)
        failed = parts.runtime.execution("sat1")
        assert failed is not None and (failed.phase, failed.status) == ("satellite_bootstrap", "failed")

        await reopen_host_key_window(parts.persistence, "sat1", reason="test: operator re-pinned")
        done = await parts.runtime.resume("sat1")
        assert done.status == "succeeded"
        rebuilt = world.fleet.by_hostname("sat1")
        material = parts.persistence.state.deployment.nodes["sat1"]
        assert NodeSecurity.from_dict(material.security).satellite_host_key == rebuilt.host_public_key
        assert (await sender_health(rebuilt, parts.persistence.state))["node"] == "sat1"


async def test_reinstall_runs_each_roles_own_phases_and_refuses_the_other_roles() -> None:
    engine = await legion_nb.sandbox(
        seed=44, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        await engine.plan_upsert_server(name="sat1", provider="hetzner", role="satellite")
        assert (await engine.materialize(settle_seconds=120)).ok
        fleet = sandbox_cloud(engine).nodes
        assert fleet is not None
        first_key = fleet.by_hostname("sat1").host_public_key
        runtime = engine.core.deployment.runtime if engine.core.deployment is not None else None
        assert runtime is not None

        # The cluster operations are refused on a satellite before anything runs, naming what to do.
        refused = r"sat1 is a satellite node .* `legion server reinstall sat1`"
        for cluster_operation in ("reinstall", "reconfigure", "nbde_reconcile"):
            with pytest.raises(WrongRoleError, match=refused):
                await runtime.run("sat1", cluster_operation)
        kept = runtime.execution("sat1")
        assert kept is not None and kept.operation == "satellite_add"  # nothing of a refusal was recorded

        # ... and a satellite's on a cluster node (planned, before anything of it exists).
        await engine.plan_upsert_server(name="c1", provider="hetzner")
        for satellite_operation in ("satellite_add", "satellite_reinstall"):
            with pytest.raises(WrongRoleError, match=r"c1 is a cluster node .*\(reinstall\)$"):
                await runtime.run("c1", satellite_operation)
        assert runtime.execution("c1") is None
        await engine.plan_remove_server("c1")

        # What an operator runs: `legion server reinstall sat1` rebuilds it and sets it up as a satellite.
        result = await engine.server_reinstall("sat1")
        assert result.status == "succeeded", result.summary
        execution = engine.state.tracked.servers["sat1"].execution
        assert execution is not None
        assert (execution.operation, execution.status, execution.phase) == (
            "satellite_reinstall",
            "succeeded",
            "satellite_health",
        )
        rebuilt = fleet.by_hostname("sat1")
        assert steps_run(rebuilt) == list(STEPS)  # a fresh disk: bootstrap and setup again, no install
        assert rebuilt.system.phase == "cloud-image" and rebuilt.system.tribes_config is None
        security = NodeSecurity.from_dict(engine.state.deployment.nodes["sat1"].security)
        assert security.satellite_host_key == rebuilt.host_public_key != first_key  # the new image's key
        assert (await sender_health(rebuilt, engine.state))["node"] == "sat1"
    finally:
        await engine.aclose()
