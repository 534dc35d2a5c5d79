"""Node events on the activity stream: each deployment phase's start and end, each NBDE binding.

A runbook (or a panel, or a daemon client) follows a node's reinstall phase by phase, or watches its
disk unlock move from a local key to Tang to a quorum, with the public ``subscribe(["activity"])``
instead of listening to the state's commits. The items are derived from the commits themselves
(the node's execution record and NBDE binding before and after), so they say exactly what the
encrypted state says, in commit order; nothing is announced that was not made durable.

A phase's end and an operation's success are details (``"detail": true``,
:func:`~legion_nb.engine.headline.headline`): the next phase's start says the last one ended, and
the server's own activity line (``server web-1: running``) says the node settled. A progress view
for people shows one line per phase and every failure or interruption; machine consumers
(``--json``, runbooks following a reinstall) get every item.

Only commits whose reasons name a node (``node NAME: ...``) are looked at, so a fleet's other
commits cost nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from legion_nb.engine.deployment.phases import execution_of
from legion_nb.engine.headline import DETAIL
from legion_nb.engine.redaction import redact
from legion_nb.engine.state.model import LegionState, NodeExecution
from legion_nb.engine.state.persistence import StateChange

__all__ = ["node_event_items", "node_events"]

_PREFIX = "node "
_DETAIL = frozenset({"ended", "succeeded"})  # a phase's end, an operation's success: see the notes


def node_events(publish: Callable[[dict[str, Any]], None]) -> Callable[[StateChange[LegionState]], None]:
    """A state listener that publishes :func:`node_event_items` of every commit."""

    def listener(change: StateChange[LegionState]) -> None:
        for item in node_event_items(change):
            publish(item)

    return listener


def node_event_items(change: StateChange[LegionState]) -> list[dict[str, Any]]:
    """The phase and NBDE items of one commit (see the module notes)."""
    nodes = dict.fromkeys(
        reason[len(_PREFIX) :].split(":", 1)[0].split()[0]
        for reason in change.reasons
        if reason.startswith(_PREFIX) and len(reason) > len(_PREFIX)
    )
    items: list[dict[str, Any]] = []
    for node in nodes:
        after = execution_of(change.after, node)
        if after is not None and after != execution_of(change.before, node):
            items.append(_phase_item(node, after))
        mode = _nbde_mode(change.after, node)
        if mode is not None and mode != _nbde_mode(change.before, node):
            items.append(
                {"event": "nbde", "node": node, "mode": mode, "summary": f"node {node}: disk unlock {mode}"}
            )
    return items


def _phase_item(node: str, record: NodeExecution) -> dict[str, Any]:
    # running: the phase started or ended; otherwise the operation succeeded, failed or was interrupted
    running = "ended" if record.phase_done else "started"
    status = running if record.status == "running" else record.status
    # A one-phase operation (nbde_reconcile) is named once: its name twice reads as a stutter.
    step = record.operation if record.phase == record.operation else f"{record.operation} {record.phase}"
    summary = f"node {node}: {step} {status}"
    if record.error:
        summary += f" - {redact(record.error)}"  # a node's error may quote what it was sent
    return {
        "event": "phase",
        "node": node,
        "operation": record.operation,
        "phase": record.phase,
        "status": status,
        "time": record.updated.isoformat(),
        "summary": summary,
        DETAIL: status in _DETAIL,
    }


def _nbde_mode(state: LegionState, node: str) -> str | None:
    material = state.deployment.nodes.get(node)
    if material is None or material.nbde is None:
        return None
    return str(material.nbde.mode)
