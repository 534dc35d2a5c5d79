"""The statechart shared by actors that converge a provider resource on a derived desired set.

A DNS zone (records synthesized from hosts and endpoints) and a firewall set (rules derived from
cluster peers) have the same life: create the provider resource once, wait while prerequisites
(server endpoints) are still being produced, apply the full desired set, report convergence, tear
down on planned absence. The seed keeps one machine per entity and shares behaviour as a library;
this module is that library: the chart's structure, with every guard and invoke supplied by the
actor that listens to it (:class:`ConvergingActor`).

After each apply the chart asks again: if the desired set changed while provider calls were in
flight, it applies the latest full set before it reports ``applied``. A ``recheck`` (sent by the
supervisor when tracked endpoints change) moves an applied resource back to applying when its
desired set moved and the actor may follow it now (``may_follow``); it never creates or deletes
anything: that is for waves. A DNS zone follows whenever its endpoints move; a firewall set only
while a wave is at work (:class:`~legion_nb.engine.resources.firewall.FirewallActor` says why), and
otherwise rests ``applied`` with the wave that applies it as its waiting reason.
"""

from __future__ import annotations

import abc
import functools
import operator
from typing import Any

from statemachine import State, StateChart
from statemachine.transition_list import TransitionList

from legion_nb.engine.resources.actor import ResourceActor
from legion_nb.engine.resources.snapshot import Health

__all__ = ["ConvergingActor", "ConvergingChart"]


def _converge_from(sources: tuple[State, ...], *, to: tuple[State, ...]) -> TransitionList:
    """From each of ``sources``: tear down, note absence, create, wait, apply or rest; the first
    whose guard holds. ``to`` is (deleting, deleted, creating, waiting, applying, applied)."""
    guards: tuple[str | list[str] | None, ...] = (
        ["unwanted", "is_tracked"],
        "unwanted",
        "needs_create",
        "must_wait",
        "must_apply",
        None,
    )
    lists = [
        source.to(target, cond=guard) if guard is not None else source.to(target)
        for source in sources
        for target, guard in zip(to, guards, strict=True)
    ]
    combined: TransitionList = functools.reduce(operator.or_, lists)
    return combined


class ConvergingChart(StateChart[Any]):
    class alive(State.Compound):  # state ids are the chart's vocabulary
        idle = State(initial=True)
        creating = State()
        waiting = State()
        applying = State()
        applied = State()
        deleting = State()
        deleted = State()
        failed = State()

        _targets = (deleting, deleted, creating, waiting, applying, applied)
        restore = idle.to(applied, cond="is_tracked")
        sync = _converge_from((idle, applied, failed, deleted, waiting), to=_targets)
        recheck = (
            waiting.to(applying, cond=["must_apply", "may_follow"], unless="must_wait")
            | waiting.to(applied, unless="must_wait")
            | applied.to(waiting, cond=["must_apply", "may_follow", "must_wait"])
            | applied.to(applying, cond=["must_apply", "may_follow"])
        )
        repair = _converge_from((failed,), to=_targets)
        done_invoke_creating = _converge_from((creating,), to=_targets)
        done_invoke_applying = _converge_from((applying,), to=_targets)
        done_invoke_deleting = deleting.to(deleted)
        # Any callback failing (an invoke's provider error, or a guard's bug) lands in ``failed``.
        error_execution = (
            creating.to(failed)
            | applying.to(failed)
            | deleting.to(failed)
            | idle.to(failed)
            | waiting.to(failed)
            | applied.to(failed)
            | deleted.to(failed)
        )

    stopped = State(final=True)
    stop = alive.to(stopped)


class ConvergingActor(ResourceActor):
    """Guards and snapshot vocabulary for :class:`ConvergingChart`; subclasses supply the facts
    (``is_tracked``, ``wanted``, ``must_wait``, ``must_apply``) and the three invoke handlers."""

    chart_class = ConvergingChart

    # guards the chart names
    @abc.abstractmethod
    def is_tracked(self) -> bool:
        """The provider resource is recorded in the state."""

    @abc.abstractmethod
    def wanted(self) -> bool:
        """The state still calls for the resource."""

    @abc.abstractmethod
    def must_wait(self) -> bool:
        """Prerequisites (server endpoints) are still being produced."""

    @abc.abstractmethod
    def must_apply(self) -> bool:
        """The desired set differs from what was last applied."""

    def may_follow(self) -> bool:
        """A ``recheck`` may apply a desired set that moved since the last apply (module notes)."""
        return True

    def unwanted(self) -> bool:
        return not self.wanted()

    def needs_create(self) -> bool:
        return self.wanted() and not self.is_tracked()

    def on_exit_failed(self) -> None:
        self.clear_error()

    def resting_configuration(self) -> tuple[str, ...] | None:
        """``restore``: applied when tracked, else idle; None when planned and not tracked (its
        create is due at the next wave, so the chart is built now)."""
        if self.is_tracked():
            return ("alive", "applied")
        return None if self.wanted() else ("alive", "idle")

    def waits_for_prerequisites(self) -> bool:
        return "waiting" in self.active

    def follows_endpoints(self) -> bool:
        return "applied" in self.active

    # snapshot vocabulary
    def _resting(self) -> str:
        active = self.active
        for name in ("creating", "waiting", "applying", "applied", "deleting", "deleted", "failed"):
            if name in active:
                return name
        return "idle"

    def lifecycle(self) -> str:
        state = self._resting()
        return {"failed": "error", "idle": "planned" if self.wanted() else "absent"}.get(state, state)

    def settled(self) -> bool:
        return self._resting() in ("idle", "applied", "deleted", "failed")

    def health(self) -> Health:
        if self._resting() == "applied":
            return "healthy"
        return super().health()

    def operation(self) -> str | None:
        return {"creating": "create", "applying": "apply", "deleting": "delete"}.get(self._resting())
