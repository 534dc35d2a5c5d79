"""The pure state edits: each changes one place, shares the rest, and leaves ``state`` as is when
there is nothing to change."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from legion_nb.engine.state.edits import (
    mark_interrupted,
    track_server,
    with_cluster_material,
    with_execution,
    with_material,
    with_pending,
    with_tracked,
    with_tracked_server,
    without_observed,
    without_pending,
    without_tracked_server,
)
from legion_nb.engine.state.model import (
    ClusterMaterial,
    CreatePending,
    LegionState,
    NodeExecution,
    NodeMaterial,
    ObservedDnsZone,
    ObservedFirewall,
    ObservedProvider,
    ObservedServer,
    TrackedDnsZone,
    TrackedServer,
    empty_state,
)

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
RUNNING = NodeExecution("add", "kexec", "running", NOW, NOW)


def server(name: str = "n1", provider_id: str = "11") -> TrackedServer:
    return TrackedServer(name, "hetzner", provider_id, NOW, cluster="alpha")


def observed_state() -> LegionState:
    observed = ObservedProvider(
        provider="hetzner",
        refreshed=NOW,
        servers={
            "11": ObservedServer("11", "n1", "running"),
            "12": ObservedServer("12", "n2", "running"),
        },
        dns_zones={"example.test": ObservedDnsZone("example.test", "z1")},
        firewalls={"f1": ObservedFirewall("fw", "f1")},
    )
    state = with_tracked(empty_state(), servers={"n1": server(), "n2": server("n2", "12")})
    return replace(state, observed={"hetzner": observed})


def test_with_tracked_replaces_only_the_named_mappings() -> None:
    state = empty_state()
    zones = {"example.test": TrackedDnsZone("example.test", "hetzner", "z1")}
    after = with_tracked(state, dns_zones=zones)
    assert after.tracked.dns_zones == zones
    assert after.tracked.servers is state.tracked.servers
    assert after.scheme is state.scheme and state.tracked.dns_zones == {}


def test_with_tracked_server_adds_and_replaces_by_name() -> None:
    state = with_tracked_server(empty_state(), server())
    assert state.tracked.servers == {"n1": server()}
    moved = replace(server(), ipv4="127.0.0.9")
    assert with_tracked_server(state, moved).tracked.servers == {"n1": moved}


def test_track_server_moves_the_pre_tracking_execution_in_the_same_edit() -> None:
    state = with_execution(empty_state(), "n1", RUNNING)
    assert state.deployment.nodes["n1"].execution == RUNNING
    tracked = track_server(state, server())
    assert tracked.tracked.servers["n1"].execution == RUNNING
    assert tracked.deployment.nodes["n1"].execution is None


def test_track_server_keeps_the_record_execution_when_nothing_waits() -> None:
    record = replace(server(), execution=RUNNING)
    assert track_server(empty_state(), record).tracked.servers["n1"] == record


def test_with_execution_writes_where_the_record_lives() -> None:
    before = with_execution(empty_state(), "n1", RUNNING)
    assert before.deployment.nodes == {"n1": NodeMaterial(node="n1", execution=RUNNING)}
    assert before.tracked.servers == {}
    tracked = with_tracked_server(empty_state(), server())
    after = with_execution(tracked, "n1", RUNNING)
    assert after.tracked.servers["n1"].execution == RUNNING
    assert after.deployment.nodes == {}
    assert with_execution(after, "n1", None).tracked.servers["n1"].execution is None


def test_without_tracked_server_forgets_its_observation_too() -> None:
    state = observed_state()
    after = without_tracked_server(state, "n1")
    assert set(after.tracked.servers) == {"n2"}
    assert set(after.observed["hetzner"].servers) == {"12"}
    assert without_tracked_server(after, "n1") is after


def test_without_observed_drops_one_record_of_one_kind() -> None:
    state = observed_state()
    assert set(without_observed(state, "hetzner", "servers", "12").observed["hetzner"].servers) == {"11"}
    zones = without_observed(state, "hetzner", "dns_zones", "example.test").observed["hetzner"].dns_zones
    assert zones == {}
    assert without_observed(state, "hetzner", "firewalls", "f1").observed["hetzner"].firewalls == {}
    assert without_observed(state, "hetzner", "firewalls", "missing") is state
    assert without_observed(state, "ovh", "servers", "11") is state


def test_pending_intents_come_and_go_by_legion_id() -> None:
    entry = CreatePending("L1", "hetzner", "server", "n1", NOW, {"legion-id": "L1"})
    state = with_pending(empty_state(), entry)
    assert state.tracked.pending == {"L1": entry}
    assert without_pending(state, "L1").tracked.pending == {}
    assert without_pending(state, "other") is state


def test_material_edits_key_by_node_and_cluster() -> None:
    material = NodeMaterial(node="n1", security={"k": "v"})
    state = with_material(empty_state(), material)
    assert state.deployment.nodes == {"n1": material}
    ca = ClusterMaterial(cluster="alpha", security={"ca": "pem"})
    clustered = with_cluster_material(state, ca)
    assert clustered.deployment.clusters == {"alpha": ca}
    assert clustered.deployment.nodes is state.deployment.nodes


def test_mark_interrupted_stops_running_executions_wherever_they_live() -> None:
    done = NodeExecution("add", "nbde_reconcile", "succeeded", NOW, NOW, phase_done=True)
    state = with_tracked(empty_state(), servers={"n1": replace(server(), execution=RUNNING)})
    state = with_tracked_server(state, replace(server("n2", "12"), execution=done))
    state = with_execution(state, "n3", replace(RUNNING, phase="provision"))
    later = NOW + dt.timedelta(minutes=5)
    after, names = mark_interrupted(state, later)
    assert names == ("n1", "n3")
    first = after.tracked.servers["n1"].execution
    assert first is not None
    assert (first.status, first.retryable, first.updated) == ("interrupted", True, later)
    assert first.error == "interrupted during kexec: Legion stopped; resume to continue from there"
    pre = after.deployment.nodes["n3"].execution
    assert pre is not None and (pre.status, pre.phase) == ("interrupted", "provision")
    assert after.tracked.servers["n2"].execution == done
    assert mark_interrupted(after) == (after, ())
