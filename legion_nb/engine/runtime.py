"""The engine: one object that the CLI, the daemon and the notebooks all drive.

:class:`Engine` owns the lifecycle of one state file - ``bootstrap`` creates a new state, ``unlock``
opens an existing one, ``logout`` drops the decrypted state, ``aclose`` ends everything - and the
``@engine_api`` facade. Unlocking opens one :class:`~legion_nb.engine.session.Session`, which builds
every long-lived service from ports (redaction, providers, resource actors, operations, the snapshot
publisher, node deployment, billing, terminals); logout closes it, which closes the store and zeroes
its key. The engine methods stay thin: reach the live session (:class:`~legion_nb.errors.LockedError`
when locked), call a pure function or a service, return a typed result.

The engine never keeps the password: it is handed to the store and forgotten, so after logout nothing
secret is reachable from the engine (a test walks the object graph to check).

:func:`create_engine` turns its options into :class:`~legion_nb.engine.session.SessionSettings`, the
value each session is built from. Every public method is marked
:func:`~legion_nb.engine.api.engine_api`; ``subscribe`` is the event stream (the daemon offers it as
its own ``subscribe`` method, not as a ``call``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion_nb.engine import planning
from legion_nb.engine.api import engine_api
from legion_nb.engine.billing.methods import BillingMethods
from legion_nb.engine.billing.plan_cost import plan_cost
from legion_nb.engine.billing.service import BillingService
from legion_nb.engine.credentials import (
    credential_facts,
    credentials_facts,
    delete_credentials,
    set_credentials,
)
from legion_nb.engine.diff import Diff
from legion_nb.engine.events import TOPICS, Event, EventHub
from legion_nb.engine.observe.methods import ObservationMethods
from legion_nb.engine.paths import log_dir_for, node_locks_dir_for
from legion_nb.engine.providers_service import catalog_json
from legion_nb.engine.reports import MaterializeReport, RefreshResult, ServerCommandResult
from legion_nb.engine.resources.actor import ResourceSettings
from legion_nb.engine.results import (
    ActivityView,
    AppSnapshot,
    AuthResult,
    CatalogView,
    ClusterNbde,
    ConcernRun,
    CredentialFacts,
    NodeHostKey,
    ObservationView,
    Removed,
    RepairView,
    StatusReport,
    StreamView,
    TerminalClosed,
    TerminalFacts,
    TerminalOutputView,
    TerminalWritten,
)
from legion_nb.engine.runbooks.methods import RunbookMethods
from legion_nb.engine.runbooks.service import Runbooks
from legion_nb.engine.session import Session, SessionSettings
from legion_nb.engine.snapshot import assemble
from legion_nb.engine.state.model import (
    LegionState,
    PlannedAccess,
    PlannedDnsHost,
    PlannedDnsZone,
    PlannedDomain,
    PlannedFirewall,
    PlannedServer,
    Scheme,
    decode_state,
    empty_state,
    host_fqdn,
    state_encoder,
)
from legion_nb.engine.state.validation import (
    normalize_host,
    normalize_hostname,
    normalize_label,
    normalize_zone,
    validate_provider,
)
from legion_nb.engine.surface import EngineAPI
from legion_nb.errors import ApplyRunningError, LockedError, UsageError, ValidationError
from legion_nb.providers.catalog import embedded_catalog

if TYPE_CHECKING:
    from legion_nb.engine.state.persistence import PersistenceSupervisor
    from legion_nb.engine.terminal import TerminalInfo

__all__ = ["MIN_PASSWORD_LENGTH", "Engine", "SessionSettings", "create_engine", "terminal_facts"]

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8


def _loaded(payload: bytes, encode: Callable[[LegionState], bytes]) -> LegionState:
    """The decoded state, once through ``encode`` too: the session's writer re-encodes only the
    records a commit replaces, so its first commit after unlock is as cheap as the later ones."""
    state = decode_state(payload)
    encode(state)
    return state


def snapshot_of(state: LegionState, revision: int) -> AppSnapshot:
    """The app snapshot of ``state`` with no actor beliefs yet (every row reads ``unknown``)."""
    return assemble(state, revision, ())


class Engine(BillingMethods, ObservationMethods, RunbookMethods, EngineAPI):
    """The Legion engine for one state file: the :class:`~legion_nb.engine.surface.EngineAPI` in process
    (billing methods: :mod:`legion_nb.engine.billing.methods`; telemetry, logs and frames:
    :mod:`legion_nb.engine.observe.methods`; runbooks: :mod:`legion_nb.engine.runbooks.methods`)."""

    def __init__(
        self,
        state_path: Path,
        *,
        hub: EventHub,
        settings: SessionSettings | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.state_path = state_path
        self.lock_timeout = lock_timeout  # seconds a save waits for another's (None: the store's default)
        self.events = hub
        self.settings = settings or SessionSettings()
        self._session: Session | None = None
        # Runbooks drive this engine through its public API: they belong to the engine, not a session.
        self.runbooks = Runbooks(self, log_dir_for(state_path), self._operation_ids)
        self._lifecycle = asyncio.Lock()
        self._closed = False
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # -- the session and the lock ----------------------------------------------------------

    def at_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` once the engine has closed (e.g. stop the sandbox cloud it talks to)."""
        self._closers.append(closer)

    def _operation_ids(self) -> list[str]:
        return [entry.id for entry in self.state.operations] if self.is_unlocked else []

    def state_exists(self) -> bool:
        return self.state_path.exists()

    @property
    def is_unlocked(self) -> bool:
        return self._session is not None

    def _live(self) -> Session:
        """The unlocked session, or :class:`LockedError`."""
        if self._session is None:
            raise LockedError("state is locked: unlock it first (legion ... / await engine.unlock(...))")
        return self._session

    def _billing(self) -> BillingService:
        return self._live().billing

    @property
    def core(self) -> Session:
        """The live session's services (notebooks and tests reach into them; locked -> LockedError)."""
        return self._live()

    def assert_unlocked(self) -> PersistenceSupervisor[LegionState]:
        """The persistence supervisor, or :class:`LockedError` when the state is locked."""
        return self._live().persistence

    @property
    def state(self) -> LegionState:
        """The last durable state (locked -> :class:`LockedError`)."""
        return self._live().persistence.state

    # -- lifecycle (engine API; results returned directly) ---------------------------------

    @engine_api
    async def bootstrap(self, password: str) -> AuthResult:
        """Create a new encrypted state and unlock it; refuses to overwrite (StateExistsError)."""
        from legion_nb.engine.state.store import SecureStateStore  # noqa: PLC0415 - heavy crypto import

        _check_new_password(password)
        async with self._lifecycle:
            self._check_open()
            if self._session is not None:
                raise UsageError("this engine is already unlocked: log out before creating a new state")
            state = empty_state()
            encode = state_encoder()
            store = await SecureStateStore.create(
                self.state_path, password, encode(state), **self._store_options()
            )
            await self._open(store, state, encode)
        return self._auth_result()

    @engine_api
    async def unlock(self, password: str) -> AuthResult:
        """Open the state with ``password``.

        On an unlocked engine the password is checked against the file before anything else: a
        wrong one raises and leaves the session as it was (a mistyped password never logs the
        operator out); a right one reloads the state only if the file moved on since this session
        last read or wrote it (another process saved), else the session simply continues.
        """
        from legion_nb.engine.state.store import SecureStateStore  # noqa: PLC0415 - heavy crypto import

        async with self._lifecycle:
            self._check_open()
            store, payload = await SecureStateStore.unlock(self.state_path, password, **self._store_options())
            current = None if self._session is None else self._session.persistence
            if current is not None and store.generation <= current.store.generation:
                store.close()  # the password is right and this session already holds the latest state
                return self._auth_result()
            encode = state_encoder()
            try:
                state = await asyncio.to_thread(_loaded, payload, encode)  # pure; ~20 ms per 1,000 servers
            except BaseException:
                store.close()
                raise
            del payload
            await self._close_session()
            await self._open(store, state, encode)
        return self._auth_result()

    @engine_api
    async def logout(self) -> AuthResult:
        """Drop the decrypted state, stop the services and close the store (its key is zeroed)."""
        async with self._lifecycle:
            await self._close_session()
        return self._auth_result()

    @engine_api
    async def change_password(self, old: str, new: str) -> AuthResult:
        """Re-protect the state with ``new``; WrongPasswordError if ``old`` is wrong."""
        _check_new_password(new)
        if old == new:
            raise ValidationError("the new password equals the current one: nothing to change")
        await self._live().persistence.change_password(old, new)
        return self._auth_result()

    async def use_settings(self, settings: SessionSettings) -> None:
        """Build sessions from ``settings`` from now on, and rebuild an open one on the state it holds.

        For a long-lived engine whose surroundings moved (the daemon, when a served sandbox links
        the state, goes away, or comes back on new ports): the state stays unlocked - the open store
        is kept, no password is needed - while every service restarts with the new settings. As at
        logout, open terminals close and a node operation in flight is interrupted (retryable).
        ``settings`` without resource settings keep the engine's current ones. Raises
        :class:`~legion_nb.errors.ApplyRunningError` while a materialize runs (nothing changes then).
        """
        if settings.resources is None:
            settings = replace(settings, resources=self.settings.resources)
        async with self._lifecycle:
            self._check_open()
            session = self._session
            if session is not None and session.ops.applying is not None:
                raise ApplyRunningError("a materialize is running: its settings stay until it ends")
            self.settings = settings
            if session is None:
                return
            self._session = None
            await self._start_session(await session.hand_over())

    async def aclose(self) -> None:
        """Log out and end every subscription; the engine cannot be used afterwards."""
        async with self._lifecycle:
            await self._close_session()
            self._closed = True
        self.events.close()
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                await closer()
            except Exception:  # logged: every closer must get its turn
                log.exception("closing %s failed", getattr(closer, "__qualname__", "a resource"))

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this engine is closed: create a new one (legion_nb.open(...))")

    async def _open(self, store: Any, state: LegionState, encode: Callable[[LegionState], bytes]) -> None:
        from legion_nb.engine.state.persistence import PersistenceSupervisor  # noqa: PLC0415

        # With decode, a save after another process's save applies its batch on top of that one.
        persistence = PersistenceSupervisor(store, state, encode, decode_state)
        await self._start_session(persistence)

    async def _start_session(self, persistence: PersistenceSupervisor[LegionState]) -> None:
        """A session on ``persistence`` from the current settings (it owns ``persistence`` now)."""
        self._session = await Session.open(
            persistence,
            hub=self.events,
            settings=self.settings,
            log_dir=log_dir_for(self.state_path),
            node_locks=node_locks_dir_for(self.state_path),
        )

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    def _store_options(self) -> dict[str, float]:
        return {} if self.lock_timeout is None else {"lock_timeout": self.lock_timeout}

    def _auth_result(self) -> AuthResult:
        session = self._session
        return {
            "state": str(self.state_path),
            "unlocked": session is not None,
            "revision": None if session is None else session.persistence.store.generation,
        }

    # -- reading ---------------------------------------------------------------------------

    @engine_api
    async def status(self) -> StatusReport:
        """Locked or unlocked, and when unlocked: counts, providers with credentials, pending actions."""
        exists = self.state_exists()
        if self._session is None:
            return {
                "state": str(self.state_path),
                "exists": exists,
                "unlocked": False,
                "revision": None,
                "counts": {},
                "providers": [],
                "actions": {},
            }
        persistence = self._session.persistence
        state = persistence.state
        scheme, tracked = state.scheme, state.tracked
        counts = {
            "clusters": len(scheme.clusters),
            "servers": sum(len(c.servers) for c in scheme.clusters.values()),
            "domains": len(scheme.domains),
            "dns_zones": len(scheme.dns_zones),
            "dns_hosts": len(scheme.dns_hosts),
            "firewalls": len(scheme.firewalls),
            "tracked_servers": len(tracked.servers),
            "tracked_dns_zones": len(tracked.dns_zones),
            "tracked_firewalls": len(tracked.firewalls),
            "pending_creates": len(tracked.pending),
            "operations": len(state.operations),
        }
        return {
            "state": str(self.state_path),
            "exists": exists,
            "unlocked": True,
            "revision": persistence.store.generation,
            "counts": counts,
            "providers": sorted(state.credentials),
            "actions": (await self.diff()).counts(),  # the diff's own rows: derived firewalls included
        }

    @engine_api
    async def plan_show(self) -> Scheme:
        """The planned scheme."""
        return self.state.scheme

    @engine_api
    async def diff(self) -> Diff:
        """Planned vs tracked vs observed, field by field, with the action per resource (the
        cluster's derived firewall sets included): the rows of the snapshot's view of the state,
        built off the loop once per state, and the plan's monthly cost from the catalogs."""
        session = self._live()
        view = await session.publisher.view()
        if view is None:  # locked while the view was built
            raise LockedError("state is locked: unlock it first (legion ... / await engine.unlock(...))")
        cost = view.cost
        if cost is None:
            cost = (await asyncio.to_thread(plan_cost, view.state, session.providers.catalog)).to_json()
        return Diff(view.resources, cost=cost)

    @engine_api
    async def credentials_show(self) -> list[CredentialFacts]:
        """Providers with stored credentials: endpoint and field names, never secret values."""
        return credentials_facts(self.state)

    # -- changing the plan -----------------------------------------------------------------

    async def _change(self, reason: str, change: Callable[[LegionState], LegionState]) -> LegionState:
        """Apply a pure change durably; returns the committed state."""

        def step(state: LegionState) -> tuple[LegionState, LegionState]:
            new = change(state)
            return new, new

        return await self._live().persistence.mutate(step, reason=reason)

    @engine_api
    async def plan_upsert_server(
        self,
        *,
        name: str,
        provider: str,
        server_type: str | None = None,
        location: str | None = None,
        image: str | None = None,
        cluster: str | None = None,
        role: str = "cluster",
    ) -> PlannedServer:
        """Plan a server (add or change); omitted choices stay empty: the catalog policy picks them.
        A choice the provider's catalog, once read in this session, does not offer is refused
        (:class:`~legion_nb.providers.catalog.CatalogChoiceError`, naming the nearest ones)."""
        args = {"server_type": server_type, "location": location, "image": image, "cluster": cluster}
        catalog_of = self._live().providers.live_catalog
        state = await self._change(
            f"plan server {name}",
            lambda s: planning.upsert_server(
                s, name=name, provider=provider, role=role, catalog_of=catalog_of, **args
            ),
        )
        found = state.scheme.find_server(normalize_hostname(name, what="server name"))
        assert found is not None  # upsert_server just planned it
        return found[1]

    @engine_api
    async def plan_remove_server(self, name: str) -> Removed:
        await self._change(f"unplan server {name}", lambda s: planning.remove_server(s, name=name))
        return {"removed": "server", "name": name}

    @engine_api
    async def plan_upsert_domain(self, name: str, provider: str) -> PlannedDomain:
        state = await self._change(
            f"plan domain {name}", lambda s: planning.upsert_domain(s, name=name, provider=provider)
        )
        return state.scheme.domains[normalize_zone(name, what="domain")]

    @engine_api
    async def plan_remove_domain(self, name: str) -> Removed:
        await self._change(f"unplan domain {name}", lambda s: planning.remove_domain(s, name=name))
        return {"removed": "domain", "name": name}

    @engine_api
    async def plan_upsert_dns_zone(self, zone: str, provider: str) -> PlannedDnsZone:
        state = await self._change(
            f"plan DNS zone {zone}", lambda s: planning.upsert_dns_zone(s, zone=zone, provider=provider)
        )
        return state.scheme.dns_zones[normalize_zone(zone)]

    @engine_api
    async def plan_remove_dns_zone(self, zone: str) -> Removed:
        await self._change(f"unplan DNS zone {zone}", lambda s: planning.remove_dns_zone(s, zone=zone))
        return {"removed": "dns_zone", "name": zone}

    @engine_api
    async def plan_upsert_dns_host(self, host: str, zone: str, servers: Sequence[str]) -> PlannedDnsHost:
        """Point ``host`` in ``zone`` at ``servers`` (add = upsert)."""
        state = await self._change(
            f"plan DNS host {host} in {zone}",
            lambda s: planning.upsert_dns_host(s, host=host, zone=zone, servers=list(servers)),
        )
        zone_name = normalize_zone(zone)
        return state.scheme.dns_hosts[host_fqdn(normalize_host(host, zone_name), zone_name)]

    @engine_api
    async def plan_remove_dns_host(self, host: str, zone: str) -> Removed:
        await self._change(
            f"unplan DNS host {host} in {zone}", lambda s: planning.remove_dns_host(s, host=host, zone=zone)
        )
        return {"removed": "dns_host", "name": host, "zone": zone}

    @engine_api
    async def plan_upsert_firewall(
        self,
        name: str,
        provider: str,
        rules: Sequence[str | Mapping[str, Any]] = (),
        servers: Sequence[str] = (),
    ) -> PlannedFirewall:
        """Plan a provider firewall; rules read ``"in tcp 22 0.0.0.0/0 ::/0"`` or are objects."""
        state = await self._change(
            f"plan firewall {name}",
            lambda s: planning.upsert_firewall(
                s, name=name, provider=provider, rules=list(rules), servers=list(servers)
            ),
        )
        return state.scheme.firewalls[normalize_label(name, what="firewall name")]

    @engine_api
    async def plan_remove_firewall(self, name: str) -> Removed:
        await self._change(f"unplan firewall {name}", lambda s: planning.remove_firewall(s, name=name))
        return {"removed": "firewall", "name": name}

    @engine_api
    async def plan_set_operator_cidrs(self, cidrs: list[str]) -> PlannedAccess:
        """Open SSH and the node admin API only to ``cidrs`` on every cluster firewall (replaces the
        planned list; the plan wins over ``LEGION_OPERATOR_CIDRS``)."""
        state = await self._change(
            "plan operator CIDRs", lambda s: planning.set_operator_cidrs(s, cidrs=cidrs)
        )
        return state.scheme.access

    @engine_api
    async def plan_clear_operator_cidrs(self) -> PlannedAccess:
        """Forget the planned operator CIDRs (``LEGION_OPERATOR_CIDRS``, else anywhere with a warning)."""
        state = await self._change("unplan operator CIDRs", planning.clear_operator_cidrs)
        return state.scheme.access

    @engine_api
    async def credentials_set(
        self, provider: str, secrets: Mapping[str, Any], endpoint: str | None = None
    ) -> CredentialFacts:
        """Store a provider's credentials (encrypted with the state); returns only non-secret facts.
        The provider is usable by the very next call: its adapter is registered before this returns."""
        state = await self._change(
            f"set {provider} credentials",
            lambda s: set_credentials(s, provider=provider, secrets=secrets, endpoint=endpoint),
        )
        return credential_facts(state.credentials[validate_provider(provider)])

    @engine_api
    async def credentials_delete(self, provider: str) -> Removed:
        """Forget a provider's stored credentials. Its adapter is unregistered before this returns,
        so the next refresh, materialize or catalog read leaves that provider out; tracked resources
        stay tracked and wait for new credentials."""
        await self._change(
            f"delete {provider} credentials", lambda s: delete_credentials(s, provider=provider)
        )
        return {"removed": "credentials", "name": validate_provider(provider)}

    # -- operations (EngineOps) ------------------------------------------------------------

    @engine_api
    async def materialize(self, yes: bool = True, settle_seconds: float | None = None) -> MaterializeReport:
        """Apply the plan and wait until every resource settles; ``ok`` says whether all did.

        Running it is the confirmation (a notebook cell, ``legion materialize --yes`` or its prompt);
        ``yes=False`` refuses, for callers that pass an unconfirmed choice through. One at a time
        (``ApplyRunningError``). Progress arrives on the "activity" and "snapshot" streams.
        """
        ops = self._live().ops
        if yes is not True:
            raise UsageError("materialize changes cloud resources: review `legion diff`, then confirm")
        return await ops.materialize(settle_seconds=settle_seconds)

    @engine_api
    async def refresh(self) -> RefreshResult:
        """Re-read every provider with credentials; adopt Legion-labelled resources, delete nothing."""
        return await self._live().ops.refresh()

    @engine_api
    async def snapshot(self) -> AppSnapshot:
        """The app snapshot: actor beliefs joined with planned, tracked and observed records."""
        return await self._live().publisher.fresh()

    @engine_api
    async def observe_once(self, only: list[str] | None = None) -> dict[str, ConcernRun]:
        """Run each observation concern once (``only``: those named), one after the other:
        ``{concern: {ok, seconds, items, error}}``. An unknown concern name is a usage error."""
        records = await self._live().observation.scheduler.run_once(only)
        return {
            name: {"ok": s.ok, "seconds": s.seconds, "items": s.items, "error": s.error}
            for name, s in records.items()
        }

    @engine_api
    async def observation(self) -> ObservationView:
        """The scheduler's status: whether it runs, and per concern its last and next run."""
        return self._live().observation.scheduler.section()

    @engine_api
    async def activity(self) -> ActivityView:
        """The current operation, counts per lifecycle state, resources at work and failures."""
        session = self._live()
        return session.ops.activity.view(session.resources.snapshots())

    @engine_api
    async def server_reboot(self, name: str) -> ServerCommandResult:
        return await self._live().ops.server_reboot(name)

    @engine_api
    async def server_reinstall(self, name: str) -> ServerCommandResult:
        """Reset a tracked server to its image (or the catalog's current one if it is gone)."""
        return await self._live().ops.server_reinstall(name)

    @engine_api
    async def node_reinstall(self, name: str) -> ServerCommandResult:
        """Reinstall a deployed cluster node through every deployment phase (same pinned host key)."""
        return await self._live().ops.node_reinstall(name)

    @engine_api
    async def node_resume(self, name: str) -> ServerCommandResult:
        """Continue a node operation that was interrupted or failed, from its recorded phase."""
        return await self._live().ops.node_resume(name)

    @engine_api
    async def node_repin(self, name: str) -> ServerCommandResult:
        """Accept that a node's server no longer holds Legion's host key (rebuilt outside Legion):
        its next install sessions may trust the key it presents. The only way to replace a key a
        node has already answered with; a resume or reinstall never does it on its own."""
        return await self._live().ops.node_repin(name)

    @engine_api
    async def nbde_status(self) -> list[ClusterNbde]:
        """Per cluster: the NBDE mode its healthy nodes call for and each node's recorded binding."""
        return self._live().ops.nbde_status()

    @engine_api
    async def nbde_reconcile(self) -> list[ClusterNbde]:
        """Promote or demote each healthy node's disk unlock to its cluster's NBDE policy now (what
        the repair tick would do), then report like :meth:`nbde_status`."""
        return await self._live().ops.nbde_reconcile()

    @engine_api
    async def stream_start(self, satellite: str, name: str, endpoint: str) -> StreamView:
        """Plan Sender stream ``name`` on satellite ``satellite`` to ``endpoint``, running, and start
        it on the satellite now (when the satellite is up); its status after that first probe.
        Raises :class:`ValidationError` for a server that is not a satellite or a bad endpoint."""
        await self._change(
            f"plan stream {name}",
            lambda s: planning.upsert_stream(s, name=name, satellite=satellite, endpoint=endpoint),
        )
        return _stream(await self._live().streams.probe(), name)

    @engine_api
    async def stream_stop(self, name: str) -> StreamView:
        """Keep stream ``name`` planned but stopped, and stop its session on the satellite now."""
        await self._change(f"stop stream {name}", lambda s: planning.stop_stream(s, name=name))
        return _stream(await self._live().streams.probe(), name)

    @engine_api
    async def stream_list(self, probe: bool = False) -> list[StreamView]:
        """Every planned stream with its state and reason as of the last probe (``probe``: now)."""
        streams = self._live().streams
        return await streams.probe() if probe else streams.statuses()

    @engine_api
    async def repairs_plan(self) -> list[RepairView]:
        """The safe repairs the next repair tick would run, each with its reasons, or held with
        why (an apply runs, a node operation runs, the attempt budget) and when it may next run."""
        self.assert_unlocked()
        return await self.core.ops.repairs.plan()

    @engine_api
    async def repairs_run(self) -> list[RepairView]:
        """Run the safe repairs now (what the tick would), within the same budget; each target with
        its outcome. Held targets are listed, not run."""
        self.assert_unlocked()
        return await self.core.ops.repairs.run()

    @engine_api
    async def orphan_delete(self, provider: str, resource: str) -> ServerCommandResult:
        """Delete ``resource`` at ``provider`` when it is an orphan: Legion made it (both of its
        labels) and nothing in the state holds it, the rule refresh, the diff and the billing
        reconciliation flag orphans by. ``resource`` is as the diff's orphan rows and the
        reconciliation name it: a server's provider id, ``dns_zone/<zone>``, ``firewall/<id>``,
        ``floating_ip/<id>`` or ``primary_ip/<id>``.

        The provider is read again first (the refresh that showed the orphan may be old) and the
        resource leaves the observed state once deleted, so the diff stops showing it at once.
        Raises :class:`~legion_nb.errors.UnknownOrphanError` (the provider lists no such id),
        :class:`~legion_nb.errors.NotLegionsError` (someone else's: Legion never deletes what it did
        not label) or :class:`~legion_nb.errors.HeldByStateError` (tracked, planned, pending or
        assigned); all are :class:`UsageError`.
        """
        return await self._live().ops.orphan_delete(provider, resource)

    @engine_api
    async def server_delete(self, name: str) -> ServerCommandResult:
        """Take a server out of the plan and delete it at its provider now."""
        return await self._live().ops.server_delete(name)

    @engine_api
    async def catalog(self, provider: str, live: bool = True) -> CatalogView:
        """Server types with prices, locations and images: read live when the state is unlocked and
        holds the provider's credentials (and ``live``), else the embedded snapshot."""
        name = validate_provider(provider)
        session = self._session
        if live and session is not None and session.providers.has_credentials(name):
            return catalog_json(await session.providers.fetch_catalog(name))
        return catalog_json(embedded_catalog(name))

    @engine_api
    async def node_host_key(self, name: str) -> NodeHostKey:
        """The host key Legion pinned for node ``name`` and the one it presents on SSH now.

        Public keys only, as ``type base64``: a runbook checks that a reinstalled node came back
        with its pinned identity without reaching into the state's node material.
        """
        from legion_nb.engine.node_terminals import node_target  # noqa: PLC0415
        from legion_nb.engine.ssh import scan_host_key  # noqa: PLC0415 - loads asyncssh

        session = self._live()
        target = node_target(session.persistence.state, name, port=session.terminals.settings.ssh_port)
        presented = await scan_host_key(target.node, target.host, target.port)

        def bare(line: str) -> str:
            return " ".join(line.split()[:2])

        pinned = bare(target.pinned_host_key)
        return {
            "node": target.node,
            "address": target.host,
            "pinned": pinned,
            "presented": bare(presented),
            "matches": bare(presented) == pinned,
        }

    # -- terminals (NodeTerminals; every session closes at logout) --------------------------

    @engine_api
    async def terminal_open(
        self, name: str, cols: int = 80, rows: int = 24, pty: bool = True
    ) -> TerminalFacts:
        """A shell on node ``name``, reached with the address and keys deployment stored.

        ``pty=False`` opens a plain shell for piped input (no echo, no prompt): what a script or
        ``echo hostname | legion terminal NAME`` wants, with stderr apart and the exit status kept.
        """
        terminals = self._live().terminals.service
        return terminal_facts(await terminals.open(name, cols=cols, rows=rows, pty=pty))

    @engine_api
    async def terminal_write(self, id: str, data: str, eof: bool = False) -> TerminalWritten:
        """Keystrokes (or text) for terminal ``id``; ``eof`` then ends its input (a piped script's end)."""
        self._live().terminals.service.write(id, data, eof=eof)
        return {"id": id, "written": len(data)}

    @engine_api
    async def terminal_read(self, id: str, wait: float = 0.0) -> TerminalOutputView:
        """Output since the last read; with ``wait``, up to that many seconds (at most 30) for the
        first byte."""
        terminals = self._live().terminals
        if not 0 <= wait <= 30:
            raise UsageError(f"terminal read wait {wait} is not valid; use 0 to 30 seconds")
        out = await terminals.service.read(id, wait=wait)
        return {
            "id": out.id,
            "data": out.data,
            "closed": out.closed,
            "exit_status": out.exit_status,
            "stderr": out.stderr,
        }

    @engine_api
    async def terminal_resize(self, id: str, cols: int, rows: int) -> TerminalFacts:
        return terminal_facts(self._live().terminals.service.resize(id, cols, rows))

    @engine_api
    async def terminal_close(self, id: str) -> TerminalClosed:
        await self._live().terminals.service.close(id)
        return {"id": id, "closed": True}

    @engine_api
    async def terminal_list(self) -> list[TerminalFacts]:
        """The open terminals (node, address, size; never a key)."""
        return [terminal_facts(info) for info in self._live().terminals.service.list()]

    # -- events ----------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = TOPICS) -> AsyncGenerator[Event, None]:
        """Coalesced "snapshot"/"activity" events; a new subscriber first gets the latest snapshot."""
        return self.events.subscribe(topics)


def terminal_facts(info: TerminalInfo) -> TerminalFacts:
    """A terminal session as the API shows it (node, address, size; the key stays in the session)."""
    return {
        "id": info.id,
        "node": info.node,
        "host": info.host,
        "pty": info.pty,
        "cols": info.cols,
        "rows": info.rows,
        "closed": info.closed,
    }


def _check_new_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_engine(
    state_path: Path, settings: SessionSettings | None = None, *, lock_timeout: float | None = None
) -> Engine:
    """An engine for ``state_path``, still locked; each unlock builds a session from ``settings``.

    ``settings`` default to :class:`SessionSettings()`: real-cloud pacing, no node deployment,
    terminals on port 22. Operator CIDRs from ``LEGION_OPERATOR_CIDRS`` are read (and checked) now.
    ``lock_timeout`` is how long a save waits for another process's save (the CLI's
    ``--lock-timeout``); by default the store's.
    """
    settings = settings or SessionSettings()
    if settings.resources is None:
        settings = replace(settings, resources=ResourceSettings.from_env())
    return Engine(Path(state_path), hub=EventHub(), settings=settings, lock_timeout=lock_timeout)


def _stream(views: list[StreamView], name: str) -> StreamView:
    """The view of stream ``name`` (its normalized name) among ``views``."""
    wanted = normalize_label(name, what="stream name")
    return next(v for v in views if v["name"] == wanted)
