"""The NBDE (network-bound disk encryption) policy a cluster calls for, and the nodes that need repair.

Every managed node's root disk is encrypted. What unlocks it at boot depends on how many healthy
peers the node has, because the point of NBDE is that a disk carried away from the cluster must not
unlock on its own, while a node rebooting inside a healthy cluster must unlock without an operator:

* ``local`` (degraded): fewer than :data:`MIN_DISTRIBUTED_NODES` healthy nodes. A key on the node's
  own boot partition unlocks it. A single node or a pair has too few peers to lean on: binding a pair
  to each other's Tang servers would make either node's reboot depend on the other being up.
* ``tang`` (distributed Tang): enough healthy nodes, but not every one of them serves Tang yet (a
  node just installed, or a cluster mid-promotion). The disk is bound to the peers whose Tang servers
  do answer, any one of them unlocks it (threshold 1), and the local boot key is removed.
* ``quorum``: every healthy node serves Tang. The disk is bound with a Shamir threshold ``t`` of the
  node's ``p`` peers, ``t = p // 2 + 1``: a strict majority of peers. A minority of the cluster (say
  a stolen disk plus one compromised peer) can never unlock a disk; a node rebooting while a
  minority of its peers are down still unlocks.

A node never counts itself: its own Tang server is useless for unlocking its own disk (it is locked
behind the very disk it would unlock), so it is never among its peers. The recovery passphrase, an
operator's last resort in every mode, is kept in the encrypted state (``NodeNbde``) and never here.

:func:`derive_nbde_policy` is pure over :class:`ClusterFacts`; :func:`select_nbde_repairs` compares
the policy with what each node was last configured with (``NodeNbde``, persisted by the deployment
runtime's NBDE reconcile phase) and names the nodes whose NBDE must be reconciled, with the reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from legion_nb.engine.state.model import LegionState, NbdeMode, NodeNbde
from legion_nb.errors import ValidationError

__all__ = [
    "MIN_DISTRIBUTED_NODES",
    "ClusterFacts",
    "NbdePolicy",
    "NbdeRepair",
    "NodeFacts",
    "NodeUnlock",
    "cluster_facts",
    "derive_nbde_policy",
    "nbde_repairs",
    "quorum_threshold",
    "select_nbde_repairs",
]

MIN_DISTRIBUTED_NODES = 3
"""Healthy nodes a cluster needs before its disks stop unlocking from a local boot key."""


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the policy needs to know of one node: is it healthy, and does its Tang server answer."""

    name: str
    healthy: bool
    tang: bool = False


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """The cluster as observed; node names must be unique."""

    cluster: str
    nodes: tuple[NodeFacts, ...]

    def __post_init__(self) -> None:
        names = [node.name for node in self.nodes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValidationError(
                f"cluster {self.cluster} lists node(s) {', '.join(duplicates)} twice; each node once"
            )

    @classmethod
    def of(cls, cluster: str, nodes: Iterable[NodeFacts]) -> ClusterFacts:
        return cls(cluster, tuple(sorted(nodes, key=lambda node: node.name)))


@dataclass(frozen=True, slots=True)
class NodeUnlock:
    """How one node's disk should unlock: ``peers`` are the nodes whose Tang servers it is bound to."""

    node: str
    mode: NbdeMode
    peers: tuple[str, ...] = ()
    threshold: int = 1

    @property
    def local_boot_key(self) -> bool:
        """Whether a key on the node's own boot partition should exist (only in degraded mode)."""
        return self.mode == "local"


@dataclass(frozen=True, slots=True)
class NbdePolicy:
    """The policy for a cluster: one mode, and each healthy node's binding."""

    cluster: str
    mode: NbdeMode
    nodes: Mapping[str, NodeUnlock]
    reason: str

    def for_node(self, node: str) -> NodeUnlock | None:
        return self.nodes.get(node)


@dataclass(frozen=True, slots=True)
class NbdeRepair:
    """A node whose NBDE configuration differs from the policy, and why (each reason one phrase)."""

    node: str
    target: NodeUnlock
    reasons: tuple[str, ...]


def quorum_threshold(peers: int) -> int:
    """A strict majority of ``peers`` (at least 1): ``peers // 2 + 1``."""
    if peers < 1:
        raise ValueError("a quorum needs at least one peer")
    return peers // 2 + 1


def derive_nbde_policy(facts: ClusterFacts) -> NbdePolicy:
    """The policy ``facts`` call for (module notes). Unhealthy nodes get no binding and are nobody's
    peer: a node cannot be reconfigured while it is down, and a down peer cannot serve Tang."""
    healthy = tuple(node for node in facts.nodes if node.healthy)
    serving = tuple(node.name for node in healthy if node.tang)
    if len(healthy) < MIN_DISTRIBUTED_NODES:
        reason = (
            f"{len(healthy)} healthy node(s), fewer than {MIN_DISTRIBUTED_NODES}: "
            "disks unlock from a local boot key (degraded)"
        )
        return _uniform(facts.cluster, "local", healthy, serving, reason)
    if len(serving) == len(healthy):
        reason = f"all {len(healthy)} healthy nodes serve Tang: a strict majority of peers unlocks a disk"
        return _uniform(facts.cluster, "quorum", healthy, serving, reason)
    if any(not _peers(node.name, serving) for node in healthy):
        reason = (
            f"{len(serving)} of {len(healthy)} healthy nodes serve Tang, too few for every node to "
            "have a peer: disks stay on their local boot key"
        )
        return _uniform(facts.cluster, "local", healthy, serving, reason)
    reason = (
        f"{len(serving)} of {len(healthy)} healthy nodes serve Tang: any one serving peer unlocks a disk "
        "until every node serves Tang"
    )
    return _uniform(facts.cluster, "tang", healthy, serving, reason)


def _peers(node: str, serving: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in serving if name != node)


def _uniform(
    cluster: str, mode: NbdeMode, healthy: tuple[NodeFacts, ...], serving: tuple[str, ...], reason: str
) -> NbdePolicy:
    nodes: dict[str, NodeUnlock] = {}
    for node in healthy:
        if mode == "local":
            nodes[node.name] = NodeUnlock(node.name, "local")
            continue
        peers = _peers(node.name, serving)
        threshold = quorum_threshold(len(peers)) if mode == "quorum" else 1
        nodes[node.name] = NodeUnlock(node.name, mode, peers, threshold)
    return NbdePolicy(cluster=cluster, mode=mode, nodes=nodes, reason=reason)


def select_nbde_repairs(
    policy: NbdePolicy, recorded: Mapping[str, NodeNbde | None]
) -> tuple[NbdeRepair, ...]:
    """The healthy nodes whose last NBDE reconcile (``recorded``, by node name) differs from ``policy``.

    Reasons, in the order checked: never reconciled; a local boot key left behind although the
    policy is distributed; a mode change (promotion, or demotion when the cluster shrank); the peer
    Tang set changed; the threshold changed. Nodes the policy does not bind (unhealthy) are skipped:
    a repair is an SSH session, and it would only fail.
    """
    repairs: list[NbdeRepair] = []
    for name in sorted(policy.nodes):
        target = policy.nodes[name]
        reasons = _differences(target, recorded.get(name))
        if reasons:
            repairs.append(NbdeRepair(node=name, target=target, reasons=reasons))
    return tuple(repairs)


def _differences(target: NodeUnlock, record: NodeNbde | None) -> tuple[str, ...]:
    if record is None or record.reconciled is None:
        return ("never reconciled",)
    reasons: list[str] = []
    if record.local_boot_key and not target.local_boot_key:
        reasons.append(f"local boot key still present under the {target.mode} policy")
    if target.local_boot_key and not record.local_boot_key:
        reasons.append("local boot key missing under the local policy")
    if record.mode != target.mode:
        reasons.append(f"mode {record.mode} -> {target.mode}")
    if set(record.tang_peers) != set(target.peers):
        reasons.append("peer Tang set changed")
    elif target.mode != "local" and record.threshold != target.threshold:
        reasons.append(f"threshold {record.threshold} -> {target.threshold}")
    return tuple(reasons)


# -- facts from the state ------------------------------------------------------------------------


def cluster_facts(state: LegionState, cluster: str, *, deploying: str | None = None) -> ClusterFacts:
    """The NBDE facts the state holds for ``cluster``'s nodes (satellites take no part).

    A node is healthy when its last deployment execution succeeded (``deploying`` names a node in
    the middle of its own operation, which counts as healthy: it is past its readiness phase when NBDE
    is reconciled). A node serves Tang once it has been NBDE-reconciled at least once: that reconcile
    is what enrols its Tang server.
    """
    nodes: list[NodeFacts] = []
    for name, server in state.tracked.servers.items():
        if server.cluster != cluster or server.role != "cluster":
            continue
        execution = server.execution
        healthy = name == deploying or (execution is not None and execution.status == "succeeded")
        material = state.deployment.nodes.get(name)
        tang = healthy and material is not None and material.nbde is not None
        nodes.append(NodeFacts(name, healthy=healthy, tang=tang))
    return ClusterFacts.of(cluster, nodes)


def nbde_repairs(state: LegionState) -> tuple[NbdeRepair, ...]:
    """Every node, across clusters, whose NBDE needs a reconcile (for the repair tick)."""
    repairs: list[NbdeRepair] = []
    for cluster in sorted({server.cluster for server in state.tracked.servers.values()}):
        policy = derive_nbde_policy(cluster_facts(state, cluster))
        recorded = {
            name: material.nbde for name, material in state.deployment.nodes.items() if name in policy.nodes
        }
        repairs.extend(select_nbde_repairs(policy, recorded))
    return tuple(repairs)
