"""A node's health from its polls: pure classification, so every rule is a test on plain values.

Each poll of a cluster node's admin API becomes a :class:`NodeProbe` (what the node answered, or why
it did not). :func:`classify` folds the probe into the node's previous :class:`NodeHealth`:

* **Missed polls never flap.** A poll the admin API did not answer (unreachable, refused the
  handshake, answered HTTP 500) keeps the previous verdict; only ``tolerance`` misses in a row
  (two by default) make the node ``unreachable``, with the last error as the reason.
* **What the node says counts at once.** A stopped ``tribes``, peer sync not listening on 4413,
  or a failing readiness check make the node ``unhealthy``; Tang not serving or stale metrics make
  it ``degraded``. Every finding is one clause of ``reason``, worst first.
* **Stale metrics** means no sample newer than two intervals - the observation interval or the
  node's own sampling interval, whichever is longer - so a node sampling every 15 s is not stale
  because it is polled every second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["HealthVerdict", "NodeHealth", "NodeProbe", "classify", "probe_of"]

HealthVerdict = Literal["healthy", "degraded", "unhealthy", "unreachable"]

_RANK: dict[HealthVerdict, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2, "unreachable": 3}

_SERVICE_CHECKS: tuple[tuple[str, HealthVerdict, str], ...] = (
    ("tribes", "unhealthy", "tribes is {state}"),
    ("tribes-sync", "unhealthy", "peer sync (4413) is {state}"),
    ("tang", "degraded", "tang is {state}"),
)


@dataclass(frozen=True, slots=True)
class NodeProbe:
    """One poll of one node. ``error`` set means the admin API did not answer usefully (a miss)."""

    node: str
    at: float
    """When the poll ended (seconds since the epoch)."""
    error: str | None = None
    ready: bool | None = None
    failing: tuple[str, ...] = ()
    """Readiness checks the node reports failing."""
    services: Mapping[str, str] = field(default_factory=dict)
    """``systemctl is-active`` words per service: tribes, tribes-sync, tang."""
    sampled_at: float | None = None
    """The newest metrics sample the node serves (seconds since the epoch)."""
    sample_interval: float = 0.0
    """How often the node samples its metrics (seconds)."""

    @property
    def missed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """The verdict after the last poll: what the snapshot shows as ``health``, ``checked_at``, ``reason``."""

    node: str
    health: HealthVerdict
    checked_at: float
    reason: str | None = None
    misses: int = 0
    """Polls in a row the admin API did not answer."""
    answered_at: float | None = None
    """The last poll the admin API answered."""


def probe_of(
    node: str,
    at: float,
    *,
    health: Mapping[str, object] | None = None,
    readiness: tuple[bool, tuple[str, ...]] | None = None,
    metrics: Mapping[str, object] | None = None,
) -> NodeProbe:
    """A probe from the admin API's ``/v1/health``, ``/v1/readiness`` and ``/v1/metrics`` bodies."""
    services_raw = (health or {}).get("services")
    services = {str(k): str(v) for k, v in services_raw.items()} if isinstance(services_raw, Mapping) else {}
    sampled = (metrics or {}).get("sampled_at_ms")
    interval = (metrics or {}).get("sample_interval_ms")
    return NodeProbe(
        node=node,
        at=at,
        ready=None if readiness is None else readiness[0],
        failing=() if readiness is None else readiness[1],
        services=services,
        sampled_at=float(sampled) / 1000.0 if isinstance(sampled, int | float) else None,
        sample_interval=float(interval) / 1000.0 if isinstance(interval, int | float) else 0.0,
    )


def classify(
    previous: NodeHealth | None, probe: NodeProbe, *, interval: float, tolerance: int = 2
) -> NodeHealth:
    """Fold ``probe`` into ``previous`` (module notes); ``interval`` is the observation interval."""
    if probe.missed:
        misses = (previous.misses if previous is not None else 0) + 1
        answered = previous.answered_at if previous is not None else None
        if misses < tolerance and previous is not None:
            return NodeHealth(probe.node, previous.health, probe.at, previous.reason, misses, answered)
        reason = f"admin API not answering ({misses} polls in a row): {probe.error}"
        return NodeHealth(probe.node, "unreachable", probe.at, reason, misses, answered)
    findings: list[tuple[HealthVerdict, str]] = []
    for service, verdict, words in _SERVICE_CHECKS:
        state = probe.services.get(service)
        if state is not None and state != "active":
            findings.append((verdict, words.format(state=state)))
    if probe.ready is False:
        checks = ", ".join(probe.failing) or "no checks named"
        findings.append(("unhealthy", f"not ready (failing: {checks})"))
    if probe.sampled_at is not None:
        age = probe.at - probe.sampled_at
        window = 2 * max(interval, probe.sample_interval)
        if age > window:
            findings.append(("degraded", f"metrics stale (newest sample {age:.0f} s old)"))
    if not findings:
        return NodeHealth(probe.node, "healthy", probe.at, None, 0, probe.at)
    findings.sort(key=lambda item: -_RANK[item[0]])
    reason = "; ".join(words for _, words in findings)
    return NodeHealth(probe.node, findings[0][0], probe.at, reason, 0, probe.at)
