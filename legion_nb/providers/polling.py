"""When to poll a provider operation: a schedule that expects typical durations and learns them.

Why: every action poll counts against the provider's budget (Hetzner: 3600 requests an hour), and a
plain backoff from one second spends about a dozen polls on a one-minute server create. Provider work
of one kind takes roughly the same time every time, so the broker can sleep through most of it:

* **Expected duration** per ``(provider, kind)``: a prior from the policy (``expected``), then an
  exponentially weighted moving average of what the broker observed (:class:`Durations`).
* **Schedule** (:meth:`PollPolicy.due`): the first poll after ``lead`` of the expected time, the next
  just after the expected completion, then one every ``density`` of it, spreading out again (by
  ``backoff``) the longer the operation is overdue; every gap stays within ``[interval, max_interval]``.
* **Unknown kinds** (no prior, nothing observed yet) keep the plain backoff: ``interval`` growing by
  ``backoff`` per tick without progress, capped at ``max_interval`` (:meth:`PollPolicy.delay`).

An observation is what the polls prove: done at ``t`` and last seen running at ``r`` (0 if never)
brackets the duration in ``(r, t]``. An expectation inside the bracket is kept (the polls cannot tell
better); one outside moves towards the bracket's middle.

The policy is a value, the learned state is the broker's; both take elapsed seconds, so tests drive
them with a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

__all__ = ["CLOUD_DURATIONS", "Durations", "PollPolicy", "cloud_poll_policy", "kinds_key", "scaled"]

OperationKey = tuple[str, str]
"""``(provider, kinds)``: the kinds one wait covers, sorted and joined by ``+``, e.g.
``("hetzner", "create_server+start_server")``; a wait is done when its last operation is."""


def kinds_key(kinds: Iterable[str]) -> str:
    return "+".join(sorted(set(kinds)))


CLOUD_DURATIONS: Mapping[OperationKey, float] = MappingProxyType(
    {
        # Seconds from the mutation's answer until its actions finish on a real project. A create
        # answers with create_server and start_server together; the server runs about a minute later,
        # which is longer than either command takes alone (start_server is also a plain power-on).
        ("hetzner", "create_server+start_server"): 60.0,
        ("hetzner", "create_server"): 30.0,
        ("hetzner", "start_server"): 20.0,
        ("hetzner", "stop_server"): 15.0,
        ("hetzner", "shutdown_server"): 30.0,
        ("hetzner", "reboot_server"): 20.0,
        ("hetzner", "rebuild_server"): 60.0,
        ("hetzner", "delete_server"): 15.0,
    }
)
"""Priors for real clouds; kinds not listed start with the plain backoff and are learned."""


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll pending operations; give up after ``timeout`` seconds (None: never).

    ``interval``/``backoff``/``max_interval`` are the plain backoff for operations of unknown
    duration, and the floor, overdue growth and cap of every gap in the expecting schedule.
    ``expected`` holds prior durations per ``(provider, kinds)`` in seconds (see
    :data:`OperationKey`); ``lead`` is the share of the expected time slept before the first poll;
    ``density`` the share between polls near the expected completion; ``learning`` the weight of
    each new observation (0 keeps the priors). A bare ``PollPolicy()`` has no priors (emulators and
    tests run on their own time scale); :func:`cloud_poll_policy`, the broker's default, has them.
    """

    interval: float = 1.0
    backoff: float = 1.5
    max_interval: float = 10.0
    timeout: float | None = 900.0
    expected: Mapping[OperationKey, float] = field(default_factory=dict, hash=False)
    lead: float = 0.85
    density: float = 0.1
    learning: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.lead <= 1.0 or not 0.0 <= self.learning <= 1.0 or self.density < 0.0:
            raise ValueError("poll policy: lead and learning must lie in [0, 1] and density be >= 0")

    def delay(self, idle_ticks: int) -> float:
        """Plain backoff: the gap before the next poll after ``idle_ticks`` polls without progress."""
        return min(self.max_interval, self.interval * float(self.backoff**idle_ticks))

    def gap(self, expected: float, elapsed: float) -> float:
        """The gap after a poll at ``elapsed`` seconds: dense near ``expected``, growing once overdue."""
        overdue = max(0.0, elapsed - expected) * max(0.0, self.backoff - 1.0)
        return min(self.max_interval, max(self.interval, self.density * expected, overdue))

    def due(self, expected: float, last_poll: float | None) -> float:
        """Seconds after a wait started at which to poll it next, given when it was last polled (by
        its own tick or another wait's: a batched poll reads every pending operation).

        The first poll comes after ``lead`` of the expected time (an earlier poll made for another
        wait does not count unless it was close); a wait still running then is polled next just
        after its expected completion, and from there every ``gap``."""
        first = self.lead * expected
        if last_poll is None:
            return first
        step = self.gap(expected, last_poll)
        if last_poll < first - step:
            return first
        if last_poll < expected:
            return max(last_poll + step, expected + step / 2)
        return last_poll + step


def cloud_poll_policy() -> PollPolicy:
    """The default for real providers: plain backoff from 1 s, priors from :data:`CLOUD_DURATIONS`."""
    return PollPolicy(expected=CLOUD_DURATIONS)


def scaled(policy: PollPolicy, factor: float) -> PollPolicy:
    """``policy`` with every duration multiplied by ``factor`` (for emulators that run time faster)."""
    return replace(
        policy,
        interval=policy.interval * factor,
        max_interval=policy.max_interval * factor,
        timeout=None if policy.timeout is None else policy.timeout * factor,
        expected={key: seconds * factor for key, seconds in policy.expected.items()},
    )


class Durations:
    """Expected durations per ``(provider, kinds)``: the policy's priors, moved by observations.

    A wait for several kinds without a prior or observation of its own expects the longest of its
    kinds, when each is known; otherwise nothing is known and the plain backoff applies.
    """

    def __init__(self, policy: PollPolicy) -> None:
        self._policy = policy
        self._learned: dict[OperationKey, float] = {}

    def _known(self, key: OperationKey) -> float | None:
        learned = self._learned.get(key)
        return learned if learned is not None else self._policy.expected.get(key)

    def expect(self, provider: str, kinds: Iterable[str]) -> float | None:
        """Seconds until every operation of these kinds is expected done, or None if unknown."""
        distinct = sorted(set(kinds))
        whole = self._known((provider, "+".join(distinct)))
        if whole is not None or len(distinct) < 2:
            return whole
        parts = [self._known((provider, kind)) for kind in distinct]
        return None if any(p is None for p in parts) else max(p for p in parts if p is not None)

    def observe(self, provider: str, kinds: Iterable[str], after: float, by: float) -> None:
        """Fold in one completion known to lie in ``(after, by]`` seconds after the start.

        An expectation inside that bracket is confirmed and kept; one outside it moves towards the
        bracket's middle by the policy's ``learning`` weight."""
        kinds = tuple(kinds)
        after, by = max(0.0, after), max(0.0, by)
        middle = (after + by) / 2
        key = (provider, kinds_key(kinds))
        current = self.expect(provider, kinds)
        if current is None:
            self._learned[key] = middle
        elif not after < current <= by:
            weight = self._policy.learning
            self._learned[key] = (1.0 - weight) * current + weight * middle

    def snapshot(self) -> dict[OperationKey, float]:
        """Every known expectation (priors and learned), for benchmarks and status views."""
        return {**self._policy.expected, **self._learned}
