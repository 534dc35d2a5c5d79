"""The deployment runtime: :class:`OperationRunner` drives a node operation through its declared
phases, durably, and :class:`DeploymentService` owns it for the unlocked session.

Turning a cloud server into a Tribes node takes minutes and a dozen steps over SSH, HTTPS and the
provider API; the engine process may die in the middle of any of them. So every phase is bracketed
by two durable state writes (through the persistence supervisor, into the node's ``NodeExecution``):

* at its start: ``phase=P, phase_done=False, status=running``;
* at its end: ``phase=P, phase_done=True`` (and after the last phase ``status=succeeded``).

:meth:`OperationRunner.initialize`, called once when the engine unlocks, turns every execution
still marked ``running`` whose process is gone into ``interrupted, retryable``
(:func:`~legion_nb.engine.state.edits.mark_interrupted`): a process holds the node's lock
(:mod:`~legion_nb.engine.deployment.liveness`) while it runs an operation, so an execution another
live ``legion`` process runs stays ``running`` (shown as run elsewhere; this process refuses to run
or resume another operation on that node with :class:`DeploymentBusyError`), while one a killed
process left is marked. And nothing more: the execution rests
there until the operator asks (a materialize wave, ``legion server resume``, a reinstall; see
:mod:`legion_nb.engine.resources.node`), so opening a session, even for a read-only command, never
starts work on a node. :meth:`resume` continues an interrupted or failed execution from its
recorded phase (:func:`phases.resume_phase`): the phase that was running is run again, which is
safe because every phase checks reality before acting.

A phase that fails records ``status=failed`` with the one-line error; it is retryable unless the
error is the operator's (a :class:`~legion_nb.errors.UsageError`). Cancellation (engine shutdown)
records ``interrupted, retryable`` and is re-raised.

Tests may pass a ``delay`` hook. It never replaces persistence: it is awaited at named points
(``start`` of every phase, plus points a phase handler announces through ``ctx.checkpoint``) so a
crash test can SIGKILL the process while it sits *inside* a given phase.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from legion_nb.engine.deployment.liveness import NodeLocks
from legion_nb.engine.deployment.node_channel import NodeAccess, NodeConnector
from legion_nb.engine.deployment.node_reach import reopen_host_key_window
from legion_nb.engine.deployment.phase_work import NodePhaseWork
from legion_nb.engine.deployment.phases import (
    PLANS,
    NodeOperation,
    Phase,
    PhaseContext,
    PhaseHandler,
    PhaseWork,
    check_role,
    execution_of,
    first_phase,
    material_of,
    next_phase,
    operation_of,
    resume_phase,
    role_of,
)
from legion_nb.engine.resources.ports import ProviderAccess, StatePort
from legion_nb.engine.state.edits import mark_interrupted, with_execution
from legion_nb.engine.state.model import LegionState, NodeExecution, TrackedSshKey, utcnow
from legion_nb.errors import OperationError, UsageError

__all__ = [
    "DelayHook",
    "DeploymentBusyError",
    "DeploymentService",
    "DeploymentSettings",
    "NothingToResumeError",
    "OperationRunner",
    "PhaseContext",
    "PhaseHandler",
    "PhaseMetrics",
    "PhaseWork",
]

DelayHook = Callable[[str, Phase, str], Awaitable[None]]
"""``(node, phase, point)``: awaited at ``start`` of each phase and at a phase handler's checkpoints."""


class DeploymentBusyError(OperationError):
    code = "deployment_busy"


class NothingToResumeError(UsageError):
    code = "nothing_to_resume"


@dataclass(slots=True)
class PhaseMetrics:
    """Per-phase run counts and wall time in this process (for snapshots and benchmarks)."""

    runs: dict[Phase, int] = field(default_factory=dict)
    seconds: dict[Phase, float] = field(default_factory=dict)
    failures: dict[Phase, int] = field(default_factory=dict)

    def add(self, phase: Phase, seconds: float, *, failed: bool) -> None:
        self.runs[phase] = self.runs.get(phase, 0) + 1
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        if failed:
            self.failures[phase] = self.failures.get(phase, 0) + 1


class OperationRunner:
    """Runs and resumes node operations; at most one per node at a time in this process."""

    def __init__(
        self,
        state: StatePort,
        work: PhaseWork,
        *,
        delay: DelayHook | None = None,
        locks: NodeLocks | None = None,
    ) -> None:
        self._state = state
        self._work = work
        self._delay = delay
        self._locks = locks
        """The state's node-operation locks (None: a state no other process opens, as in tests)."""
        self._active: dict[str, NodeOperation] = {}
        self.elsewhere: tuple[str, ...] = ()
        """Nodes found ``running`` at :meth:`initialize` whose operation a live process holds."""
        self.metrics = PhaseMetrics()
        self._stopping: set[asyncio.Future[None]] = set()

    async def settle(self) -> None:
        """Wait for the ``interrupted`` records of cancelled operations still being written.

        A cancelled phase writes its record under :func:`asyncio.shield`, so a second cancellation
        (a session closing its actors) leaves that write running on its own; the session awaits it
        here before the state closes, so the record lands instead of reading ``running``. A write
        that fails is left to the next unlock, which marks the execution interrupted anyway.
        """
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    # -- reading -------------------------------------------------------------------------------

    def execution(self, node: str) -> NodeExecution | None:
        """The node's durable execution record (``None`` when it never ran an operation)."""
        return execution_of(self._state.state, node)

    def active(self) -> Mapping[str, NodeOperation]:
        """Operations running in this process, by node."""
        return dict(self._active)

    # -- lifecycle -------------------------------------------------------------------------------

    async def initialize(self) -> tuple[str, ...]:
        """Mark executions a gone process left ``running`` as interrupted; their node names. Those a
        live process runs (it holds the node's lock) stay ``running`` and are kept in :attr:`elsewhere`."""
        reason = "deployment: mark interrupted executions"
        running = _running_nodes(self._state.state)
        if self._locks is None or not running:
            return await self._state.mutate(mark_interrupted, reason=reason)
        # Each lock is held through the write, so no process starts an operation on the node between
        # the probe and the mark; another process's save in between is rebased on, never overwritten.
        claims = {node: self._locks.hold(node) for node in running}
        gone = frozenset(node for node, claim in claims.items() if claim is not None)
        self.elsewhere = tuple(sorted(set(running) - gone))
        try:
            return await self._state.mutate(lambda s: mark_interrupted(s, nodes=gone), reason=reason)
        finally:
            for claim in claims.values():
                if claim is not None:
                    claim.release()

    # -- operations ------------------------------------------------------------------------------

    async def run(self, node: str, operation: str | NodeOperation) -> NodeExecution:
        """Run ``operation`` on ``node`` from its first phase; returns the succeeded execution.

        Raises :class:`DeploymentBusyError` while another operation runs on the node, and whatever
        the failing phase raised (after recording it).
        """
        op = operation if isinstance(operation, NodeOperation) else operation_of(operation)
        return await self._drive(node, op, first_phase(op), started=None)

    async def resume(self, node: str) -> NodeExecution:
        """Continue the node's interrupted or failed execution from its recorded phase."""
        execution = self.execution(node)
        if execution is None:
            raise NothingToResumeError(
                f"node {node} has no deployment execution to resume: its install has not started; "
                "`legion materialize` installs it"
            )
        if execution.status == "succeeded":
            return execution
        if node in self._active:
            raise DeploymentBusyError(f"node {node} is already running {self._active[node]}; wait for it")
        if execution.status == "running" and self._locks is not None and self._locks.held_elsewhere(node):
            raise DeploymentBusyError(_elsewhere(node, execution))
        if execution.status == "running":
            raise DeploymentBusyError(
                f"node {node}'s {execution.operation} is recorded as running in {execution.phase}; "
                "if no other Legion process runs it, restart the engine to mark it interrupted"
            )
        if not execution.retryable:
            raise NothingToResumeError(
                f"node {node}'s {execution.operation} failed in {execution.phase} and cannot be retried "
                f"({execution.error or 'no reason recorded'}); start the operation again"
            )
        op = operation_of(execution.operation)
        phase = resume_phase(execution)
        return await self._drive(node, op, phase, started=execution)

    # -- the machine -----------------------------------------------------------------------------

    async def _drive(
        self, node: str, op: NodeOperation, start: Phase | None, *, started: NodeExecution | None
    ) -> NodeExecution:
        if node in self._active:
            raise DeploymentBusyError(f"node {node} is already running {self._active[node]}; wait for it")
        check_role(node, role_of(self._state.state, node), op)
        claim = None if self._locks is None else self._locks.hold(node)
        if self._locks is not None and claim is None:
            raise DeploymentBusyError(_elsewhere(node, self.execution(node)))
        self._active[node] = op
        try:
            await self._work.prepare(node, op)
            began = started.started if started is not None else utcnow()
            phase = start
            last = started.phase if started is not None else first_phase(op).value
            while phase is not None:
                await self._record(node, op, phase, began, done=False)
                await self._run_phase(node, op, phase, began)
                await self._record(node, op, phase, began, done=True)
                last, phase = phase.value, next_phase(op, phase)
            return await self._finish(node, op, last, began)
        finally:
            self._active.pop(node, None)
            if claim is not None:
                claim.release()

    async def _run_phase(self, node: str, op: NodeOperation, phase: Phase, began: dt.datetime) -> None:
        async def checkpoint(point: str) -> None:
            if self._delay is not None:
                await self._delay(node, phase, point)

        ctx = PhaseContext(node=node, operation=op, phase=phase, checkpoint=checkpoint)
        handler = self._work.handler(phase)
        clock = time.perf_counter()
        try:
            await checkpoint("start")
            await handler(ctx)
        except asyncio.CancelledError:
            self.metrics.add(phase, time.perf_counter() - clock, failed=True)
            stopping = asyncio.ensure_future(
                self._stopped(node, op, phase, interrupted=True, retryable=True, error="cancelled")
            )
            self._stopping.add(stopping)
            stopping.add_done_callback(self._stopping.discard)
            await asyncio.shield(stopping)
            raise
        except Exception as exc:
            self.metrics.add(phase, time.perf_counter() - clock, failed=True)
            retryable = not isinstance(exc, UsageError)
            message = str(exc) or type(exc).__name__
            await self._stopped(node, op, phase, interrupted=False, retryable=retryable, error=message)
            raise
        self.metrics.add(phase, time.perf_counter() - clock, failed=False)

    async def _record(
        self, node: str, op: NodeOperation, phase: Phase, began: dt.datetime, *, done: bool
    ) -> None:
        assert phase in PLANS[op]
        now = utcnow()
        record = NodeExecution(
            operation=op.value,
            phase=phase.value,
            status="running",
            started=began,
            updated=now,
            phase_done=done,
        )
        word = "ended" if done else "started"
        await self._state.mutate(
            lambda s: (with_execution(s, node, record), None), reason=f"node {node}: {op} {phase} {word}"
        )

    async def _stopped(
        self, node: str, op: NodeOperation, phase: Phase, *, interrupted: bool, retryable: bool, error: str
    ) -> None:
        def stop(state: LegionState) -> tuple[LegionState, None]:
            current = execution_of(state, node)
            now = utcnow()
            record = NodeExecution(
                operation=op.value,
                phase=phase.value,
                status="interrupted" if interrupted else "failed",
                started=current.started if current is not None else now,
                updated=now,
                retryable=retryable,
                error=" ".join(error.split()),
            )
            return with_execution(state, node, record), None

        word = "interrupted" if interrupted else "failed"
        await self._state.mutate(stop, reason=f"node {node}: {op} {word} in {phase}")

    async def _finish(self, node: str, op: NodeOperation, last: str, began: dt.datetime) -> NodeExecution:
        now = utcnow()
        record = NodeExecution(
            operation=op.value,
            phase=last,
            status="succeeded",
            started=began,
            updated=now,
            phase_done=True,
        )
        await self._state.mutate(
            lambda s: (with_execution(s, node, record), None), reason=f"node {node}: {op} succeeded"
        )
        return record


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    """How the session's deployment reaches nodes: ``access`` (ports and waits; the sandbox's nodes
    share non-standard ports), the SSH ``connector``, and a test-only ``delay`` hook."""

    access: NodeAccess = field(default_factory=NodeAccess)
    connector: NodeConnector | None = None
    delay: DelayHook | None = None


class DeploymentService:
    """The session service owning the node deployment runtime while the state is unlocked.

    Built over the session's state port and provider access; entering it runs
    :meth:`OperationRunner.initialize`, so every execution a gone process left running reads
    ``interrupted, retryable`` from the first snapshot on (one a live process runs stays running).
    A session builds one when its settings carry :class:`DeploymentSettings`, with the state's
    node-operation locks (``locks``) when the state is a file other processes may open.
    """

    def __init__(
        self,
        state: StatePort,
        providers: ProviderAccess,
        settings: DeploymentSettings | None = None,
        *,
        locks: NodeLocks | None = None,
    ) -> None:
        self.settings = settings or DeploymentSettings()
        access, connector = self.settings.access, self.settings.connector
        self._work = NodePhaseWork(state, providers, access=access, connector=connector)
        self._state = state
        self.runtime = OperationRunner(state, self._work, delay=self.settings.delay, locks=locks)
        self.interrupted: tuple[str, ...] = ()
        """The nodes found running at unlock and marked interrupted (their process is gone)."""

    @property
    def access(self) -> NodeAccess:
        """The ports and waits node sessions use (the sandbox's nodes share non-standard ports)."""
        return self.settings.access

    async def __aenter__(self) -> DeploymentService:
        self.interrupted = await self.runtime.initialize()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Node operations run inside the actors, which stop first; what their cancelled phases
        are still recording lands before the state closes (:meth:`OperationRunner.settle`)."""
        await self.runtime.settle()

    # -- the node actors' port (``NodeDeployer``) ---------------------------------------------------

    def enabled(self) -> bool:
        return True

    def busy(self, node: str) -> bool:
        return node in self.runtime.active()

    def execution(self, node: str) -> NodeExecution | None:
        return self.runtime.execution(node)

    async def provider_ssh_key(self, node: str, provider: str) -> TrackedSshKey:
        """The node's admin key registered at ``provider`` (its identity is generated first)."""
        await self._work.prepare(node, NodeOperation.ADD)
        return await self._work.provider_ssh_key(node, provider)

    async def deploy(self, node: str) -> NodeExecution:
        """Install a tracked node when a wave asked its actor to: ``add`` (a satellite:
        ``satellite_add``) when it never ran an operation (its provision phase finds the tracked
        server), else resume the unfinished one, else start that operation over."""
        runtime = self.runtime
        execution = runtime.execution(node)
        if execution is None:
            return await runtime.run(node, _first_operation(self._state.state, node))
        if execution.status == "succeeded":
            return execution
        if execution.status in ("interrupted", "failed") and execution.retryable:
            return await runtime.resume(node)
        return await runtime.run(node, execution.operation)

    async def repair(self, node: str, operation: str) -> NodeExecution:
        return await self.runtime.run(node, operation)

    async def node_health(self, node: str) -> dict[str, Any]:
        """What ``node``'s admin API reports of itself (``/v1/health``: services, membership, Tang
        peers), for the repair selection. Raises the admin client's :class:`NodeError` subtypes."""
        async with self._work.reach.admin_client(node) as client:
            return await client.health()

    async def repin(self, node: str) -> None:
        """The operator's explicit re-pin: the next install sessions of ``node`` may trust the host
        key its server presents, until it answers with Legion's own key again (see
        :mod:`~legion_nb.engine.deployment.node_reach`). Refused while an operation runs on it."""
        if node in self.runtime.active():
            raise DeploymentBusyError(f"node {node} is running an operation; re-pin it once that ends")
        if material_of(self._state.state, node) is None:
            raise UsageError(f"node {node} has no deployment material: there is no pinned key to replace")
        await reopen_host_key_window(self._state, node, reason=f"operator re-pinned node {node}")


def _running_nodes(state: LegionState) -> tuple[str, ...]:
    """The nodes whose execution record (tracked or pre-tracking) says ``running``."""
    tracked = (n for n, s in state.tracked.servers.items() if s.execution and s.execution.status == "running")
    early = (n for n, m in state.deployment.nodes.items() if m.execution and m.execution.status == "running")
    return tuple(sorted({*tracked, *early}))


def _elsewhere(node: str, execution: NodeExecution | None) -> str:
    """The one line refusing work on a node whose operation another live process runs."""
    what = "an operation" if execution is None else f"{execution.operation} (in {execution.phase})"
    return f"node {node} is running {what} in another Legion process; wait for it to finish"


def _first_operation(state: LegionState, node: str) -> NodeOperation:
    """A satellite's first operation is its short path; a cluster node's the full install."""
    return NodeOperation.SATELLITE_ADD if role_of(state, node) == "satellite" else NodeOperation.ADD
