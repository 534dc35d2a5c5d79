"""Serialized, coalescing, durable mutations of an immutable state value.

The :class:`PersistenceSupervisor` is the only writer of the state: every change is a pure function
from the current state to a new one, and nobody sees a state that is not on disk. It keeps two
things: the last *durable* state (a reference to an immutable value, so keeping it is free) and a
queue of mutations that have been asked for but not yet written.

One drain task (owned by the supervisor, started when work arrives, ending when the queue is empty)
takes every queued mutation at once, applies them in order to the durable state, encodes the result
and saves it with one write. Mutations that arrive while that write is in flight wait for the next
batch: under load, a thousand mutations cost a handful of writes, and each caller still resumes only
once the write holding its change is durable. A mutation that raises is dropped alone (its caller
gets the exception, the rest of the batch goes on); a write that fails fails every mutation of its
batch and the durable state stays what it was.

Cancelling a caller of :meth:`PersistenceSupervisor.mutate` withdraws its mutation if the drain task
has not taken it yet; once taken, the change is written with its batch regardless.

**Another process saved in between.** Given ``decode``, the supervisor never fails a batch because
the file moved on (a CLI command or a notebook wrote the same state): the store hands it the latest
payload under the write lock, the batch is applied again on top of it (mutations are pure, so that
is always possible) and the result is written. The commit's ``before`` is what this process last
held, its ``after`` includes the other process's changes: listeners re-sync from it like from any
commit. Without ``decode``, such a save fails with :class:`StateConflictError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from legion_nb.engine.state.store import SecureStateStore
from legion_nb.errors import LockedError

__all__ = ["PersistenceSupervisor", "StateChange"]

logger = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class StateChange(Generic[S]):
    """One durable commit: the states either side of it, its revision and the reasons of its batch."""

    before: S = field(repr=False)
    after: S = field(repr=False)
    revision: int
    reasons: tuple[str, ...]


@dataclass(slots=True)
class _Mutation(Generic[S]):
    fn: Callable[[S], tuple[S, Any]]
    reason: str
    done: asyncio.Future[Any]


_Outcome = tuple[_Mutation[S], bool, Any]
"""A mutation, whether it succeeded, and its result or its exception."""


def _apply(batch: list[_Mutation[S]], state: S) -> tuple[S, list[_Outcome[S]]]:
    """Apply ``batch`` in order to ``state``; pure, so it may run again on a newer state (and in a
    worker thread: it touches no future, :func:`_settle` does that on the loop)."""
    outcomes: list[_Outcome[S]] = []
    for mutation in batch:
        try:
            state, result = mutation.fn(state)
        except Exception as exc:  # the mutation's own failure goes to its own caller only
            outcomes.append((mutation, False, exc))
            continue
        outcomes.append((mutation, True, result))
    return state, outcomes


def _settle(outcomes: list[_Outcome[S]]) -> None:
    for mutation, ok, value in outcomes:
        if mutation.done.done():  # its caller was cancelled meanwhile
            continue
        if ok:
            mutation.done.set_result(value)
        else:
            mutation.done.set_exception(value)


def _listener_name(listener: object) -> str:
    # Never repr() a listener: a bound method's repr includes its object's, which may hold secrets.
    return str(getattr(listener, "__qualname__", type(listener).__qualname__))


class PersistenceSupervisor(Generic[S]):
    """Owns the state value and its store; see the module notes for the batching contract."""

    def __init__(
        self,
        store: SecureStateStore,
        state: S,
        encode: Callable[[S], bytes],
        decode: Callable[[bytes], S] | None = None,
    ) -> None:
        self._store = store
        self._durable = state
        self._encode = encode
        self._decode = decode
        self._revision = 0
        self._queue: list[_Mutation[S]] = []
        self._listeners: list[Callable[[StateChange[S]], None]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._io = asyncio.Lock()  # a batch write or a password change, never both
        self._closing = False

    def __repr__(self) -> str:
        return f"PersistenceSupervisor({self._store!r}, revision {self._revision})"

    @property
    def state(self) -> S:
        """The last durable state: what the file on disk holds."""
        return self._durable

    @property
    def revision(self) -> int:
        """How many commits this supervisor has made (0 right after unlock)."""
        return self._revision

    @property
    def store(self) -> SecureStateStore:
        return self._store

    async def mutate(self, fn: Callable[[S], tuple[S, R]], *, reason: str) -> R:
        """Apply ``fn`` to the state and return its result once the new state is durable.

        ``fn`` must be pure: it gets the state with every earlier mutation applied and returns
        ``(new_state, result)``. If it raises, nothing changes and the exception reaches this caller
        only. If the write fails, the write's error is raised here (and to every other caller of the
        same batch). Raises :class:`LockedError` once :meth:`aclose` has begun.
        """
        if self._closing:
            raise LockedError("the state is locked; unlock it before changing it")
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Mutation(fn, reason, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="legion-state-persistence")
        return await done

    def subscribe(self, listener: Callable[[StateChange[S]], None]) -> Callable[[], None]:
        """Call ``listener`` after every commit, in commit order; returns the unsubscribe function.

        Listeners run synchronously in the drain task, before any caller of that commit resumes:
        what a listener does without waiting is in place when :meth:`mutate` returns (the provider
        service registers new credentials this way). Keep them short (schedule longer work, do not
        do it). One that raises is logged and the others still run.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def change_password(self, old: str, new: str) -> None:
        """Re-encrypt the state under ``new``; waits for a write in flight, never runs beside one."""
        if self._closing:
            raise LockedError("the state is locked; unlock it before changing its password")
        async with self._io:
            await self._store.change_password(old, new)

    async def aclose(self) -> None:
        """Refuse new mutations, let queued ones finish writing, then drop the store's key."""
        self._closing = True
        while self._drainer is not None and not self._drainer.done():
            await asyncio.wait({self._drainer})  # never cancels it, never raises its exception
        async with self._io:
            self._store.close()

    # -- the drain task -------------------------------------------------------------------------

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                async with self._io:
                    await self._commit(batch)
        except BaseException:  # cancelled (loop shutting down): queued callers must not wait forever
            for mutation in self._queue:
                mutation.done.cancel()
            self._queue = []
            raise

    async def _commit(self, batch: list[_Mutation[S]]) -> None:
        live = [mutation for mutation in batch if not mutation.done.done()]  # others were withdrawn
        state, outcomes = _apply(live, self._durable)
        if not any(ok for _mutation, ok, _value in outcomes):
            _settle(outcomes)
            return
        rebased: list[tuple[S, list[_Outcome[S]]]] = []

        def on_top_of(latest: bytes) -> bytes:  # a worker thread, holding the write lock
            assert self._decode is not None
            result = _apply(live, self._decode(latest))
            rebased.append(result)
            return self._encode(result[0])

        try:
            payload = await asyncio.to_thread(self._encode, state)
            await self._store.save(payload, rebase=on_top_of if self._decode is not None else None)
        except Exception as exc:  # a failed write fails its whole batch; the durable state stays
            _settle([(mutation, False, exc if ok else value) for mutation, ok, value in outcomes])
            return
        except BaseException:  # cancelled mid-write: nobody may believe their change is durable
            for mutation, ok, _value in outcomes:
                if ok:
                    mutation.done.cancel()
            _settle([outcome for outcome in outcomes if not outcome[1]])
            raise
        if rebased:
            state, outcomes = rebased[-1]
            logger.info(
                "state %s was saved by another process; this batch was applied on top of it", self._store.path
            )
        change = StateChange(
            before=self._durable,
            after=state,
            revision=self._revision + 1,
            reasons=tuple(mutation.reason for mutation, ok, _value in outcomes if ok),
        )
        self._durable = state
        self._revision = change.revision
        _settle(outcomes)
        self._notify(change)

    def _notify(self, change: StateChange[S]) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(change)
            except Exception:  # one broken listener must not starve the others or the writer
                logger.exception(
                    "state listener %s failed on revision %d", _listener_name(listener), change.revision
                )
