"""The server node actor: one per planned or tracked server, cluster node or satellite.

The chart has two parallel regions, as the seed's node actor does:

* ``machine``: the provider lifecycle. ``absent`` -> ``creating`` -> ``provisioning`` -> ``running``;
  ``running`` -> ``verifying`` (a wave re-reads the provider) -> ``running``; planned absence ->
  ``deleting`` -> ``deleted``; ``settling`` looks up a create that a crash or a lost answer left
  unresolved; any failure -> ``failed`` (the next wave starts over from what the state holds).
* ``system``: what the node is as a system: ``unknown``, ``down`` or ``reachable`` from the
  provider's status and, while deployment is wired (``ActorContext.deployment``), ``deploying``
  (the deployment runtime sets the node up: a cluster node's ``add`` phases, a satellite's short
  ``satellite_add`` path, or a resume of what an earlier run left unfinished), ``deployed`` (its
  last operation succeeded), ``deploy_failed`` (its last operation failed) or
  ``deploy_interrupted`` (a process stopped while the operation ran: the runtime marked it
  ``interrupted, retryable`` at unlock). The runtime's provisioning phase waits for the server this
  actor tracks and runs, and never creates one; the server is created with the node's provider SSH
  key so the install phases can reach it. The live phase, or the phase an operation stopped in,
  shows as the snapshot's ``substage``. Without a deployment runtime, a satellite is reachable
  when running.

**An install runs only when the operator asks for it.** Opening a session (a notebook's unlock,
any ``legion`` command, ``legion status`` and ``legion snapshot`` included) starts no node
operation: an execution found ``interrupted`` or ``failed`` rests there, with its phase as the
substage and the command that continues it as the waiting reason, and a tracked node whose
install never started (a materialize that created it died before the install began; a refresh
adopted it; deployment was wired later) rests ``reachable`` with a waiting reason naming
``legion materialize``. The requests are:

* a materialize wave (:meth:`ServerNodeActor.wave_started`): the wave installs the nodes it
  creates and nodes still waiting for their first install, resumes interrupted and failed
  operations of the nodes in it from their recorded phase, and starts a non-retryable failure
  over. The request lasts until the node's system region has answered it once: an install began,
  or the wave found the node installed, busy with another operation or not running;
* ``legion server resume NODE`` (``EngineOps.node_resume``) and ``legion server reinstall NODE``,
  which run the runtime themselves; the actor follows their outcome without asking for more.

**The cloud is touched only when a wave asks, too.** Restoring at unlock reads: a create left
pending is settled by lookup (and tracked when found), a server still provisioning is waited for,
and each shows as the provider reports it. A server found ``off`` (Scaleway creates servers
stopped; a crash can fall between the create and its power-on, or the operator powered it off)
rests ``running``/``down`` with ``legion materialize`` as its waiting reason (a refresh that sees
a tracked running server off counts too: :func:`seen_status`; one that sees a server tracked off
running again brings the node back as the provider reports it, ``deployed`` when it was, and
starts nothing), and a planned server
whose pending create never landed rests ``absent``. Creating, powering on and deleting happen only
in a wave's request (``_machine_asked``: set by :meth:`ServerNodeActor.wave_started`, kept through
a repair of that wave's temporary failure, dropped once the machine region rests), the explicit
node commands (reboot, reinstall, resume) aside.

Creation is safe against lost answers: the create intent (with the server's Legion id) is written to
the state before the provider call, the tracked server is written the moment the provider returns
its id (in the same write that drops the intent), and an ambiguous outcome keeps the intent so the
next wave settles it by lookup and never creates a second server. The tracking write also moves a
node operation's pre-tracking execution record onto the tracked server
(:func:`~legion_nb.engine.state.edits.track_server`).

This module is the one place a server is made to exist and run: the create spec
(:func:`server_choice`, :meth:`ServerNodeActor._spec`), the tracked record (:func:`tracked_server_from`),
what the provider reports (:func:`record_observed`), with :meth:`Resilience.until_running
<legion_nb.providers.resilience.Resilience.until_running>` for the start. The deployment runtime reads
and writes servers only through these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from statemachine import State, StateChart
from statemachine.transition_list import TransitionList

from legion_nb.engine.node_health import NodeHealth
from legion_nb.engine.resources.actor import (
    ActorContext,
    NodeDeployer,
    ResourceActor,
    describe_error,
)
from legion_nb.engine.resources.pending import pending_for
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.resources.snapshot import Health, ResourceKey
from legion_nb.engine.state.edits import (
    track_server,
    with_observed_read,
    with_tracked_server,
    without_pending,
    without_tracked_server,
)
from legion_nb.engine.state.model import (
    DEFAULT_CLUSTER,
    LegionState,
    PlannedServer,
    Provider,
    Role,
    TrackedServer,
    TrackedSshKey,
    utcnow,
)
from legion_nb.errors import LegionError, ProviderNotFoundError, UsageError
from legion_nb.providers.catalog import ServerChoice, resolve_server_choice
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import Catalog, Operation, Server, ServerSpec

__all__ = [
    "ServerNodeActor",
    "ServerNodeChart",
    "observed_server",
    "record_observed",
    "seen_status",
    "server_choice",
    "tracked_server_from",
]

_PROFILE = {"cluster": "cluster-node", "satellite": "satellite"}
_OPERATIONS = {
    "settling": "settle create",
    "creating": "create",
    "provisioning": "provision",
    "verifying": "verify",
    "deleting": "delete",
}
_WORKING = frozenset(_OPERATIONS)
_POWERED_OFF = frozenset({"off", "stopped"})
_POWER_STATES = _POWERED_OFF | {"running"}


def _retry_from(failed: State, *, to: tuple[State, State, State, State]) -> TransitionList:
    """Start over after a failure from what the state holds: settle a pending create, tear down a
    server no longer planned, verify a tracked one, or create a planned one."""
    settling, deleting, verifying, creating = to
    retry: TransitionList = (
        failed.to(settling, cond="has_pending")
        | failed.to(deleting, cond=["is_tracked", "unwanted"])
        | failed.to(verifying, cond="is_tracked")
        | failed.to(creating, cond="wanted")
    )
    return retry


def _observe_among(**states: State) -> TransitionList:
    """Every system state moves to whichever other one the actor's target names (guard
    ``sys_<id>``; ids are passed by name, states get theirs only after the class body). An install
    in progress (``deploying``) is left only when the provider takes the server away (down or
    unknown), which cancels its invoke; otherwise it ends by its own ``done.invoke``."""
    moves: TransitionList | None = None
    for source_id, source in states.items():
        for target_id, target in states.items():
            if target_id == source_id or (source_id == "deploying" and target_id not in ("down", "unknown")):
                continue
            move = source.to(target, cond=f"sys_{target_id}")
            moves = move if moves is None else moves | move
    assert moves is not None
    return moves


class ServerNodeChart(StateChart[Any]):
    """Structure only; guards and invoke handlers live on :class:`ServerNodeActor`."""

    class alive(State.Parallel):  # state ids are the chart's vocabulary
        class machine(State.Compound):
            absent = State(initial=True)
            settling = State()
            creating = State()
            provisioning = State()
            verifying = State()
            running = State()
            deleting = State()
            deleted = State()
            failed = State()

            restore = (
                absent.to(settling, cond="has_pending")
                | absent.to(provisioning, cond="tracked_not_running")
                | absent.to(running, cond="is_tracked")
            )
            sync = (
                absent.to(settling, cond="has_pending")
                | absent.to(creating, cond="wanted")
                | deleted.to(creating, cond="wanted")
                | running.to(deleting, cond="unwanted")
                | running.to(verifying)
                | _retry_from(failed, to=(settling, deleting, verifying, creating))
                | failed.to(absent)
            )
            repair = _retry_from(failed, to=(settling, deleting, verifying, creating))
            done_invoke_settling = (
                settling.to(provisioning, cond="is_tracked")
                | settling.to(creating, cond=["wanted", "asked"])
                | settling.to(absent)
            )
            done_invoke_creating = creating.to(provisioning)
            done_invoke_provisioning = provisioning.to(running)
            done_invoke_verifying = (
                verifying.to(deleting, cond=["is_tracked", "unwanted"])
                | verifying.to(running, cond="provider_running")
                | verifying.to(provisioning, cond="is_tracked")
                | verifying.to(creating, cond="wanted")
                | verifying.to(absent)
            )
            done_invoke_deleting = deleting.to(deleted)
            # Any callback failing (an invoke's provider error, or a guard's bug) lands in ``failed``.
            error_execution = (
                settling.to(failed)
                | creating.to(failed)
                | provisioning.to(failed)
                | verifying.to(failed)
                | deleting.to(failed)
                | absent.to(failed)
                | running.to(failed)
                | deleted.to(failed)
            )

        class system(State.Compound):
            unknown = State(initial=True)
            down = State()
            reachable = State()
            deploying = State()
            deployed = State()
            deploy_failed = State()
            deploy_interrupted = State()

            observe = _observe_among(
                unknown=unknown,
                down=down,
                reachable=reachable,
                deploying=deploying,
                deployed=deployed,
                deploy_failed=deploy_failed,
                deploy_interrupted=deploy_interrupted,
            )
            done_invoke_deploying = deploying.to(deployed, cond="deploy_ok") | deploying.to(deploy_failed)

    stopped = State(final=True)
    stop = alive.to(stopped)


def tracked_server_from(
    server: Server, provider: Provider, *, cluster: str, role: Role, name: str | None = None
) -> TrackedServer:
    """The tracked record for a server the provider reports (after a create, a settle or an
    adoption): every fact Legion keeps about it, under ``name`` (default: the provider's name)."""
    return TrackedServer(
        name=name or server.name,
        provider=provider,
        provider_id=server.id,
        created=server.created or utcnow(),
        cluster=cluster,
        role=role,
        server_type=server.server_type or "",
        location=server.location or "",
        image=server.image or "",
        ipv4=server.ipv4,
        ipv6=server.ipv6,
        status=server.status,
        labels=dict(server.labels),
    )


def server_choice(
    catalog: Catalog,
    role: Role,
    *,
    server_type: str | None = None,
    location: str | None = None,
    image: str | None = None,
) -> ServerChoice:
    """The catalog's choice for a server of ``role``: what the operator gave, validated, and the
    role's profile (cluster node or satellite) for what they left out."""
    return resolve_server_choice(
        catalog, _PROFILE[role], server_type=server_type, location=location, image=image
    )


def observed_server(record: TrackedServer, server: Server) -> TrackedServer:
    """``record`` with what the provider reports now (addresses, status, and the type, location and
    image when the provider names them)."""
    return dataclasses.replace(
        record,
        ipv4=server.ipv4,
        ipv6=server.ipv6,
        status=server.status,
        server_type=server.server_type or record.server_type,
        location=server.location or record.location,
        image=server.image or record.image,
    )


async def record_observed(state: StatePort, name: str, server: Server) -> None:
    """Write what the provider reports about the tracked server ``name``: the tracked record, and
    the server's observation when the read changes its status or addresses (dated by this read;
    :func:`~legion_nb.engine.state.edits.with_observed_read`), so the diff does not show the
    addresses the actor has just read as drift until the next refresh. No write when the state
    holds it already (or the server is no longer tracked)."""

    read = utcnow()

    def observe(current: LegionState, record: TrackedServer) -> LegionState:
        return with_observed_read(
            current, record, status=server.status, ipv4=server.ipv4, ipv6=server.ipv6, at=read
        )

    def update(current: LegionState) -> tuple[LegionState, None]:
        record = current.tracked.servers.get(name)
        if record is None:
            return current, None
        return with_tracked_server(observe(current, record), observed_server(record, server)), None

    current = state.state
    record = current.tracked.servers.get(name)
    if record is None or (observed_server(record, server) == record and observe(current, record) is current):
        return
    await state.mutate(update, reason=f"server {name} is {server.status}")


def seen_status(state: LegionState, record: TrackedServer) -> str:
    """The status the server ``record`` was last seen in: the tracked one, unless a refresh found it
    powered off or on since (out of band: a provider console, hcloud, the provider's SDK). The
    observation is the newer fact whenever the two differ, because the actor's own provider reads
    update both (:func:`record_observed`). Only power states are taken from it: a server tracked
    ``provisioning`` is read by its own actor at restore. Showing the server as seen moves no
    power: only a wave powers a server on, and nothing in Legion powers one off; the tracked
    status follows at the wave's own read, and until then the row's ``status`` field shows the
    two apart (drift)."""
    observed = state.observed.get(record.provider)
    seen = None if observed is None else observed.servers.get(record.provider_id)
    if seen is not None and seen.status != record.status and {seen.status, record.status} <= _POWER_STATES:
        return seen.status
    return record.status


def status_seen_at(state: LegionState, record: TrackedServer) -> dt.datetime | None:
    """When the provider last reported the server ``record`` (a refresh, or its actor's read that
    changed what the refresh recorded); None before any refresh saw it."""
    observed = state.observed.get(record.provider)
    seen = None if observed is None else observed.servers.get(record.provider_id)
    return None if seen is None else seen.seen


def _system_for(status: str | None) -> str:
    if status == "running":
        return "reachable"
    if status in _POWERED_OFF:
        return "down"
    return "unknown"


class ServerNodeActor(ResourceActor):
    """Owns one server's provider lifecycle; ``key.identity`` is the server name."""

    chart_class = ServerNodeChart

    def __init__(self, key: ResourceKey, provider: str, context: ActorContext) -> None:
        super().__init__(key, provider, context)
        self.provider_status: str | None = None
        self._deploy_error: str | None = None
        self._install_asked = False
        """A wave asked for the node's install (module notes); answered once, then forgotten."""
        self._machine_asked = False
        """A wave asked the machine region for provider work (module notes); kept until the region
        rests (running, absent, deleted), so a repair of the wave's temporary failure continues it."""
        self._operations: tuple[Operation, ...] = ()
        self.observed: NodeHealth | None = None
        """The observation scheduler's last verdict on the running node (its admin API polls)."""

    def note_health(self, verdict: NodeHealth | None) -> None:
        """Take the observation's verdict (None: forget it); the snapshot shows it while deployed."""
        self.observed = verdict
        self.touch()

    # -- reading the state ------------------------------------------------------------------

    def planned(self) -> tuple[str, PlannedServer] | None:
        return self._state.scheme.find_server(self.name)

    def tracked(self) -> TrackedServer | None:
        return self._state.tracked.servers.get(self.name)

    # -- guards ------------------------------------------------------------------------------

    def wanted(self) -> bool:
        return self.planned() is not None

    def unwanted(self) -> bool:
        return self.planned() is None

    def is_tracked(self) -> bool:
        return self.tracked() is not None

    def tracked_not_running(self) -> bool:
        record = self.tracked()
        return record is not None and record.status == "provisioning"

    def has_pending(self) -> bool:
        return pending_for(self._state, "server", self.provider, self.name) is not None

    def provider_running(self) -> bool:
        return self.provider_status == "running"

    def asked(self) -> bool:
        """A wave (or a repair retrying its temporary failure) asked for provider work (module notes)."""
        return self._machine_asked

    def sys_reachable(self) -> bool:
        return self._system_target() == "reachable"

    def sys_down(self) -> bool:
        return self._system_target() == "down"

    def sys_unknown(self) -> bool:
        return self._system_target() == "unknown"

    def sys_deploying(self) -> bool:
        return self._system_target() == "deploying"

    def sys_deployed(self) -> bool:
        return self._system_target() == "deployed"

    def sys_deploy_failed(self) -> bool:
        return self._system_target() == "deploy_failed"

    def sys_deploy_interrupted(self) -> bool:
        return self._system_target() == "deploy_interrupted"

    def deploy_ok(self) -> bool:
        return self._deploy_error is None

    # -- deployment (cluster nodes and satellites, when the engine wires a runtime) -------------

    def _deployer(self) -> NodeDeployer | None:
        deployer = self.context.deployment
        if deployer is None or not deployer.enabled():
            return None
        return deployer if self._role() in ("cluster", "satellite") else None

    def _role(self) -> str | None:
        planned = self.planned()
        record = self.tracked()
        return planned[1].role if planned is not None else record.role if record is not None else None

    def _system_target(self) -> str:
        """Where the system region belongs now (module notes); ``deploying`` only from ``running``
        and only when a wave asked for the install."""
        base = _system_for(self.provider_status)
        deployer = self._deployer()
        if base != "reachable" or deployer is None or self.tracked() is None:
            return base
        if "deploying" in self.active:
            return "deploying"
        execution = deployer.execution(self.name)
        if execution is not None and execution.status == "succeeded":
            return "deployed"
        if deployer.busy(self.name):
            return self.system() or "reachable"  # another operation (reinstall, repair) owns the node
        if self._install_asked:
            return "deploying" if "running" in self.active else "reachable"
        if self._deploy_error is not None or (execution is not None and execution.status == "failed"):
            return "deploy_failed"
        if execution is not None and execution.status == "interrupted":
            return "deploy_interrupted"
        return "reachable"  # never installed, or recorded as running by another process

    def wave_started(self, run_id: str | None) -> None:
        super().wave_started(run_id)
        self._deploy_error = None
        self._install_asked = True  # a wave is the operator asking: install, resume or retry
        self._machine_asked = True  # ... and create, start or delete the server

    async def follow_operation(self) -> None:
        """Move the system region to what the node's execution record says now, after an operation
        the runtime ran outside this chart (a node command, a repair). Asks for nothing."""
        if not self.stopped and self.system() is not None and self.system() != self._system_target():
            await self.send("observe")

    async def follow_observation(self) -> None:
        """Show the server as a refresh just observed it (powered off out of band, or running
        again) while the machine region rests; starts no provider or node work."""
        record = self.tracked()
        if record is None or self.stopped or "running" not in self.active or self._machine_asked:
            return
        self.provider_status = seen_status(self._state, record)
        self.touch()
        if self.system() != self._system_target():
            await self.send("observe")

    async def run_repair(self, operation: str) -> bool:
        """Run a repair operation on this deployed node (the supervisor's NBDE pass); True when it
        succeeded. Refused quietly (False) while the node is not deployed or another operation runs."""
        deployer = self._deployer()
        if deployer is None or self._role() != "cluster":
            return False  # a satellite has no cluster operations to repair
        if self.system() != "deployed" or deployer.busy(self.name):
            return False
        try:
            await deployer.repair(self.name, operation)
        except LegionError as exc:
            self.error, self.error_temporary = exc.message, False
            self.touch()
            await self.follow_operation()  # the failed repair rests as failed, like any operation
            return False
        self.clear_error()
        self.touch()
        return True

    async def on_invoke_deploying(self) -> None:
        """Run the node's install through the runtime; a failure is kept for the snapshot (the runtime
        recorded it durably) and the next wave resumes from the recorded phase."""
        deployer = self._deployer()
        self._install_asked = False  # answered: this install is the wave's request
        if deployer is None:
            return
        self._deploy_error = None
        self.clear_error()
        try:
            await deployer.deploy(self.name)
        except LegionError as exc:
            self._deploy_error = exc.message
        except Exception as exc:  # translated like any actor failure: one line, traceback logged
            self._deploy_error = describe_error(exc)[0]
        if self._deploy_error is not None:
            self.error, self.error_temporary = self._deploy_error, False

    # -- chart callbacks -----------------------------------------------------------------------

    async def restore(self) -> None:
        record = self.tracked()
        self.provider_status = None if record is None else seen_status(self._state, record)
        await self.send("restore")

    def resting_configuration(self) -> tuple[str, ...] | None:
        """``restore`` then ``observe`` without the chart: running in the system state its provider
        status calls for, or absent and unplanned; None where work would start or is due (a pending
        create to settle, a server still provisioning, an install to run, a create to send)."""
        if self.has_pending() or self.tracked_not_running():
            return None
        record = self.tracked()
        if record is None:  # planned: its create is due at the next wave, so the chart is built now
            return None if self.wanted() else ("alive", "machine", "absent", "system", "unknown")
        self.provider_status = seen_status(self._state, record)
        self._rest_values = ("alive", "machine", "system", "running", "unknown")
        target = self._system_target()
        self._rest_values = ()
        if target == "deploying":
            return None
        if target == "deploy_failed":
            self.on_enter_deploy_failed()
        return ("alive", "machine", "system", "running", target)

    async def after_transition(self, event: str, machine: StateChart[Any]) -> None:
        """Keep the system region in step with the provider status the machine region learned, and
        forget a wave's install request the running node answered without an install."""
        self.touch()
        if event in ("observe", "stop") or self.stopped:
            return
        target = self._system_target()
        if self._install_asked and "running" in self.active and target != "deploying":
            self._install_asked = False  # installed, busy with another operation, or not running
        if self.system() != target:
            await machine.raise_("observe")

    def on_exit_failed(self) -> None:
        self.clear_error()

    def on_enter_deploy_failed(self) -> None:
        """Show why the node's last operation failed: this session's error, else the durable record's
        (a failure a previous process left, or a node command's)."""
        if self._deploy_error is not None:
            self.error, self.error_temporary = self._deploy_error, False
            return
        deployer = self._deployer()
        execution = None if deployer is None else deployer.execution(self.name)
        if execution is not None and execution.status == "failed":
            reason = execution.error or "no reason recorded"
            self.error = f"{execution.operation} failed in {execution.phase}: {reason}"
            self.error_temporary = False

    def on_enter_deployed(self) -> None:
        """Deployed (by this actor, a node command or a resume): an earlier install failure is over."""
        self._deploy_error = None
        if "failed" not in self.active:  # a provider failure of the machine region stays shown
            self.clear_error()

    def on_enter_running(self) -> None:
        self._machine_asked = False  # answered: the server runs, or rests off until the next wave

    def on_enter_deleted(self) -> None:
        self.provider_status = None
        self._machine_asked = False

    def on_enter_absent(self) -> None:
        self.provider_status = None
        self._machine_asked = False

    # -- invoke handlers: the provider work ------------------------------------------------------

    async def on_invoke_settling(self) -> None:
        """A create intent was left behind: find what it made; never create here."""
        self.require_provider()
        settled = await self.settle_intent("server", self.name)
        if settled is not None and isinstance(settled[0], Server):
            await self._track(settled[0], settled[1])

    async def on_invoke_creating(self) -> None:
        self.require_provider()
        planned = self.planned()
        if planned is None:
            return
        cluster, server = planned
        self._check_not_moved(server)
        resilience = self.context.providers.resilience
        deployer = self._deployer()
        keys = (await deployer.provider_ssh_key(self.name, self.provider),) if deployer is not None else ()
        key_ids = tuple(key.provider_id for key in keys)
        pending, legion_id = await self.create_once(
            f"server {self.name}",
            lambda legion_id: resilience.create_server(self._spec(server, legion_id, key_ids), self.provider),
        )
        self._operations = pending.operations
        await self._track(pending.server, legion_id, cluster=cluster, planned=server, ssh_keys=keys)

    async def on_invoke_provisioning(self) -> None:
        self.require_provider()
        record = self.tracked()
        if record is None:
            raise ProviderNotFoundError(self.provider, f"server {self.name} is no longer tracked")
        operations, self._operations = self._operations, ()
        if not self._machine_asked:
            # Restored at unlock: wait for the provider to finish what it was doing and show the
            # server as it is; an ``off`` one stays off (Scaleway creates servers stopped) until a
            # wave starts it.
            broker = self.context.providers.broker
            server = await broker.wait_for_server(self.provider, record.provider_id, ("running", "off"))
        else:
            resilience = self.context.providers.resilience
            server = await resilience.until_running(self.provider, record.provider_id, self.name, operations)
        await self._observed(server)

    async def on_invoke_verifying(self) -> None:
        self.require_provider()
        record = self.tracked()
        planned = self.planned()
        if planned is not None:
            self._check_not_moved(planned[1])
        if record is None:
            return
        server_id = record.provider_id
        if self.has_intent("server", self.name):
            await self.settle_stale_intent("server", self.name, server_id)
        try:
            server = await self.context.providers.broker.read(
                self.provider, f"get server {self.name}", lambda a: a.get_server(server_id)
            )
        except ProviderNotFoundError:
            await self._untrack(f"server {self.name} is gone at {self.provider}")
            return
        await self._observed(server)

    async def on_invoke_deleting(self) -> None:
        self.require_provider()
        record = self.tracked()
        if record is not None:
            await self.context.providers.resilience.delete_server(self.provider, record.provider_id)
            await self._untrack(f"deleted server {self.name}")

    # -- state writes ------------------------------------------------------------------------------

    def _check_not_moved(self, server: PlannedServer) -> None:
        if server.provider != self.provider:
            raise UsageError(
                f"server {self.name} is planned at {server.provider} but Legion runs it at {self.provider}; "
                "moving servers between providers is not automatic: remove it from the plan, materialize, "
                "then plan it again"
            )

    def _spec(self, server: PlannedServer, legion_id: str, key_ids: tuple[str, ...] = ()) -> ServerSpec:
        choice = server_choice(
            self.context.providers.catalog(self.provider),
            server.role,
            server_type=server.server_type or None,
            location=server.location or None,
            image=server.image or None,
        )
        return ServerSpec(
            name=self.name,
            server_type=choice.server_type.name,
            location=choice.location.name,
            image=choice.image.id,
            ssh_key_ids=key_ids,
            labels=OwnershipLabels(legion_id).as_labels(),
        )

    async def _track(
        self,
        server: Server,
        legion_id: str,
        *,
        cluster: str | None = None,
        planned: PlannedServer | None = None,
        ssh_keys: tuple[TrackedSshKey, ...] = (),
    ) -> None:
        self.provider_status = server.status
        name = self.name
        provider: Provider = self._provider_name(server.provider)

        def track(state: LegionState) -> tuple[LegionState, None]:
            found = state.scheme.find_server(name)
            where = cluster or (found[0] if found else DEFAULT_CLUSTER)
            plan = planned or (found[1] if found else None)
            role = plan.role if plan else "cluster"
            record = tracked_server_from(server, provider, cluster=where, role=role, name=name)
            if ssh_keys:
                record = dataclasses.replace(record, ssh_keys=ssh_keys)
            return track_server(without_pending(state, legion_id), record), None

        await self.context.state.mutate(track, reason=f"track server {name} ({server.id})")

    async def _observed(self, server: Server) -> None:
        """Record what the provider says now when it differs from the state (:func:`record_observed`)."""
        self.provider_status = server.status
        await record_observed(self.context.state, self.name, server)

    async def _untrack(self, reason: str) -> None:
        name = self.name
        self.provider_status = None
        await self.context.state.mutate(lambda s: (without_tracked_server(s, name), None), reason=reason)

    def _provider_name(self, name: str) -> Provider:
        record = self.tracked()
        if record is not None:
            return record.provider
        planned = self.planned()
        if planned is not None:
            return planned[1].provider
        raise ValueError(f"server {self.name} is neither planned nor tracked")

    # -- the snapshot ---------------------------------------------------------------------------------

    def _machine(self) -> str:
        active = self.active
        for name in (
            "settling",
            "creating",
            "provisioning",
            "verifying",
            "running",
            "deleting",
            "deleted",
            "failed",
            "absent",
        ):
            if name in active:
                return name
        return "absent"

    def lifecycle(self) -> str:
        machine = self._machine()
        return "error" if machine == "failed" else machine

    def system(self) -> str | None:
        active = self.active
        for name in (
            "deploying",
            "deployed",
            "deploy_failed",
            "deploy_interrupted",
            "reachable",
            "down",
            "unknown",
        ):
            if name in active:
                return name
        return None

    def settled(self) -> bool:
        # The system region follows the machine region by an internal event: not settled between.
        return (
            self._machine() not in _WORKING
            and "deploying" not in self.active
            and self.system() == self._system_target()
        )

    def operation(self) -> str | None:
        if "deploying" in self.active:
            return "deploy"
        working = _OPERATIONS.get(self._machine())
        if working is not None:
            return working
        # A node operation the deployment runtime runs (reinstall, resume, NBDE): an operation
        # while any of its phases runs, so the panels and the activity agree.
        record = self.tracked()
        execution = None if record is None else record.execution
        return execution.operation if execution is not None and execution.status == "running" else None

    def health(self) -> Health:
        machine = self._machine()
        if machine == "failed":
            return super().health()
        if machine == "running":
            system = self.system()
            if system == "deploying":
                return "unknown"
            if system == "deployed" and self.observed is not None:
                return self.observed.health
            return "healthy" if system in ("reachable", "deployed") else "degraded"
        return "unknown"

    def waiting(self) -> str | None:
        """What continues a node operation left at rest (module notes): the operator's command."""
        system = self.system()
        if "running" in self.active and system == "down" and self.tracked() is not None:
            return f"legion materialize: server is {self.provider_status}"
        if "running" not in self.active or system not in ("reachable", "deploy_failed", "deploy_interrupted"):
            return None
        deployer = self._deployer()
        if deployer is None or self.tracked() is None or deployer.busy(self.name):
            return None
        # The command comes first: the CLI's waiting column is narrow and cuts the rest.
        execution = deployer.execution(self.name)
        resume = f"legion server resume {self.name} (or legion materialize)"
        if system == "reachable":
            if execution is not None and execution.status == "running":
                return f"another Legion process to finish {execution.operation} ({execution.phase})"
            return "legion materialize: not installed yet" if execution is None else None
        if execution is None or execution.status not in ("interrupted", "failed"):
            return None
        if system == "deploy_interrupted":
            return f"{resume}: {execution.operation} interrupted in {execution.phase}"
        if execution.retryable:
            return f"{resume}: retry {execution.operation} from {execution.phase}"
        return f"legion materialize: start {execution.operation} over"

    def substage(self) -> str | None:
        """The deployment phase the node is in (or stopped in); none once its operation succeeded."""
        record = self.tracked()
        if record is None or record.execution is None or record.execution.status == "succeeded":
            return None
        return record.execution.phase

    def facts(self) -> Mapping[str, str]:
        facts: dict[str, str] = {}
        planned = self.planned()
        record = self.tracked()
        if planned is not None:
            facts["cluster"], facts["role"] = planned[0], planned[1].role
        if record is not None:
            facts.setdefault("cluster", record.cluster)
            facts.setdefault("role", record.role)
            facts["provider_id"] = record.provider_id
            for key, value in (
                ("ipv4", record.ipv4),
                ("ipv6", record.ipv6),
                ("server_type", record.server_type),
                ("location", record.location),
                ("image", record.image),
            ):
                if value:
                    facts[key] = value
        if self.provider_status:
            facts["status"] = self.provider_status
        seen_at = None if record is None else status_seen_at(self._state, record)
        if seen_at is not None:
            facts["status_seen_at"] = seen_at.isoformat()
        observed = self.observed
        if observed is not None and self.system() == "deployed":
            facts["checked_at"] = dt.datetime.fromtimestamp(observed.checked_at, dt.UTC).isoformat()
            if observed.reason:
                facts["reason"] = observed.reason
        return facts
