"""The derived NBDE policy: local -> tang -> quorum as a cluster grows, and the repair selection."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legion_nb.engine.cluster.nbde import (
    ClusterFacts,
    NodeFacts,
    derive_nbde_policy,
    quorum_threshold,
    select_nbde_repairs,
)
from legion_nb.engine.state.model import NodeNbde
from legion_nb.errors import ValidationError

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def cluster(*nodes: NodeFacts) -> ClusterFacts:
    return ClusterFacts.of("c1", nodes)


def healthy(name: str, *, tang: bool = True) -> NodeFacts:
    return NodeFacts(name, healthy=True, tang=tang)


def recorded_as(policy_node: str, facts: ClusterFacts) -> NodeNbde:
    """What the reconcile phase would have recorded after applying the policy to ``policy_node``."""
    target = derive_nbde_policy(facts).nodes[policy_node]
    return NodeNbde(
        mode=target.mode,
        local_boot_key=target.local_boot_key,
        tang_peers=target.peers,
        threshold=target.threshold,
        reconciled=NOW,
    )


def test_a_growing_cluster_moves_from_local_to_tang_to_quorum() -> None:
    one = cluster(healthy("a"))
    two = cluster(healthy("a"), healthy("b"))
    three_new = cluster(healthy("a"), healthy("b"), healthy("c", tang=False))
    three = cluster(healthy("a"), healthy("b"), healthy("c"))
    modes = [derive_nbde_policy(facts).mode for facts in (one, two, three_new, three)]
    assert modes == ["local", "local", "tang", "quorum"]

    tang = derive_nbde_policy(three_new)
    assert tang.nodes["c"].peers == ("a", "b")
    assert tang.nodes["a"].peers == ("b",)  # c does not serve Tang yet: nobody binds to it
    assert {unlock.threshold for unlock in tang.nodes.values()} == {1}

    quorum = derive_nbde_policy(three)
    assert quorum.nodes["a"].peers == ("b", "c")
    assert quorum.nodes["a"].threshold == 2
    assert not quorum.nodes["a"].local_boot_key


def test_unhealthy_nodes_count_for_nothing_and_get_no_binding() -> None:
    facts = cluster(healthy("a"), healthy("b"), NodeFacts("c", healthy=False, tang=True), healthy("d"))
    policy = derive_nbde_policy(facts)
    assert policy.mode == "quorum"
    assert "c" not in policy.nodes
    assert all("c" not in unlock.peers for unlock in policy.nodes.values())

    shrunk = derive_nbde_policy(cluster(healthy("a"), healthy("b"), NodeFacts("c", healthy=False)))
    assert shrunk.mode == "local"
    assert "2 healthy node(s)" in shrunk.reason


def test_too_few_tang_servers_for_every_node_to_have_a_peer_stays_local() -> None:
    facts = cluster(healthy("a"), healthy("b", tang=False), healthy("c", tang=False))
    assert derive_nbde_policy(facts).mode == "local"


def test_quorum_threshold_is_a_strict_majority_of_peers() -> None:
    assert [quorum_threshold(p) for p in (1, 2, 3, 4, 5, 6)] == [1, 2, 2, 3, 3, 4]
    with pytest.raises(ValueError, match="at least one peer"):
        quorum_threshold(0)


def test_duplicate_node_names_are_refused_with_one_line() -> None:
    with pytest.raises(ValidationError, match="lists node\\(s\\) a twice") as info:
        ClusterFacts("c1", (healthy("a"), healthy("a")))
    assert "\n" not in str(info.value)


def test_repairs_name_unreconciled_nodes_and_leftover_local_keys() -> None:
    three = cluster(healthy("a"), healthy("b"), healthy("c"))
    policy = derive_nbde_policy(three)
    recorded = {
        "a": recorded_as("a", three),
        "b": NodeNbde(mode="local", local_boot_key=True, reconciled=NOW),
        "c": None,
    }
    repairs = {repair.node: repair.reasons for repair in select_nbde_repairs(policy, recorded)}
    assert set(repairs) == {"b", "c"}
    assert repairs["c"] == ("never reconciled",)
    assert repairs["b"][0] == "local boot key still present under the quorum policy"
    assert "mode local -> quorum" in repairs["b"]
    assert "peer Tang set changed" in repairs["b"]


def test_a_new_peer_changes_every_other_nodes_tang_set() -> None:
    three = cluster(healthy("a"), healthy("b"), healthy("c"))
    recorded = {name: recorded_as(name, three) for name in ("a", "b", "c")}
    assert select_nbde_repairs(derive_nbde_policy(three), recorded) == ()

    four = cluster(healthy("a"), healthy("b"), healthy("c"), healthy("d"))
    repairs = {r.node: r.reasons for r in select_nbde_repairs(derive_nbde_policy(four), recorded)}
    assert repairs == {
        "a": ("peer Tang set changed",),
        "b": ("peer Tang set changed",),
        "c": ("peer Tang set changed",),
        "d": ("never reconciled",),
    }


def test_a_never_stamped_record_needs_repair_even_if_it_matches() -> None:
    one = cluster(healthy("a"))
    unstamped = NodeNbde(mode="local", local_boot_key=True, reconciled=None)
    assert [r.node for r in select_nbde_repairs(derive_nbde_policy(one), {"a": unstamped})] == ["a"]


node_facts = st.builds(
    NodeFacts,
    name=st.sampled_from([f"n{i}" for i in range(8)]),
    healthy=st.booleans(),
    tang=st.booleans(),
)
clusters = st.lists(node_facts, max_size=8, unique_by=lambda n: n.name).map(lambda ns: cluster(*ns))


@given(clusters)
def test_property_no_node_counts_itself_and_thresholds_are_reachable(facts: ClusterFacts) -> None:
    policy = derive_nbde_policy(facts)
    healthy_names = {n.name for n in facts.nodes if n.healthy}
    serving = {n.name for n in facts.nodes if n.healthy and n.tang}
    assert set(policy.nodes) == healthy_names
    if len(healthy_names) < 3:
        assert policy.mode == "local"
    for name, unlock in policy.nodes.items():
        assert name not in unlock.peers
        assert set(unlock.peers) <= serving
        assert unlock.local_boot_key == (policy.mode == "local")
        if policy.mode == "local":
            assert unlock.peers == ()
        else:
            assert 1 <= unlock.threshold <= len(unlock.peers)
        if policy.mode == "quorum":
            assert unlock.threshold * 2 > len(unlock.peers)


@given(clusters)
def test_property_applying_the_policy_leaves_nothing_to_repair(facts: ClusterFacts) -> None:
    policy = derive_nbde_policy(facts)
    recorded = {name: recorded_as(name, facts) for name in policy.nodes}
    assert select_nbde_repairs(policy, recorded) == ()


@given(st.integers(min_value=0, max_value=7))
def test_property_mode_only_rises_as_healthy_serving_nodes_are_added(extra: int) -> None:
    order = {"local": 0, "tang": 1, "quorum": 2}
    nodes: list[NodeFacts] = []
    last = 0
    for i in range(extra + 1):
        nodes.append(healthy(f"n{i}"))
        rank = order[derive_nbde_policy(cluster(*nodes)).mode]
        assert rank >= last
        last = rank
