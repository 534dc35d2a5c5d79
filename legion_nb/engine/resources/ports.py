"""What the resource actors need from the rest of the engine, as protocols.

Why protocols: the actors are built and tested against the real broker, resilience layer and
persistence supervisor, but the engine service that owns provider adapters (registering them from
stored credentials, refreshing catalogs) is written separately. Coding the actors against these
two narrow ports keeps that seam explicit and lets tests assemble the same parts directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from legion_nb.engine.state.model import LegionState
from legion_nb.engine.state.persistence import StateChange
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.records import Catalog
from legion_nb.providers.resilience import Resilience

__all__ = ["ProviderAccess", "StatePort"]

R = TypeVar("R")


class ProviderAccess(Protocol):
    """Provider calls for actors. Every call goes through ``broker.read``/``mutate``/``wait``;
    creates and deletes go through ``resilience`` (durable pending intents + settling).
    A provider without stored credentials raises ``ProviderAuthError`` naming
    ``legion credentials set PROVIDER`` when it is used."""

    @property
    def broker(self) -> ProviderBroker: ...

    @property
    def resilience(self) -> Resilience: ...

    def catalog(self, provider: str) -> Catalog:
        """The catalog refreshed into the state, else the embedded one."""
        ...

    def has_credentials(self, provider: str) -> bool: ...


class StatePort(Protocol):
    """The durable state as the session's services see it: the ``PersistenceSupervisor[LegionState]``.
    ``mutate`` takes a pure ``fn(state) -> (new_state, result)`` and returns ``result`` once the new
    state is durable; ``subscribe`` calls the listener after every commit."""

    @property
    def state(self) -> LegionState: ...

    @property
    def revision(self) -> int:
        """How many commits the state has had since it was unlocked."""
        ...

    async def mutate(self, fn: Callable[[LegionState], tuple[LegionState, R]], *, reason: str) -> R: ...

    def subscribe(self, listener: Callable[[StateChange[LegionState]], None]) -> Callable[[], None]: ...
