"""Issue 5 end to end: materialize deploys real (simulated) nodes over SSH and HTTPS with mTLS.

``legion_nb.sandbox(nodes=True)`` boots a simulated node for every running Hetzner server (real SSH
server, real mTLS admin API on its own loopback address) and wires the engine with node deployment.
Nothing here reaches into the runtime: the engine API drives it, the state's commit reasons and the
nodes' own admin APIs show what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import legion_nb
from legion_nb.engine.deployment.phases import PLANS, NodeOperation
from legion_nb.engine.deployment.security import ClusterSecurity
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import LegionState
from legion_nb.engine.state.persistence import StateChange
from legion_nb.providers.node_admin import NodeAdminClient, NodeAdminTrustError, admin_url
from legion_nb.sandbox_engine import sandbox_cloud

pytestmark = pytest.mark.slow

CLUSTER = "alpha"


class Recorder:
    """Commit reasons and every change of a node's recorded NBDE mode, in commit order."""

    def __init__(self, engine: Engine) -> None:
        self.reasons: list[str] = []
        self.modes: list[tuple[str, str]] = []
        self._unsubscribe = engine.assert_unlocked().subscribe(self._changed)

    def _changed(self, change: StateChange[LegionState]) -> None:
        self.reasons.extend(change.reasons)
        for name, material in change.after.deployment.nodes.items():
            before = change.before.deployment.nodes.get(name)
            old = before.nbde.mode if before is not None and before.nbde is not None else None
            new = material.nbde.mode if material.nbde is not None else None
            if new is not None and new != old:
                self.modes.append((name, new))

    def cluster_modes(self) -> list[str]:
        """Distinct modes in the order they first appeared."""
        seen: list[str] = []
        for _, mode in self.modes:
            if mode not in seen:
                seen.append(mode)
        return seen


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    running = await legion_nb.sandbox(
        seed=21, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        yield running
    finally:
        await running.aclose()


async def plan(engine: Engine, *names: str) -> None:
    for name in names:
        await engine.plan_upsert_server(name=name, provider="hetzner", cluster=CLUSTER)


def admin_client(engine: Engine, node: str, security: ClusterSecurity | None = None) -> NodeAdminClient:
    state = engine.state
    record = state.tracked.servers[node]
    trusted = security or ClusterSecurity.from_dict(state.deployment.clusters[record.cluster].security)
    assert engine.core.deployment is not None
    port = engine.core.deployment.access.admin_port
    assert record.ipv4 is not None
    return NodeAdminClient(node, admin_url(record.ipv4, port), trusted.operator_ssl_context())


async def test_materialize_runs_every_phase_and_nodes_report_ready_over_mtls(engine: Engine) -> None:
    recorder = Recorder(engine)
    nodes = ("n1", "n2", "n3")
    await plan(engine, *nodes)

    report = await engine.materialize(settle_seconds=120)

    assert report.ok, (report.summary, report.errors)
    for node in nodes:
        for phase in PLANS[NodeOperation.ADD]:
            assert f"node {node}: add {phase} ended" in recorder.reasons, (node, phase)
        assert f"node {node}: add succeeded" in recorder.reasons
        record = engine.state.tracked.servers[node]
        assert record.execution is not None and record.execution.status == "succeeded"
        assert record.ssh_keys, "the server must be created with the node's provider SSH key"
    servers = [r for r in report.resources if r["kind"] == "server"]
    assert {(r["system"], r["health"]) for r in servers} == {("deployed", "healthy")}
    for node in nodes:
        async with admin_client(engine, node) as client:
            assert (await client.readiness()).ready
            assert (await client.health())["node"] == node
            assert await client.tang_serving()
    status = await engine.nbde_status()
    assert [c["mode"] for c in status] == ["quorum"]
    assert {(n["node"], n["mode"], n["threshold"], n["in_policy"]) for n in status[0]["nodes"]} == {
        (node, "quorum", 2, True) for node in nodes
    }
    assert "recovery" not in str(status)  # the passphrase stays in the encrypted state


async def test_a_client_pinning_another_ca_is_refused_in_one_line(engine: Engine) -> None:
    await plan(engine, "solo")
    assert (await engine.materialize(settle_seconds=120)).ok
    stranger = ClusterSecurity.create("elsewhere")
    async with admin_client(engine, "solo", stranger) as client:
        with pytest.raises(NodeAdminTrustError) as caught:
            await client.readiness()
    assert "\n" not in caught.value.message and "cluster CA" in caught.value.message


async def test_nbde_goes_local_then_tang_then_quorum_as_the_cluster_grows(engine: Engine) -> None:
    recorder = Recorder(engine)
    modes: list[str] = []
    for name in ("g1", "g2", "g3"):
        await plan(engine, name)
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)
        modes.append((await engine.nbde_status())[0]["mode"])

    assert modes == ["local", "local", "quorum"]
    assert recorder.cluster_modes() == ["local", "tang", "quorum"]
    assert ("g3", "tang") in recorder.modes  # the third node joined bound to its two serving peers
    final = (await engine.nbde_status())[0]["nodes"]
    assert {(n["node"], n["mode"], tuple(n["peers"])) for n in final} == {
        ("g1", "quorum", ("g2", "g3")),
        ("g2", "quorum", ("g1", "g3")),
        ("g3", "quorum", ("g1", "g2")),
    }
    assert any(reason.startswith("node g1: nbde_promote") for reason in recorder.reasons)


async def test_node_operations_refuse_untracked_nodes_in_one_line(engine: Engine) -> None:
    for call in (engine.node_reinstall, engine.node_resume):
        with pytest.raises(legion_nb.errors.UsageError) as caught:
            await call("ghost")
        assert "not tracked" in caught.value.message and "\n" not in caught.value.message


async def test_an_install_step_failure_is_reported_and_node_resume_finishes_it(engine: Engine) -> None:
    fleet = sandbox_cloud(engine).nodes
    assert fleet is not None

    async def break_the_first_install() -> None:
        while not fleet.addresses():
            await asyncio.sleep(0.002)
        fleet.node(fleet.addresses()[0]).faults.fail("install", "disk /dev/sda not found")

    breaker = asyncio.create_task(break_the_first_install())
    await plan(engine, "flaky")
    report = await engine.materialize(settle_seconds=120)
    await breaker

    assert not report.ok
    assert [(e["name"], "disk /dev/sda not found" in e["error"]) for e in report.errors] == [("flaky", True)]
    execution = engine.state.tracked.servers["flaky"].execution
    assert execution is not None and (execution.status, execution.phase) == ("failed", "os_install")
    assert execution.retryable

    result = await engine.node_resume("flaky")

    assert result.status == "succeeded"
    execution = engine.state.tracked.servers["flaky"].execution
    assert execution is not None and (execution.operation, execution.status) == ("add", "succeeded")
    row = next(r for r in (await engine.snapshot())["rows"] if r["name"] == "flaky")
    assert (row["system"], row["error"], row["substage"]) == ("deployed", "", ""), row
    assert [n["mode"] for n in (await engine.nbde_status())[0]["nodes"]] == ["local"]
