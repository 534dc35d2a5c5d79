"""What every resource actor shares: a statechart, its collaborators, and snapshot derivation.

One actor type per real entity (node, DNS zone, firewall set, domain); this module is the shared
library they use, not a base machine. An actor is a small object that *owns* one python-statemachine
``StateChart`` and serves as its listener: the chart holds the structure (states, events, guards by
name, invoke states), the actor supplies guards, invoke handlers and facts. Long provider I/O runs in
the chart's async invoke handlers, so leaving a state (a teardown, a stop at logout) cancels it.

Every chart nests its working states in a compound ``alive`` state beside a final ``stopped`` state,
so ``stop`` exits everything and cancels every invoke whatever the chart's shape. python-statemachine
cancels an async invoke's task without waiting for it, so every ``on_invoke_*`` handler is wrapped to
register its task (:func:`_awaited_at_stop`) and ``stop`` returns only once those tasks have ended:
what a cancelled handler still records (a node operation's ``interrupted`` phase) lands while the
session's state is open, and no handler outlives the session that started it.

Charts are built when first needed. python-statemachine resolves every callback of a chart per
instance (about 5 ms and 270 KiB for a node chart), which a fleet of a thousand servers pays at
every unlock although most of them only rest. So an actor whose restore would end in a
configuration with no work to start or due (:meth:`ResourceActor.resting_configuration`: a tracked
server running, a zone applied) rests there without a chart, and its chart is built from that
configuration when the first event arrives. A planned resource not created yet builds its chart at
once: the next wave has work for it, and a wave should not wait for charts. A test checks every
resting configuration against the one the chart itself reaches from its initial state.

The snapshot is *derived* from the chart configuration each time it changes (after each transition
and on explicit :meth:`ResourceActor.touch`); an actor only reports a new revision when something in
it differs. Errors are kept as one-line messages; a temporary provider error (rate limit,
unavailable) is remembered as such so the supervisor's repair pass can retry exactly those actors.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from statemachine import StateChart
from statemachine.orderedset import OrderedSet

from legion_nb.engine.cluster.firewall_plan import FirewallPlanCache, normalize_sources
from legion_nb.engine.redaction import redact
from legion_nb.engine.resources.pending import pending_for
from legion_nb.engine.resources.ports import ProviderAccess, StatePort
from legion_nb.engine.resources.snapshot import ActorSnapshot, Health, ResourceKey
from legion_nb.engine.resources.timeslice import DEFAULT_SLICE
from legion_nb.engine.resources.tracing import ActorTracer
from legion_nb.engine.state.edits import without_pending
from legion_nb.engine.state.model import LegionState, NodeExecution, TrackedSshKey
from legion_nb.errors import (
    LegionError,
    ProviderAmbiguousError,
    ProviderAuthError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    UsageError,
    ValidationError,
)
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.resilience import PendingKind

__all__ = [
    "OPERATOR_CIDRS_ENV",
    "ActorContext",
    "NodeDeployer",
    "ResourceActor",
    "ResourceSettings",
    "describe_error",
]

log = logging.getLogger(__name__)
R = TypeVar("R")


OPERATOR_CIDRS_ENV = "LEGION_OPERATOR_CIDRS"


@dataclass(frozen=True, slots=True)
class ResourceSettings:
    """Engine-wide choices the actors apply: the fallback operator CIDRs for SSH/admin rules (used
    only while the plan has none; None: open with a warning) and the TTL of synthesized records."""

    admin_sources: tuple[str, ...] | None = None
    dns_ttl: int = 300
    loop_slice: float = DEFAULT_SLICE
    """Seconds the supervisor works through its actors on the loop before it yields (0: after each)."""
    freeze_heap: bool = True
    """Keep the unlocked fleet out of the collector's full passes (:mod:`legion_nb.engine.heap`);
    False for a host that manages the garbage collector itself."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResourceSettings:
        """Settings with the operator's CIDRs from ``LEGION_OPERATOR_CIDRS`` (comma separated).

        The plan is where an operator narrows SSH and the admin API (``legion plan access set``,
        stored encrypted in the state and shown by ``legion diff``). The variable stays for automation
        that provisions without planning access: the cluster firewall uses it only while the plan has
        no operator CIDRs, and ignores it (with a warning on the firewall) once the plan has some. A
        bad entry is refused here, in one line naming the variable.
        """
        raw = (os.environ if environ is None else environ).get(OPERATOR_CIDRS_ENV, "")
        entries = [part.strip() for part in raw.split(",") if part.strip()]
        if not entries:
            return cls()
        try:
            return cls(admin_sources=normalize_sources(entries))
        except ValidationError as exc:
            raise ValidationError(f"{OPERATOR_CIDRS_ENV}: {exc.message}") from exc


class NodeDeployer(Protocol):
    """What a cluster node actor asks of the deployment runtime (the engine's ``DeploymentService``).

    A port, so the actors do not depend on how phases run: the actor decides *when* a node's
    install runs (tracked, running, never deployed or left unfinished, and a wave asked for it;
    opening a session never does), the runtime does the work.
    """

    def enabled(self) -> bool:
        """True while a runtime runs (the state is unlocked and deployment is wired)."""
        ...

    def busy(self, node: str) -> bool:
        """True while an operation runs on ``node`` in this process."""
        ...

    def execution(self, node: str) -> NodeExecution | None: ...

    async def provider_ssh_key(self, node: str, provider: str) -> TrackedSshKey:
        """The provider key a new server must be created with so the install phases can reach it."""
        ...

    async def deploy(self, node: str) -> NodeExecution:
        """Install ``node`` (run ``add`` after its provisioning, or resume what was left unfinished)."""
        ...

    async def repair(self, node: str, operation: str) -> NodeExecution:
        """Run a repair operation (``nbde_promote``, ``nbde_reconcile``) on a deployed node."""
        ...


def _no_wave() -> bool:
    return False


@dataclass(slots=True)
class ActorContext:
    """The collaborators an actor may use. ``changed`` reports a new snapshot to the supervisor;
    ``busy_servers`` names the servers (of those asked) whose actors have work in flight;
    ``tracer`` (when tracing is on) gets every transition; ``firewall_plans`` is the derived plan
    of the current state, built once per state and shared by every actor (built from
    ``settings.admin_sources``); ``wave_running`` says whether a wave is at work (the supervisor's
    :meth:`~legion_nb.engine.resources.supervisor.ResourceSupervisor.wave_running`)."""

    providers: ProviderAccess
    state: StatePort
    changed: Callable[[ActorSnapshot], None]
    busy_servers: Callable[[Iterable[str]], list[str]]
    settings: ResourceSettings = field(default_factory=ResourceSettings)
    tracer: ActorTracer | None = None
    deployment: NodeDeployer | None = None
    firewall_plans: FirewallPlanCache = field(default_factory=FirewallPlanCache)
    lazy_charts: bool = True
    """False builds every chart at start and restores through it (module notes); tracing does too,
    so that the trace holds every transition."""
    wave_running: Callable[[], bool] = _no_wave


def describe_error(exc: BaseException) -> tuple[str, bool]:
    """One operator line for ``exc`` and whether it is temporary (worth retrying as is).

    Legion errors carry their own one-line message (scrubbed of secrets, like every line that
    leaves the engine); anything else is a bug, logged with its traceback and shown by type only
    (a foreign message could carry anything, secrets included).
    """
    if isinstance(exc, LegionError):
        temporary = isinstance(exc, ProviderRateLimitedError | ProviderUnavailableError) and not isinstance(
            exc, ProviderAmbiguousError
        )
        return redact(exc.message), temporary
    log.error("resource actor failed unexpectedly", exc_info=exc)
    return f"internal error ({type(exc).__name__}); see the engine log", False


class ResourceActor(abc.ABC):
    """Base of the four actor types; subclasses set ``chart_class`` and describe themselves."""

    chart_class: ClassVar[type[StateChart[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, handler in list(vars(cls).items()):
            if name.startswith("on_invoke_") and inspect.iscoroutinefunction(handler):
                setattr(cls, name, _awaited_at_stop(handler))

    def __init__(self, key: ResourceKey, provider: str, context: ActorContext) -> None:
        self.key = key
        self.provider = provider
        self.context = context
        self.error: str | None = None
        self.error_temporary = False
        self.run_id: str | None = None
        self._revision = 0
        self._snapshot: ActorSnapshot | None = None
        self._chart: StateChart[Any] | None = None
        self._rest_values: tuple[str, ...] = ()
        self._invoking: set[asyncio.Task[Any]] | None = None
        """The tasks of this actor's invoke handlers in flight (created with the first one)."""

    @property
    def chart_built(self) -> bool:
        """False while the actor rests without a chart (module notes)."""
        return self._chart is not None

    @property
    def chart(self) -> StateChart[Any]:
        """The actor's statechart, built on first use (module notes)."""
        if self._chart is None:
            listeners: list[object] = [self]
            if self.context.tracer is not None:
                listeners.append(self.context.tracer.listener(self.key))
            model = _RestingModel(OrderedSet(self._rest_values)) if self._rest_values else None
            self._chart = self.chart_class(model=model, listeners=listeners)
            self._rest_values = ()
        return self._chart

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key}, {sorted(self.active)})"

    @property
    def name(self) -> str:
        """The resource's identity: server name, zone, firewall set or domain name."""
        return self.key.identity

    @property
    def _state(self) -> LegionState:
        return self.context.state.state

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Enter the initial configuration, then let the actor place itself from the state; or
        rest, chartless, where that would end when nothing would start there (module notes)."""
        if self.context.lazy_charts and self.context.tracer is None:
            resting = self.resting_configuration()
            if resting is not None:
                self._rest_values = resting
                self.touch()
                return
        await self.chart.activate_initial_state()
        await self.restore()
        self.touch()

    def resting_configuration(self) -> tuple[str, ...] | None:
        """The configuration (state ids, in the chart's order) that :meth:`restore` would reach
        from the initial one when no invoke starts on the way, else None (then the chart is built
        at start). Actors override this; the default always builds the chart."""
        return None

    async def restore(self) -> None:
        """Move from the initial state to what the durable state says (the ``restore`` event)."""
        await self.send("restore")

    async def send(self, event: str, **data: Any) -> None:
        await self.chart.send(event, **data)

    async def sync(self, run_id: str | None = None) -> None:
        """One wave: reconcile desired facts from the state against what the actor believes."""
        self.wave_started(run_id)
        await self.send("sync")

    def wave_started(self, run_id: str | None) -> None:
        """A wave reached the actor, before its SYNC. Actors extend this, never :meth:`sync`: the
        chart binds listener methods named after its events, so an override of ``sync`` runs as a
        callback of the SYNC event too."""
        self.run_id = run_id

    async def stop(self) -> None:
        """Leave every state (cancelling invokes in flight) and enter ``stopped``. A resting actor
        has nothing in flight: it enters ``stopped`` without building its chart."""
        if self._chart is None and self._rest_values:
            self._rest_values = ("stopped",)
            self.touch()
        elif "stopped" not in self.active:
            await self.send("stop")
            await self._invokes_ended()

    async def _invokes_ended(self) -> None:
        """Wait for the invoke handlers ``stop`` cancelled (never the calling task itself)."""
        current = asyncio.current_task()
        running = [task for task in self._invoking or () if task is not current]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def repair(self) -> bool:
        """Retry after a temporary provider error; True when a retry started."""
        if "failed" not in self.active or not self.error_temporary:
            return False
        await self.send("repair")
        return "failed" not in self.active

    def waits_for_prerequisites(self) -> bool:
        """True while the actor waits for facts other actors produce (a state change rechecks it)."""
        return False

    def follows_endpoints(self) -> bool:
        """True when tracked server endpoints feed this actor's desired set (zones, firewalls)."""
        return False

    @property
    def stopped(self) -> bool:
        return "stopped" in self.active

    # -- chart callbacks (the actor is the chart's listener) ------------------------------------

    async def after_transition(self, event: str, machine: StateChart[Any]) -> None:
        """Every transition re-derives the snapshot (actors that queue follow-up events extend this
        with ``await machine.raise_(...)``: the internal queue, never ``send``)."""
        del event, machine  # the base only re-derives
        self.touch()

    def on_enter_failed(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.error, self.error_temporary = describe_error(error)
        elif self.error is None:
            self.error = "failed for an unknown reason"

    def clear_error(self) -> None:
        self.error, self.error_temporary = None, False

    # -- shared provider work ------------------------------------------------------------------

    def require_provider(self) -> None:
        """Fail before any I/O when the provider has no usable credentials."""
        if not self.context.providers.has_credentials(self.provider):
            raise ProviderAuthError(
                self.provider, f"no usable credentials; run `legion credentials set {self.provider}`"
            )

    async def drop_intent(self, legion_id: str, reason: str) -> None:
        await self.context.state.mutate(lambda s: (without_pending(s, legion_id), None), reason=reason)

    async def settle_intent(self, kind: PendingKind, name: str) -> tuple[object, str] | None:
        """A create of ``kind`` named ``name`` left pending (crash, lost answer): what it made and its
        Legion id, or None when nothing was pending or it never landed (then the intent is gone)."""
        intent = pending_for(self.context.state.state, kind, self.provider, name)
        if intent is None:
            return None
        found = await self.context.providers.resilience.settle_pending(intent)
        if found is None:
            await self.drop_intent(intent.legion_id, f"{intent.describe()}: earlier create did not land")
            return None
        return found, intent.legion_id

    def has_intent(self, kind: PendingKind, name: str) -> bool:
        return pending_for(self.context.state.state, kind, self.provider, name) is not None

    async def settle_stale_intent(self, kind: PendingKind, name: str, tracked_id: str) -> None:
        """An intent still pending although the resource is tracked (a create cancelled at logout
        whose intent write landed late): look it up. Nothing there: forget it. A second resource
        carrying that intent's Legion id: keep the intent and fail with what to do, never delete."""
        settled = await self.settle_intent(kind, name)
        if settled is None:
            return
        found, legion_id = settled
        found_id = str(getattr(found, "id", ""))
        if found_id == tracked_id:
            await self.drop_intent(legion_id, f"{kind} {name}: intent already tracked")
            return
        raise UsageError(
            f"a second {kind.replace('_', ' ')} {name} ({found_id}) from an interrupted create exists at "
            f"{self.provider}; delete it in the provider console, then run `legion refresh`"
        )

    async def create_once(self, what: str, create: Callable[[str], Awaitable[R]]) -> tuple[R, str]:
        """Run ``create(legion_id)`` with a fresh Legion id. The intent resilience records stays when
        the outcome is unknown (or the work was cancelled mid-call: it may have landed) and goes
        when the provider refused; on success the caller drops it when it tracks the result."""
        legion_id = OwnershipLabels.new().legion_id
        try:
            return await create(legion_id), legion_id
        except ProviderAmbiguousError:
            raise
        except Exception:
            await self.drop_intent(legion_id, f"{what}: create refused")
            raise

    # -- snapshots ------------------------------------------------------------------------------

    @property
    def active(self) -> frozenset[str]:
        if self._chart is None:
            return frozenset(self._rest_values)
        return frozenset(str(v) for v in self._chart.configuration_values)

    def snapshot(self) -> ActorSnapshot:
        if self._snapshot is None:
            self._snapshot = self._derive()
        return self._snapshot

    def touch(self) -> None:
        """Re-derive the snapshot; report it when anything but the revision changed."""
        fresh = self._derive()
        previous = self._snapshot
        if previous is not None and _same(previous, fresh):
            return
        self._revision += 1
        self._snapshot = fresh = _with_revision(fresh, self._revision)
        self.context.changed(fresh)

    def _derive(self) -> ActorSnapshot:
        return ActorSnapshot(
            key=self.key,
            provider=self.provider,
            lifecycle="stopped" if self.stopped else self.lifecycle(),
            system=self.system(),
            health=self.health(),
            operation=None if self.stopped else self.operation(),
            substage=self.substage(),
            waiting=None if self.stopped else self.waiting(),
            error=self.error,
            settled=self.stopped or self.settled(),
            facts=self.facts(),
            revision=self._revision,
        )

    # -- what subclasses describe ---------------------------------------------------------------

    @abc.abstractmethod
    def lifecycle(self) -> str:
        """The lifecycle word derived from the chart configuration."""

    @abc.abstractmethod
    def settled(self) -> bool:
        """Nothing in flight for this wave (converged, or failed terminally for it)."""

    def operation(self) -> str | None:
        return None

    def system(self) -> str | None:
        return None

    def health(self) -> Health:
        if self.error:
            return "unreachable" if self.error_temporary else "degraded"
        return "unknown"

    def substage(self) -> str | None:
        return None

    def waiting(self) -> str | None:
        return None

    def facts(self) -> Mapping[str, str]:
        return {}


class _RestingModel:
    """The model a chart built late starts from: the configuration its actor rested in."""

    __slots__ = ("state",)

    def __init__(self, state: OrderedSet[str]) -> None:
        self.state = state


def _same(a: ActorSnapshot, b: ActorSnapshot) -> bool:
    return (
        a.lifecycle == b.lifecycle
        and a.system == b.system
        and a.health == b.health
        and a.operation == b.operation
        and a.substage == b.substage
        and a.waiting == b.waiting
        and a.error == b.error
        and a.settled == b.settled
        and a.provider == b.provider
        and dict(a.facts) == dict(b.facts)
    )


def _with_revision(snapshot: ActorSnapshot, revision: int) -> ActorSnapshot:
    return ActorSnapshot(
        key=snapshot.key,
        provider=snapshot.provider,
        lifecycle=snapshot.lifecycle,
        system=snapshot.system,
        health=snapshot.health,
        operation=snapshot.operation,
        substage=snapshot.substage,
        waiting=snapshot.waiting,
        error=snapshot.error,
        settled=snapshot.settled,
        facts=snapshot.facts,
        revision=revision,
    )


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


def _awaited_at_stop(handler: _Handler) -> _Handler:
    """``handler`` registering its task on the actor while it runs, so :meth:`ResourceActor.stop`
    can wait for it (python-statemachine reads the signature through ``functools.wraps``)."""

    @functools.wraps(handler)
    async def run(self: ResourceActor, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        if task is None:
            return await handler(self, *args, **kwargs)
        if self._invoking is None:
            self._invoking = set()
        self._invoking.add(task)
        try:
            return await handler(self, *args, **kwargs)
        finally:
            self._invoking.discard(task)

    return run  # type: ignore[return-value]
