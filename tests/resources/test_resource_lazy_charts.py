"""Actors rest without a chart where restoring would start nothing, and rest exactly where their
chart would have gone: every resting configuration is checked against the chart's own restore."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from legion_nb.engine.cluster.firewall_plan import FirewallPlanCache
from legion_nb.engine.resources.actor import ActorContext, ResourceActor
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.resources.supervisor import _ACTORS, desired_keys
from legion_nb.engine.state.edits import with_tracked
from legion_nb.engine.state.model import (
    LegionState,
    NodeExecution,
    PlannedDomain,
    PlannedServer,
    TrackedDnsZone,
    TrackedFirewall,
    TrackedServer,
    synthetic_state,
)


class FixedState:
    """A state port over one state value; resting actors never write."""

    def __init__(self, state: LegionState) -> None:
        self.state = state

    async def mutate(self, fn: Callable[[LegionState], tuple[LegionState, Any]], *, reason: str) -> Any:
        raise AssertionError(f"a restoring actor wrote the state: {reason}")

    def subscribe(self, listener: object) -> Callable[[], None]:
        return lambda: None


class FakeDeployer:
    """Deployment wired: node-00000 installed, node-00004 busy with another operation."""

    def enabled(self) -> bool:
        return True

    def busy(self, node: str) -> bool:
        return node == "node-00004"

    def execution(self, node: str) -> NodeExecution | None:
        record = _fleet().tracked.servers.get(node)
        return record.execution if record is not None and node == "node-00000" else None

    async def provider_ssh_key(self, node: str, provider: str) -> Any:
        raise AssertionError("restoring never creates a server")

    async def deploy(self, node: str) -> NodeExecution:
        await asyncio.Event().wait()  # an install in flight until the test stops the actor
        raise AssertionError("unreachable")

    async def repair(self, node: str, operation: str) -> NodeExecution:
        raise AssertionError("restoring never repairs")


def _fleet() -> LegionState:
    """Servers running, off, starting, tracked but unplanned and planned only; a derived and a
    planned firewall, one tracked; a zone tracked and one planned; a domain."""
    state = synthetic_state(9)
    servers = dict(state.tracked.servers)
    servers["node-00001"] = dataclasses.replace(servers["node-00001"], status="off")
    servers["node-00002"] = dataclasses.replace(servers["node-00002"], status="starting")
    servers["gone-1"] = dataclasses.replace(servers["node-00003"], name="gone-1", provider_id="77")
    firewalls = {
        "legion-c000-hetzner": TrackedFirewall(
            name="legion-c000-hetzner", provider="hetzner", provider_id="5", rules=(), servers=()
        )
    }
    zones = {
        "zone0.example.org": TrackedDnsZone(zone="zone0.example.org", provider="hetzner", provider_id="z")
    }
    state = with_tracked(state, servers=servers, firewalls=firewalls, dns_zones=zones)
    off = servers["node-00001"]  # the last refresh saw it off too (a newer observation would win)
    observed = state.observed[off.provider]
    seen = dataclasses.replace(observed.servers[off.provider_id], status="off")
    observed = dataclasses.replace(observed, servers={**observed.servers, off.provider_id: seen})
    state = dataclasses.replace(state, observed={**state.observed, off.provider: observed})
    cluster = state.scheme.clusters["c000"]
    fresh = PlannedServer(name="fresh-1", provider="hetzner")
    clusters = {
        **state.scheme.clusters,
        "c000": dataclasses.replace(cluster, servers={**cluster.servers, "fresh-1": fresh}),
    }
    domains = {"example.net": PlannedDomain(name="example.net", provider="ovh")}
    return dataclasses.replace(
        state, scheme=dataclasses.replace(state.scheme, clusters=clusters, domains=domains)
    )


def _started_context(state: LegionState, *, lazy: bool, deployer: FakeDeployer | None) -> ActorContext:
    return ActorContext(
        providers=None,  # type: ignore[arg-type]  # restoring makes no provider call
        state=FixedState(state),
        changed=lambda _snapshot: None,
        busy_servers=lambda _names: [],
        deployment=deployer,
        firewall_plans=FirewallPlanCache(),
        lazy_charts=lazy,
    )


def _belief(snapshot: ActorSnapshot) -> ActorSnapshot:
    return dataclasses.replace(snapshot, revision=0)


@pytest.mark.parametrize("deployed", [False, True], ids=["provisioning-only", "deployment-wired"])
async def test_a_resting_actor_rests_where_its_chart_restores_to(deployed: bool) -> None:
    state = _fleet()
    deployer = FakeDeployer() if deployed else None
    keys = desired_keys(state, FirewallPlanCache().plans(state))
    lazy_context = _started_context(state, lazy=True, deployer=deployer)
    eager_context = _started_context(state, lazy=False, deployer=deployer)
    for key, provider in sorted(keys.items()):
        lazy: ResourceActor = _ACTORS[key.kind](key, provider, lazy_context)
        eager: ResourceActor = _ACTORS[key.kind](key, provider, eager_context)
        await lazy.start()
        await eager.start()
        try:
            assert lazy.active == eager.active, key
            assert _belief(lazy.snapshot()) == _belief(eager.snapshot()), key
            # Only an install to run (deployment wired) or a create due builds a chart at start.
            due = key.kind != "domain" and eager.wanted() and not eager.is_tracked()  # type: ignore[attr-defined]
            assert lazy.chart_built is ("deploying" in eager.active or due), key
        finally:
            await lazy.stop()
            await eager.stop()
        assert lazy.stopped and eager.stopped
    assert ResourceKey("server", "fresh-1") in keys


async def test_a_resting_actor_builds_its_chart_at_its_first_event_and_moves_from_its_rest() -> None:
    state = _fleet()
    context = _started_context(state, lazy=True, deployer=None)
    actor = _ACTORS["server"](ResourceKey("server", "node-00001"), "hetzner", context)
    await actor.start()
    assert actor.chart_built is False
    assert actor.snapshot().system == "down"

    actor.provider_status = "running"
    await actor.send("observe")

    assert actor.chart_built is True
    assert actor.snapshot().system == "reachable"
    assert actor.snapshot().lifecycle == "running"
    await actor.stop()
    assert actor.stopped


def test_the_synthetic_fleet_is_consistent() -> None:
    state = _fleet()
    assert isinstance(state.tracked.servers["gone-1"], TrackedServer)
    assert state.scheme.find_server("gone-1") is None


class StoppedDeployer(FakeDeployer):
    """Deployment wired over executions a previous process left stopped, by node; records any
    install the actors start (none may start while the session only opens)."""

    def __init__(self, executions: dict[str, NodeExecution | None]) -> None:
        self.executions = executions
        self.deployed: list[str] = []

    def busy(self, node: str) -> bool:
        return False

    def execution(self, node: str) -> NodeExecution | None:
        return self.executions.get(node)

    async def deploy(self, node: str) -> NodeExecution:
        self.deployed.append(node)
        return await super().deploy(node)


async def test_an_operation_left_stopped_rests_until_the_operator_asks() -> None:
    state = _fleet()
    now = state.tracked.servers["node-00000"].created
    stopped = NodeExecution("add", "os_install", "interrupted", now, now, retryable=True, error="stopped")
    executions: dict[str, NodeExecution | None] = {
        "node-00000": stopped,
        "node-00003": dataclasses.replace(stopped, status="failed", error="disk /dev/sda not found"),
        "node-00005": dataclasses.replace(stopped, status="failed", retryable=False, error="bad input"),
        "node-00006": None,
    }
    deployer = StoppedDeployer(executions)
    expected = {
        "node-00000": (
            "deploy_interrupted",
            None,
            "legion server resume node-00000 (or legion materialize): add interrupted in os_install",
        ),
        "node-00003": (
            "deploy_failed",
            "add failed in os_install: disk /dev/sda not found",
            "legion server resume node-00003 (or legion materialize): retry add from os_install",
        ),
        "node-00005": (
            "deploy_failed",
            "add failed in os_install: bad input",
            "legion materialize: start add over",
        ),
        "node-00006": ("reachable", None, "legion materialize: not installed yet"),
    }
    for lazy in (True, False):
        context = _started_context(state, lazy=lazy, deployer=deployer)
        for name, (system, error, waiting) in expected.items():
            actor = _ACTORS["server"](ResourceKey("server", name), "hetzner", context)
            await actor.start()
            try:
                snapshot = actor.snapshot()
                assert (snapshot.system, snapshot.error, snapshot.waiting) == (system, error, waiting), name
                assert (snapshot.lifecycle, snapshot.operation, snapshot.settled) == ("running", None, True)
                assert actor.chart_built is not lazy, name  # at rest: nothing to start
            finally:
                await actor.stop()
    assert deployer.deployed == []  # opening a session asked for no install
