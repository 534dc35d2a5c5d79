"""The engine: one object that the CLI, the daemon and the notebooks all drive.

:func:`create_engine` wires the long-lived services (the seed's ``createLegionEngine``). Today they
are the encrypted store behind the persistence supervisor (created at unlock, dropped at logout), the
event hub, and the snapshot publisher; later work adds providers, resource actors, deployment and
observation as more :class:`EngineService` objects, without touching the ``Engine`` methods, which
stay thin: check the lock, call a pure function or a service, return a JSON-able result.

Lifecycle: ``bootstrap`` creates a new state, ``unlock`` opens an existing one, ``logout`` drops the
decrypted state and closes the store (which zeroes its key), ``aclose`` ends everything. The engine
never keeps the password: it is handed to the store and forgotten, so after logout nothing secret is
reachable from the engine (a test walks the object graph to check). Guarded methods call
:meth:`Engine.assert_unlocked`, which raises :class:`~legion_nb.errors.LockedError`.

Every public method is marked :func:`~legion_nb.engine.api.engine_api`; ``subscribe`` is the event
stream (the daemon offers it as its own ``subscribe`` method, not as a ``call``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from legion_nb.engine import planning
from legion_nb.engine.api import engine_api
from legion_nb.engine.credentials import credentials_facts, set_credentials
from legion_nb.engine.diff import Diff, diff
from legion_nb.engine.events import TOPICS, Event, EventHub
from legion_nb.engine.state.model import (
    LegionState,
    PlannedDnsHost,
    PlannedDnsZone,
    PlannedDomain,
    PlannedFirewall,
    PlannedServer,
    Scheme,
    decode_state,
    empty_state,
    encode_state,
    host_fqdn,
)
from legion_nb.engine.state.validation import (
    normalize_host,
    normalize_hostname,
    normalize_label,
    normalize_zone,
    validate_provider,
)
from legion_nb.errors import LockedError, UsageError, ValidationError

if TYPE_CHECKING:
    from legion_nb.engine.state.persistence import PersistenceSupervisor, StateChange

__all__ = ["MIN_PASSWORD_LENGTH", "Engine", "EngineService", "StatusReport", "create_engine"]

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8


class EngineService(Protocol):
    """A long-lived service that lives while the state is unlocked.

    ``start`` runs after unlock/bootstrap, in registration order; ``stop`` runs at logout and close,
    in reverse order, and must release everything it got from the unlocked state.
    """

    async def start(self, engine: Engine) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StatusReport:
    state: str
    exists: bool
    unlocked: bool
    revision: int | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    providers: tuple[str, ...] = ()
    actions: Mapping[str, int] = field(default_factory=dict)


class SnapshotPublisher:
    """Publishes a "snapshot" after every committed state change (coalesced per tick by the hub).

    Its content is the plan/tracked rows of the diff; the resource-actor work replaces it with actor
    snapshots joined to these rows.
    """

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self, engine: Engine) -> None:
        persistence = engine.assert_unlocked()

        def changed(_: StateChange[LegionState]) -> None:
            self._hub.publish_snapshot(lambda: snapshot_of(persistence.state, persistence.revision))

        self._unsubscribe = persistence.subscribe(changed)
        self._hub.publish_snapshot(lambda: snapshot_of(persistence.state, persistence.revision))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._hub.forget_snapshot()
        self._hub.publish("snapshot", {"locked": True, "revision": None, "rows": []})


def snapshot_of(state: LegionState, revision: int) -> dict[str, Any]:
    """The app snapshot as of now: one row per resource with its action (no secrets, no raw records)."""
    rows = [
        {"kind": r.kind, "name": r.name, "provider": r.provider, "action": r.action, "note": r.note}
        for r in diff(state).resources
    ]
    return {"locked": False, "revision": revision, "rows": rows}


class Engine:
    """The Legion engine for one state file."""

    def __init__(self, state_path: Path, *, hub: EventHub, services: Sequence[EngineService] = ()) -> None:
        self.state_path = state_path
        self.events = hub
        self._services: list[EngineService] = list(services)
        self._persistence: PersistenceSupervisor[LegionState] | None = None
        self._lifecycle = asyncio.Lock()
        self._closed = False

    # -- services and the lock -------------------------------------------------------------

    def add_service(self, service: EngineService) -> None:
        """Register a service; it starts at the next unlock (services are wired before unlocking)."""
        self._services.append(service)

    def state_exists(self) -> bool:
        return self.state_path.exists()

    @property
    def is_unlocked(self) -> bool:
        return self._persistence is not None

    def assert_unlocked(self) -> PersistenceSupervisor[LegionState]:
        """The persistence supervisor, or :class:`LockedError` when the state is locked."""
        if self._persistence is None:
            raise LockedError("state is locked: unlock it first (legion ... / await engine.unlock(...))")
        return self._persistence

    @property
    def state(self) -> LegionState:
        """The last durable state (locked -> :class:`LockedError`)."""
        return self.assert_unlocked().state

    # -- lifecycle (engine API; results returned directly) ---------------------------------

    @engine_api
    async def bootstrap(self, password: str) -> dict[str, Any]:
        """Create a new encrypted state and unlock it; refuses to overwrite (StateExistsError)."""
        from legion_nb.engine.state.store import SecureStateStore  # noqa: PLC0415 - heavy crypto import

        _check_new_password(password)
        async with self._lifecycle:
            self._check_open()
            if self._persistence is not None:
                raise UsageError("this engine is already unlocked: log out before creating a new state")
            state = empty_state()
            store = await SecureStateStore.create(self.state_path, password, encode_state(state))
            await self._open(store, state)
        return self._auth_result()

    @engine_api
    async def unlock(self, password: str) -> dict[str, Any]:
        """Open the state with ``password`` (unlocking again re-checks the password)."""
        from legion_nb.engine.state.store import SecureStateStore  # noqa: PLC0415 - heavy crypto import

        async with self._lifecycle:
            self._check_open()
            await self._close_session()
            store, payload = await SecureStateStore.unlock(self.state_path, password)
            try:
                state = decode_state(payload)
            except BaseException:
                store.close()
                raise
            del payload
            await self._open(store, state)
        return self._auth_result()

    @engine_api
    async def logout(self) -> dict[str, Any]:
        """Drop the decrypted state, stop the services and close the store (its key is zeroed)."""
        async with self._lifecycle:
            await self._close_session()
        return self._auth_result()

    @engine_api
    async def change_password(self, old: str, new: str) -> dict[str, Any]:
        """Re-protect the state with ``new``; WrongPasswordError if ``old`` is wrong."""
        _check_new_password(new)
        if old == new:
            raise ValidationError("the new password equals the current one: nothing to change")
        await self.assert_unlocked().change_password(old, new)
        return self._auth_result()

    async def aclose(self) -> None:
        """Log out and end every subscription; the engine cannot be used afterwards."""
        async with self._lifecycle:
            await self._close_session()
            self._closed = True
        self.events.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this engine is closed: create a new one (legion_nb.open(...))")

    async def _open(self, store: Any, state: LegionState) -> None:
        from legion_nb.engine.state.persistence import PersistenceSupervisor  # noqa: PLC0415

        self._persistence = PersistenceSupervisor(store, state, encode_state)
        started: list[EngineService] = []
        try:
            for service in self._services:
                await service.start(self)
                started.append(service)
        except BaseException:
            for service in reversed(started):
                await _stop_quietly(service)
            persistence, self._persistence = self._persistence, None
            await persistence.aclose()
            raise

    async def _close_session(self) -> None:
        persistence = self._persistence
        if persistence is None:
            return
        for service in reversed(self._services):
            await _stop_quietly(service)
        self._persistence = None
        await persistence.aclose()

    def _auth_result(self) -> dict[str, Any]:
        persistence = self._persistence
        return {
            "state": str(self.state_path),
            "unlocked": persistence is not None,
            "revision": None if persistence is None else persistence.revision,
        }

    # -- reading ---------------------------------------------------------------------------

    @engine_api
    async def status(self) -> StatusReport:
        """Locked or unlocked, and when unlocked: counts, providers with credentials, pending actions."""
        exists = self.state_exists()
        if self._persistence is None:
            return StatusReport(state=str(self.state_path), exists=exists, unlocked=False)
        state = self._persistence.state
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
        return StatusReport(
            state=str(self.state_path),
            exists=exists,
            unlocked=True,
            revision=self._persistence.revision,
            counts=counts,
            providers=tuple(sorted(state.credentials)),
            actions=diff(state).counts(),
        )

    @engine_api
    async def plan_show(self) -> Scheme:
        """The planned scheme."""
        return self.state.scheme

    @engine_api
    async def diff(self) -> Diff:
        """Planned vs tracked vs observed, field by field, with the action per resource."""
        return diff(self.state)

    @engine_api
    async def credentials_show(self) -> list[dict[str, Any]]:
        """Providers with stored credentials: endpoint and field names, never secret values."""
        return credentials_facts(self.state)

    # -- changing the plan -----------------------------------------------------------------

    async def _change(self, reason: str, change: Callable[[LegionState], LegionState]) -> LegionState:
        """Apply a pure change durably; returns the committed state."""

        def step(state: LegionState) -> tuple[LegionState, LegionState]:
            new = change(state)
            return new, new

        return await self.assert_unlocked().mutate(step, reason=reason)

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
        """Plan a server (add or change); omitted choices stay empty: the catalog policy picks them."""
        args = {"server_type": server_type, "location": location, "image": image, "cluster": cluster}
        state = await self._change(
            f"plan server {name}",
            lambda s: planning.upsert_server(s, name=name, provider=provider, role=role, **args),
        )
        found = state.scheme.find_server(normalize_hostname(name, what="server name"))
        assert found is not None  # upsert_server just planned it
        return found[1]

    @engine_api
    async def plan_remove_server(self, name: str) -> dict[str, str]:
        await self._change(f"unplan server {name}", lambda s: planning.remove_server(s, name=name))
        return {"removed": "server", "name": name}

    @engine_api
    async def plan_upsert_domain(self, name: str, provider: str) -> PlannedDomain:
        state = await self._change(
            f"plan domain {name}", lambda s: planning.upsert_domain(s, name=name, provider=provider)
        )
        return state.scheme.domains[normalize_zone(name, what="domain")]

    @engine_api
    async def plan_remove_domain(self, name: str) -> dict[str, str]:
        await self._change(f"unplan domain {name}", lambda s: planning.remove_domain(s, name=name))
        return {"removed": "domain", "name": name}

    @engine_api
    async def plan_upsert_dns_zone(self, zone: str, provider: str) -> PlannedDnsZone:
        state = await self._change(
            f"plan DNS zone {zone}", lambda s: planning.upsert_dns_zone(s, zone=zone, provider=provider)
        )
        return state.scheme.dns_zones[normalize_zone(zone)]

    @engine_api
    async def plan_remove_dns_zone(self, zone: str) -> dict[str, str]:
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
    async def plan_remove_dns_host(self, host: str, zone: str) -> dict[str, str]:
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
    async def plan_remove_firewall(self, name: str) -> dict[str, str]:
        await self._change(f"unplan firewall {name}", lambda s: planning.remove_firewall(s, name=name))
        return {"removed": "firewall", "name": name}

    @engine_api
    async def credentials_set(
        self, provider: str, secrets: Mapping[str, Any], endpoint: str | None = None
    ) -> dict[str, Any]:
        """Store a provider's credentials (encrypted with the state); returns only non-secret facts."""
        state = await self._change(
            f"set {provider} credentials",
            lambda s: set_credentials(s, provider=provider, secrets=secrets, endpoint=endpoint),
        )
        record = state.credentials[validate_provider(provider)]
        return record.to_json()

    # -- events ----------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = TOPICS) -> AsyncGenerator[Event, None]:
        """Coalesced "snapshot"/"activity" events; a new subscriber first gets the latest snapshot."""
        return self.events.subscribe(topics)


def _check_new_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


async def _stop_quietly(service: EngineService) -> None:
    """Stop a service; one failing to stop must not keep the others (or the lock) from closing."""
    try:
        await service.stop()
    except Exception:  # logged, never re-raised: logout must always complete
        log.exception("stopping %s failed", type(service).__name__)


def create_engine(state_path: Path, *, services: Sequence[EngineService] = ()) -> Engine:
    """An engine for ``state_path`` with the standard services (plus ``services``), still locked."""
    hub = EventHub()
    return Engine(Path(state_path), hub=hub, services=[SnapshotPublisher(hub), *services])
