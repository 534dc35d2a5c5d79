"""The repair tick: ask the deployed nodes what they hold, then plan or run the safe repairs.

The selection and the budget are the resource supervisor's (:meth:`ResourceSupervisor.plan_repairs`
over :mod:`~legion_nb.engine.cluster.repairs`); this service adds what only a session has: the
nodes' own reports (each deployed cluster node's ``/v1/health``, read through the deployment's
admin clients) and whether an apply runs. While a materialize runs, every repair is held: the
apply's own follow-up reconciles what it changed, and a repair racing it could undo that.

The observation scheduler runs :meth:`RepairTick.tick` every five minutes; ``legion repairs``
shows :meth:`RepairTick.plan` and ``legion repairs run`` calls :meth:`RepairTick.run`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from legion_nb.engine.cluster.repairs import NodeReport, RepairDecision, deployed_cluster_nodes, report_of
from legion_nb.engine.resources.snapshot import ResourceKey
from legion_nb.engine.results import RepairView
from legion_nb.errors import NodeError

if TYPE_CHECKING:
    from legion_nb.engine.activity import CurrentOperation
    from legion_nb.engine.deployment.runtime import DeploymentService
    from legion_nb.engine.resources.supervisor import ResourceSupervisor
    from legion_nb.engine.state.model import LegionState

__all__ = ["RepairTick"]

log = logging.getLogger(__name__)


class RepairTick:
    """The safe repairs of one session (module notes). ``clock`` returns seconds since the epoch."""

    def __init__(
        self,
        state: Callable[[], LegionState],
        resources: ResourceSupervisor,
        deployment: DeploymentService | None,
        applying: Callable[[], CurrentOperation | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._resources = resources
        self._deployment = deployment
        self._applying = applying
        self.clock = clock
        """The tick's time (seconds since the epoch): the budget counts attempts against it."""

    async def reports(self) -> dict[str, NodeReport]:
        """What each deployed cluster node says it holds; a node that does not answer is left out
        (its repairs are judged on the state alone)."""
        deployment = self._deployment
        if deployment is None or not deployment.enabled():
            return {}
        state = self._state()
        nodes = deployed_cluster_nodes(state)

        async def ask(node: str) -> NodeReport | None:
            if deployment.busy(node):
                return None
            try:
                return report_of(node, await deployment.node_health(node))
            except NodeError as exc:  # node health reports the outage; repairs wait for an answer
                log.info("repair tick: node %s did not report: %s", node, exc.message)
                return None

        answers = await asyncio.gather(*(ask(node) for node in nodes))
        return {report.node: report for report in answers if report is not None}

    def _blocked(self) -> str | None:
        apply = self._applying()
        return None if apply is None else f"{apply.kind} {apply.id} runs: repairs wait for it to end"

    async def plan(self) -> list[RepairView]:
        """What the next tick would do and why, without doing it."""
        reports = await self.reports()
        decisions = self._resources.plan_repairs(reports, now=self.clock(), blocked=self._blocked())
        return [self._view(decision) for decision in decisions]

    async def run(self) -> list[RepairView]:
        """Run the repairs the plan lets run now; every target is listed with its outcome."""
        reports = await self.reports()
        now = self.clock()
        blocked = self._blocked()
        decisions = self._resources.plan_repairs(reports, now=now, blocked=blocked)
        ran = dict(await self._resources.run_node_repairs(reports, now=now, blocked=blocked))
        views: list[RepairView] = []
        for decision in decisions:
            key = ResourceKey("server", decision.target.node)
            view = self._view(decision)
            if key in ran:
                snapshot = self._resources.snapshot(key)
                view["outcome"] = "ok" if ran[key] else "failed"
                view["error"] = None if ran[key] or snapshot is None else snapshot.error
            views.append(view)
        return views

    async def tick(self) -> int:
        """The scheduler's repair concern: run now, report how many repairs ran."""
        return sum(1 for view in await self.run() if view["outcome"] is not None)

    def _view(self, decision: RepairDecision) -> RepairView:
        target = decision.target
        nxt = decision.next_attempt
        return {
            "node": target.node,
            "operation": target.operation,
            "reasons": list(target.reasons),
            "action": decision.action,
            "held_because": decision.held_because,
            "next_attempt": None if nxt is None else dt.datetime.fromtimestamp(nxt, dt.UTC).isoformat(),
            "attempts": self._resources.repair_budget.attempts(target.node),
            "outcome": None,
            "error": None,
        }
