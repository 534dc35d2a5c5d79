"""The observation scheduler: Legion keeps watching while an engine is unlocked.

Why one scheduler: provider refreshes, catalog reads, node polls, telemetry and log collection,
billing collection and repairs all run on timers against budgets that are shared (a provider's
request budget, one machine's CPU), and an operator wants one place that says what ran when, how
long it took and what failed. Each of them is one :class:`Concern` registered here - a name, an
async ``run`` returning how many items it handled, an interval - and the scheduler owns the rest:

* **One task per concern, owned by the scheduler.** Entering the scheduler starts them (when its
  settings say it runs); closing it cancels and awaits them, so nothing outlives the session.
* **Interval and jitter.** The first run comes one interval (+- jitter) after the start - a notebook
  or command that unlocks briefly costs nothing, and a daemon start does not fire every concern at
  once (``legion observe`` runs each concern once up front) - and each next run one interval
  (+- jitter) after the previous one *ended*: a slow run never queues a backlog.
* **A concern never overlaps itself**: a run from :meth:`ObservationScheduler.run_once` (``legion
  observe --once``) and the timer share one lock per concern.
* **Provider-heavy concerns yield to applies.** While materialize runs they are deferred (retried
  after ``defer_seconds``), and all their provider calls run inside
  :func:`~legion_nb.providers.broker.background_calls`: the broker serves them only when no
  foreground call waits and within the configured share of each provider's hourly budget.
* **A status record per concern** (last run, duration, ok, items, error, next run, runs, deferrals)
  goes to the app snapshot's ``observation`` section, and every run's end is one ``activity`` item.

A failing concern is recorded and logged, never fatal: the next run comes on schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from legion_nb.engine.redaction import redact
from legion_nb.engine.results import ConcernRecord, ObservationView
from legion_nb.engine.tasks import ServiceTasks
from legion_nb.errors import LegionError, UsageError
from legion_nb.providers.broker import background_calls

__all__ = [
    "CONCERNS",
    "Concern",
    "ConcernStatus",
    "ObservationScheduler",
    "ObservationSettings",
]

log = logging.getLogger(__name__)

CONCERNS: tuple[str, ...] = ("providers", "catalogs", "nodes", "telemetry", "logs", "billing", "repairs")
"""Every concern the engine registers, in the order a one-shot pass runs them."""

DEFAULT_INTERVALS: Mapping[str, float] = {
    "providers": 300.0,
    "catalogs": 3600.0,
    "nodes": 30.0,
    "telemetry": 60.0,
    "logs": 30.0,
    "billing": 3600.0,
    "repairs": 300.0,
}


@dataclass(frozen=True, slots=True)
class ObservationSettings:
    """How the session's scheduler runs (part of :class:`~legion_nb.engine.session.SessionSettings`).

    ``run`` starts the timers at unlock (False: concerns run only when asked, e.g. ``legion
    observe --once`` or a test); ``intervals`` override :data:`DEFAULT_INTERVALS` per concern;
    ``enabled`` names the concerns that run (None: all); ``share`` is the fraction of each
    provider's hourly request budget observation may spend; ``defer_seconds`` is how soon a
    provider-heavy concern deferred by an apply tries again.
    """

    run: bool = True
    intervals: Mapping[str, float] = field(default_factory=dict)
    enabled: frozenset[str] | None = None
    jitter: float = 0.1
    share: float = 0.1
    defer_seconds: float = 5.0
    health_tolerance: int = 2
    """Node polls in a row the admin API may miss before the node reads unreachable."""

    def __post_init__(self) -> None:
        unknown = sorted(n for n in set(self.intervals) | set(self.enabled or ()) if n not in CONCERNS)
        if unknown:
            choices = ", ".join(CONCERNS)
            raise UsageError(f"unknown observation concern {', '.join(unknown)}; choose from {choices}")
        for name, seconds in self.intervals.items():
            if not seconds > 0:
                raise UsageError(f"observation interval of {name} must be positive, not {seconds}")
        if not 0.0 <= self.jitter < 1.0:
            raise UsageError(f"observation jitter {self.jitter} must lie in [0, 1)")
        if not 0.0 < self.share <= 1.0:
            raise UsageError(f"observation share {self.share} must lie in (0, 1]")

    def interval(self, concern: str) -> float:
        return self.intervals.get(concern, DEFAULT_INTERVALS.get(concern, 60.0))

    def is_enabled(self, concern: str) -> bool:
        return self.enabled is None or concern in self.enabled


@dataclass(frozen=True, slots=True)
class Concern:
    """One thing the scheduler runs: ``run`` returns how many items it handled (nodes polled,
    samples stored, rows written). ``provider_heavy`` concerns defer to applies."""

    name: str
    run: Callable[[], Awaitable[int]]
    provider_heavy: bool = False


@dataclass(frozen=True, slots=True)
class ConcernStatus:
    """The status record of one concern (times are seconds since the epoch)."""

    name: str
    interval: float
    enabled: bool
    running: bool = False
    last_run: float | None = None
    seconds: float | None = None
    ok: bool | None = None
    items: int = 0
    error: str | None = None
    next_run: float | None = None
    runs: int = 0
    deferred: int = 0

    def to_json(self) -> ConcernRecord:
        return {
            "concern": self.name,
            "interval": self.interval,
            "enabled": self.enabled,
            "running": self.running,
            "last_run": _iso(self.last_run),
            "seconds": None if self.seconds is None else round(self.seconds, 4),
            "ok": self.ok,
            "items": self.items,
            "error": self.error,
            "next_run": _iso(self.next_run),
            "runs": self.runs,
            "deferred": self.deferred,
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}+00:00"


@dataclass(eq=False)
class _Slot:
    concern: Concern
    status: ConcernStatus
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ObservationScheduler:
    """Runs the registered concerns on their schedules while the session lives (module notes).

    Built from ports: ``applying`` says whether an apply runs now; ``changed`` is called after
    every status change (the snapshot publisher marks itself dirty); ``publish`` posts an activity
    item. ``clock``, ``sleep`` and ``rng`` are injectable so tests run without real waiting.
    """

    def __init__(
        self,
        settings: ObservationSettings,
        *,
        applying: Callable[[], bool] = lambda: False,
        changed: Callable[[], None] = lambda: None,
        publish: Callable[[dict[str, Any]], None] = lambda item: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._applying = applying
        self._changed = changed
        self._publish = publish
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - timer jitter, nothing secret
        self._slots: dict[str, _Slot] = {}
        self._tasks = ServiceTasks("observation scheduler")
        self._started = False

    # -- registration --------------------------------------------------------------------------

    def register(self, concern: Concern) -> None:
        """Add (or replace) a concern; registered after the start, it starts at once."""
        if concern.name in self._slots:
            self._slots[concern.name].concern = concern
            return
        name = concern.name
        status = ConcernStatus(name, self.settings.interval(name), self.settings.is_enabled(name))
        slot = self._slots[name] = _Slot(concern, status)
        if self._started and status.enabled:
            self._spawn(slot)

    def concerns(self) -> tuple[str, ...]:
        return tuple(self._slots)

    # -- the session service -------------------------------------------------------------------

    async def __aenter__(self) -> ObservationScheduler:
        self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start every enabled concern's timer (only when the settings say the scheduler runs)."""
        if self._started or not self.settings.run:
            return
        self._started = True
        for slot in self._slots.values():
            if slot.status.enabled:
                self._spawn(slot)

    async def aclose(self) -> None:
        """Cancel every timer and any run in progress, and wait for them."""
        await self._tasks.aclose()

    @property
    def running(self) -> bool:
        return self._started and not self._tasks.closed

    # -- running ---------------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        self._tasks.spawn(self._loop(slot), name=f"observe {slot.concern.name}")

    async def _loop(self, slot: _Slot) -> None:
        interval = slot.status.interval
        self._set(slot, next_run=self._clock() + interval * self._spread())
        while True:
            next_run = slot.status.next_run or self._clock()
            await self._sleep(max(0.0, next_run - self._clock()))
            if slot.concern.provider_heavy and self._applying():
                delay = min(interval, self.settings.defer_seconds)
                self._set(slot, deferred=slot.status.deferred + 1, next_run=self._clock() + delay)
                continue
            await self._run(slot)
            self._set(slot, next_run=self._clock() + interval * self._spread())

    def _spread(self) -> float:
        return 1.0 + self.settings.jitter * (2.0 * self._rng.random() - 1.0)

    async def run_once(self, names: Iterable[str] | None = None) -> dict[str, ConcernStatus]:
        """Run each selected concern once, one after the other, and return their records.

        ``names`` default to every enabled concern; an unknown name raises :class:`UsageError`.
        A concern already running (on its timer) is waited for, never run twice at once.
        """
        chosen = list(self._slots) if names is None else list(dict.fromkeys(names))
        unknown = [n for n in chosen if n not in self._slots]
        if unknown:
            known = ", ".join(self._slots) or "none"
            raise UsageError(f"unknown observation concern {', '.join(unknown)}; this engine runs: {known}")
        if names is None:
            chosen = [n for n in chosen if self._slots[n].status.enabled]
        for name in chosen:
            await self._run(self._slots[name])
        return {name: self._slots[name].status for name in chosen}

    async def _run(self, slot: _Slot) -> None:
        async with slot.lock:
            self._set(slot, running=True)
            started = self._clock()
            began = time.perf_counter()
            items, error = 0, None
            try:
                with background_calls() if slot.concern.provider_heavy else contextlib.nullcontext():
                    items = int(await slot.concern.run())
            except LegionError as exc:
                error = redact(exc.message)
            except Exception as exc:  # a concern's bug is recorded and logged; the others keep running
                log.exception("observation concern %s failed", slot.concern.name)
                error = redact(f"{type(exc).__name__}: {exc}")
            seconds = time.perf_counter() - began
            self._set(
                slot,
                running=False,
                last_run=started,
                seconds=seconds,
                ok=error is None,
                items=items,
                error=error,
                runs=slot.status.runs + 1,
            )
        summary = (
            f"observation {slot.concern.name}: {items} item(s) in {seconds:.2f} s"
            if error is None
            else f"observation {slot.concern.name} failed: {error}"
        )
        self._publish(
            {
                "event": "observation",
                "concern": slot.concern.name,
                "status": "succeeded" if error is None else "failed",
                "time": _iso(started),
                "summary": summary,
            }
        )

    def _set(self, slot: _Slot, **changes: Any) -> None:
        slot.status = replace(slot.status, **changes)
        self._changed()

    # -- reading -----------------------------------------------------------------------------------

    def status(self) -> list[ConcernStatus]:
        return [slot.status for slot in self._slots.values()]

    def section(self) -> ObservationView:
        """The app snapshot's ``observation`` section."""
        return {
            "running": self.running,
            "share": self.settings.share,
            "concerns": [status.to_json() for status in self.status()],
        }
