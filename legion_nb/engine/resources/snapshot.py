"""What an actor believes about one resource, as a plain immutable record.

Why a separate record: widgets, the CLI, the daemon and the app snapshot assembler all read actor
beliefs, but none of them may reach into a live statechart (its configuration changes under them and
its callbacks hold provider clients). An :class:`ActorSnapshot` is computed from the statechart's
current configuration whenever the actor changes, carries only display-safe facts (never a secret),
and bumps ``revision`` so listeners can drop stale copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "RESOURCE_KINDS",
    "ActorSnapshot",
    "Health",
    "ResourceKey",
    "ResourceKind",
    "key_order",
]

ResourceKind = Literal["server", "domain", "dns_zone", "firewall", "floating_ip", "primary_ip"]
"""What a row of the app snapshot is about. Actors exist for :data:`RESOURCE_KINDS`; a public IP
has a row only as an orphan a refresh saw, and no actor."""
RESOURCE_KINDS: tuple[ResourceKind, ...] = ("server", "domain", "dns_zone", "firewall")
Health = Literal["unknown", "healthy", "degraded", "unhealthy", "unreachable"]


@dataclass(frozen=True, slots=True, order=True)
class ResourceKey:
    """The identity of one actor: its kind and the name the operator plans it under
    (``"web-1"``, ``"example.org"``; a firewall's identity is its provider firewall set)."""

    kind: ResourceKind
    identity: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.identity}"


def key_order(key: ResourceKey) -> tuple[str, str]:
    """The keys' own order as a sort key, computed once per key: comparing the dataclasses
    pairwise builds two tuples per comparison, which a fleet of thousands pays on every sort."""
    return (key.kind, key.identity)


def _frozen(facts: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(facts))


@dataclass(frozen=True, slots=True)
class ActorSnapshot:
    """One actor's belief at ``revision``.

    ``lifecycle`` is derived from the statechart configuration (``"absent"``, ``"creating"``,
    ``"provisioning"``, ``"running"``, ``"deleting"``, ``"deleted"``, ``"waiting"``, ``"applied"``,
    ``"error"``, ...). ``system`` is the node's system region for servers and None otherwise.
    ``settled`` means: nothing more to do for the current desired facts, or failed terminally for
    this wave (``error`` says why). ``facts`` are compact display facts (provider id, ipv4, type,
    location) and never secrets.
    """

    key: ResourceKey
    provider: str
    lifecycle: str
    system: str | None
    health: Health
    operation: str | None
    substage: str | None
    waiting: str | None
    error: str | None
    settled: bool
    facts: Mapping[str, str] = field(default_factory=dict)
    revision: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "facts", _frozen(self.facts))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict for the daemon wire and ``--json`` output."""
        return {
            "kind": self.key.kind,
            "identity": self.key.identity,
            "provider": self.provider,
            "lifecycle": self.lifecycle,
            "system": self.system,
            "health": self.health,
            "operation": self.operation,
            "substage": self.substage,
            "waiting": self.waiting,
            "error": self.error,
            "settled": self.settled,
            "facts": dict(self.facts),
            "revision": self.revision,
        }
