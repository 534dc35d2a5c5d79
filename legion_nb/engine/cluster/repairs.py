"""The safe repairs: which node needs which repair and why, and the budget that bounds them.

Legion repairs conservatively and explainably: a repair is a node operation the deployment runtime
already knows (``nbde_reconcile``, ``nbde_promote``, ``reconfigure``), chosen only for a reason that
can be printed before it runs. Two kinds of drift qualify:

* **NBDE.** The state's record of a node's disk binding differs from the policy its cluster calls
  for (:func:`~legion_nb.engine.cluster.nbde.nbde_repairs`: never reconciled, a local boot key left
  or missing, a mode or peer set or threshold change), or the node's own binding no longer names
  the Tang peers Legion bound (a peer dropped on the node).
* **Membership.** A deployed cluster node's Tribes configuration names other peers than the
  cluster's tracked nodes (a key or peer diverged on the node): it is reconfigured. Never while a
  node operation runs in that cluster: the operation itself rewrites membership.

What a node holds is read from its admin API (``/v1/health``: ``membership`` and ``nbde.tang``) as
a :class:`NodeReport`; a node that did not answer is judged on the state alone.

:class:`RepairBudget` keeps a fault that a repair does not fix from being retried forever: at most
``per_hour`` attempts per node in any hour, and between consecutive attempts on the same node a
backoff that doubles from ``backoff`` seconds. A node whose tick finds nothing to repair starts
over. Selection is pure; the clock is passed in. The attempts within the window are kept in the
encrypted state (``LegionState.repair_attempts``: :meth:`RepairBudget.recorded` and
:meth:`RepairBudget.restore`), so a restart never grants a flapping node a fresh budget.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from legion_nb.engine.cluster.nbde import NbdeRepair, nbde_repairs
from legion_nb.engine.state.model import LegionState

__all__ = [
    "WINDOW_SECONDS",
    "NodeReport",
    "RepairBudget",
    "RepairDecision",
    "RepairTarget",
    "deployed_cluster_nodes",
    "nbde_operation",
    "report_of",
    "select_repairs",
]

RepairOperation = Literal["nbde_promote", "nbde_reconcile", "reconfigure"]

WINDOW_SECONDS = 3600.0
"""The repair budget's window: at most ``per_hour`` attempts per node within it."""


@dataclass(frozen=True, slots=True)
class NodeReport:
    """What a node says it holds: its Tribes peers and its disk binding's Tang peers (None: unknown)."""

    node: str
    membership: tuple[str, ...] | None = None
    tang: tuple[str, ...] | None = None


def report_of(node: str, health: Mapping[str, object]) -> NodeReport:
    """A :class:`NodeReport` from a node's ``/v1/health`` body (fields it lacks stay unknown)."""
    members = health.get("membership")
    nbde = health.get("nbde")
    tang = nbde.get("tang") if isinstance(nbde, Mapping) else None
    return NodeReport(
        node,
        tuple(sorted(str(m) for m in members)) if isinstance(members, list) else None,
        tuple(sorted(str(t) for t in tang)) if isinstance(tang, list) else None,
    )


@dataclass(frozen=True, slots=True)
class RepairTarget:
    """One node's repair: the operation and every reason it is needed."""

    node: str
    operation: RepairOperation
    reasons: tuple[str, ...]


def nbde_operation(repair: NbdeRepair) -> RepairOperation:
    """``nbde_promote`` when the node moves off its local boot key (its readiness is checked first
    and its peers learn its Tang server after), else a plain ``nbde_reconcile``."""
    promoting = repair.target.mode != "local" and any(
        reason.startswith(("mode local", "local boot key still present")) for reason in repair.reasons
    )
    return "nbde_promote" if promoting else "nbde_reconcile"


def _deployed_members(state: LegionState) -> dict[str, set[str]]:
    """Cluster -> its cluster nodes with an address: the peers a node's sync configuration names."""
    members: dict[str, set[str]] = {}
    for name, server in state.tracked.servers.items():
        if server.role != "cluster" or not (server.ipv4 or server.ipv6):
            continue
        members.setdefault(server.cluster, set()).add(name)
    return members


def deployed_cluster_nodes(state: LegionState) -> list[str]:
    """The cluster nodes whose last operation succeeded: the ones a repair may touch."""
    return sorted(name for name in state.tracked.servers if _deployed(state, name))


def _deployed(state: LegionState, node: str) -> bool:
    server = state.tracked.servers.get(node)
    if server is None or server.role != "cluster" or server.execution is None:
        return False
    return server.execution.status == "succeeded"


def select_repairs(
    state: LegionState, reports: Mapping[str, NodeReport], *, busy: Collection[str] = ()
) -> list[RepairTarget]:
    """Every repair the state and the nodes' reports call for, by node name (module notes).

    ``busy`` names nodes running an operation: their cluster's membership is left alone.
    """
    found: dict[str, tuple[RepairOperation, list[str]]] = {}
    for repair in nbde_repairs(state):
        found[repair.node] = (nbde_operation(repair), [f"NBDE: {r}" for r in repair.reasons])
    for node, report in reports.items():
        material = state.deployment.nodes.get(node)
        bound = material.nbde if material is not None else None
        if report.tang is None or bound is None or bound.mode == "local" or not _deployed(state, node):
            continue
        missing = sorted(set(bound.tang_peers) - set(report.tang))
        if missing and node not in found:
            found[node] = ("nbde_reconcile", [])
        if missing:
            peers = ", ".join(missing)
            found[node][1].append(f"NBDE: Tang peer {peers} missing from the node's disk binding")
    members = _deployed_members(state)
    busy_clusters = {state.tracked.servers[n].cluster for n in busy if n in state.tracked.servers}
    for node, report in sorted(reports.items()):
        server = state.tracked.servers.get(node)
        if report.membership is None or server is None or server.role != "cluster":
            continue
        if not _deployed(state, node) or server.cluster in busy_clusters:
            continue
        expected = members.get(server.cluster, set()) - {node}
        held = set(report.membership)
        lacking, unknown = sorted(expected - held), sorted(held - expected)
        if not (lacking or unknown):
            continue
        reasons = []
        if lacking:
            reasons.append(f"membership: node lacks peer {', '.join(lacking)}")
        if unknown:
            reasons.append(f"membership: node names unknown peer {', '.join(unknown)}")
        if node in found:
            found[node][1].extend(reasons)  # the NBDE operations end in a cluster reconcile too
        else:
            found[node] = ("reconfigure", reasons)
    return [RepairTarget(node, op, tuple(reasons)) for node, (op, reasons) in sorted(found.items())]


@dataclass(frozen=True, slots=True)
class RepairDecision:
    """A target and what the next tick does with it: ``run``, or ``held`` with why and until when."""

    target: RepairTarget
    action: Literal["run", "held"]
    held_because: str | None = None
    next_attempt: float | None = None
    """Seconds since the epoch; None when it can run now (or never, when held by a running operation)."""


@dataclass(slots=True)
class RepairBudget:
    """At most ``per_hour`` attempts per node in any hour, with a doubling backoff between them."""

    per_hour: int = 3
    backoff: float = 300.0
    _attempts: dict[str, list[float]] = field(default_factory=dict)

    def decide(self, target: RepairTarget, now: float) -> RepairDecision:
        """Whether ``target`` may run at ``now``; held ones say why and when they may next."""
        attempts = [t for t in self._attempts.get(target.node, []) if now - t < WINDOW_SECONDS]
        if len(attempts) >= self.per_hour:
            return RepairDecision(
                target,
                "held",
                f"budget spent: {len(attempts)} attempts on {target.node} in the last hour",
                attempts[-self.per_hour] + WINDOW_SECONDS,
            )
        if attempts:
            wait = self.backoff * 2 ** (len(attempts) - 1)
            if now < attempts[-1] + wait:
                why = f"backing off {wait:.0f} s after attempt {len(attempts)}"
                return RepairDecision(target, "held", why, attempts[-1] + wait)
        return RepairDecision(target, "run")

    def attempted(self, node: str, now: float) -> None:
        """Count an attempt on ``node`` at ``now`` (attempts older than an hour are forgotten)."""
        self._attempts[node] = [*(t for t in self._attempts.get(node, []) if now - t < WINDOW_SECONDS), now]

    def settle(self, healthy: Collection[str]) -> None:
        """Forget the attempts on nodes the latest selection found nothing to repair on."""
        for node in [n for n in self._attempts if n in healthy]:
            del self._attempts[node]

    def attempts(self, node: str) -> int:
        """Attempts on ``node`` within the hour of its latest one."""
        return len(self._attempts.get(node, []))

    def recorded(self, now: float) -> dict[str, tuple[float, ...]]:
        """The attempts still inside the window at ``now``, by node (what the state keeps)."""
        kept: dict[str, tuple[float, ...]] = {}
        for node, times in sorted(self._attempts.items()):
            recent = tuple(t for t in times if now - t < WINDOW_SECONDS)
            if recent:
                kept[node] = recent
        return kept

    def restore(self, recorded: Mapping[str, Sequence[float]]) -> None:
        """Take the attempts a previous session recorded (:meth:`recorded`), replacing these."""
        self._attempts = {node: sorted(times) for node, times in recorded.items() if times}
