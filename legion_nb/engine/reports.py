"""What the engine's operations report back: materialize, refresh and server commands.

Frozen records with JSON-typed fields, apart from the services that produce them, so that a
client decoding one (the daemon client, a warm CLI command) imports only these classes and not
the provider stack behind the operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["MaterializeReport", "RefreshReport", "RefreshResult", "ServerCommandResult", "Status"]

Status = Literal["succeeded", "failed", "interrupted", "cancelled"]


@dataclass(frozen=True, slots=True)
class MaterializeReport:
    """The outcome of one materialize: ``ok`` only when every resource settled without an error."""

    id: str
    ok: bool
    status: Status
    summary: str
    counts: dict[str, int]
    errors: list[dict[str, str]]
    unsettled: list[str]
    resources: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one provider refresh saw and did. ``unmanaged`` are resources without Legion's labels
    that nobody tracks (reported, never touched); ``orphans`` carry Legion's labels but are neither
    planned nor tracked (reported, never deleted)."""

    provider: str
    servers: int = 0
    dns_zones: int = 0
    firewalls: int = 0
    adopted: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    orphans: tuple[str, ...] = ()
    error: str | None = None
    skipped: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    ok: bool
    summary: str
    providers: list[RefreshReport]


@dataclass(frozen=True, slots=True)
class ServerCommandResult:
    server: str
    command: str
    status: str
    summary: str
