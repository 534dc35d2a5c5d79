"""Create intents kept in the encrypted state: the engine's ``PendingRecorder``.

Why in the state: a create is only safe to send once its intent is durable. If Legion dies between
the provider accepting a create and the tracked record being written, the next run finds the
``CreatePending`` entry and settles it by looking the resource up by its Legion id; it never sends
the create again blind. The provider layer cannot import the engine, so the engine implements the
recorder protocol here, on the persistence supervisor.

``clear`` deliberately leaves the record in place. Resilience calls it the moment a create returns,
before the actor has written the tracked record; removing the intent there would open a window in
which a crash leaves a running server that Legion neither tracks nor remembers creating. Instead the
actor drops the intent in the same state write that records the outcome
(:func:`~legion_nb.engine.state.edits.without_pending`):
the tracked resource on success, nothing on a refusal. An intent left behind costs one lookup on the
next wave, never a duplicate.
"""

from __future__ import annotations

from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.state.edits import with_pending
from legion_nb.engine.state.model import PROVIDERS, CreatePending, LegionState, Provider, utcnow
from legion_nb.providers.ownership import LEGION_ID_LABEL
from legion_nb.providers.resilience import CreateIntent

__all__ = ["StatePendingRecorder", "intent_of", "pending_for"]


def _provider(name: str) -> Provider:
    for provider in PROVIDERS:
        if provider == name:
            return provider
    raise ValueError(f"unknown provider {name!r}")


def intent_of(record: CreatePending) -> CreateIntent | None:
    """The resilience intent a stored record describes; None for kinds resilience cannot settle."""
    legion_id = record.labels.get(LEGION_ID_LABEL)
    if legion_id is None or record.kind == "domain":
        return None
    return CreateIntent(record.provider, record.kind, record.name, legion_id)


def pending_for(state: LegionState, kind: str, provider: str, name: str) -> CreateIntent | None:
    """The pending create of ``kind`` named ``name`` at ``provider``, if one was left behind."""
    for record in state.tracked.pending.values():
        if record.kind == kind and record.provider == provider and record.name == name:
            return intent_of(record)
    return None


class StatePendingRecorder:
    """``PendingRecorder`` on the state: ``record`` returns once the intent is on disk."""

    def __init__(self, state: StatePort) -> None:
        self._state = state

    async def record(self, intent: CreateIntent) -> None:
        entry = CreatePending(
            key=intent.legion_id,
            provider=_provider(intent.provider),
            kind=intent.kind,
            name=intent.name,
            started=utcnow(),
            labels=intent.ownership.as_labels(),
        )
        await self._state.mutate(
            lambda state: (with_pending(state, entry), None), reason=f"pending create {intent.describe()}"
        )

    async def clear(self, intent: CreateIntent) -> None:
        """Kept until the actor writes the outcome with ``without_pending`` (module notes)."""
        del intent
