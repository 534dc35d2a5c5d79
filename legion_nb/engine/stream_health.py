"""A Sender stream's state from its probes: a pure fold, so every rule is a test on plain values.

Each probe asks the satellite for the session (state, bytes delivered, error) and opens a TCP
connection to the endpoint (reachable, latency). :func:`classify` folds it into the previous
:class:`StreamStatus`:

* ``stopped``: the plan says the stream is stopped.
* ``failed``: the satellite does not answer, its session reports a failure, or the endpoint does
  not accept connections; the reason says which.
* ``starting``: the session is not running on the satellite yet, or has delivered nothing yet.
* ``live``: more bytes delivered than at the previous probe.
* ``stalled``: the session has delivered bytes before but none since the previous probe - so a
  stalled sender reads ``stalled`` at the latest on the second probe after it stopped sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from legion_nb.engine.state.model import PlannedStream

__all__ = ["StreamProbe", "StreamState", "StreamStatus", "classify"]

StreamState = Literal["starting", "live", "stalled", "stopped", "failed"]


@dataclass(frozen=True, slots=True)
class StreamProbe:
    """One probe of one stream (``at``: seconds since the epoch)."""

    at: float
    session: Mapping[str, object] | None = None
    """The satellite's report of the session; None when it runs none."""
    satellite_error: str | None = None
    """Set when the satellite did not answer."""
    reachable: bool | None = None
    latency_ms: float | None = None
    endpoint_error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What ``legion stream list`` and the snapshot show of a stream."""

    name: str
    satellite: str
    endpoint: str
    state: StreamState
    reason: str | None = None
    bytes: int = 0
    reachable: bool | None = None
    latency_ms: float | None = None
    checked_at: float | None = None
    progressed_at: float | None = None
    """The last probe that saw more bytes delivered."""


def classify(previous: StreamStatus | None, planned: PlannedStream, probe: StreamProbe) -> StreamStatus:
    """Fold ``probe`` into ``previous`` for ``planned`` (module notes)."""
    before = previous.bytes if previous is not None else 0
    progressed = previous.progressed_at if previous is not None else None
    base = StreamStatus(
        planned.name,
        planned.satellite,
        planned.endpoint,
        "starting",
        bytes=before,
        reachable=probe.reachable,
        latency_ms=probe.latency_ms,
        checked_at=probe.at,
        progressed_at=progressed,
    )

    def status(state: StreamState, reason: str | None, delivered: int = before) -> StreamStatus:
        return StreamStatus(
            base.name,
            base.satellite,
            base.endpoint,
            state,
            reason,
            delivered,
            base.reachable,
            base.latency_ms,
            base.checked_at,
            probe.at if delivered > before else progressed,
        )

    if not planned.running:
        return status("stopped", "stopped by the operator")
    if probe.satellite_error is not None:
        return status("failed", probe.satellite_error)
    session = probe.session
    if session is None:
        return status("starting", f"no session on satellite {planned.satellite} yet")
    raw = session.get("bytes")
    delivered = int(raw) if isinstance(raw, int) else before
    if session.get("state") == "failed":
        return status("failed", f"sender failed: {session.get('error') or 'no reason given'}", delivered)
    if probe.reachable is False:
        why = probe.endpoint_error or planned.endpoint
        return status("failed", f"endpoint unreachable: {why}", delivered)
    if delivered > before:
        return status("live", None, delivered)
    if delivered == 0:
        return status("starting", "no bytes delivered yet", delivered)
    since = progressed if progressed is not None else probe.at
    return status("stalled", f"no bytes delivered for {probe.at - since:.0f} s", delivered)
