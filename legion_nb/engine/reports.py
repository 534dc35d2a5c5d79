"""What the engine's operations report back: materialize, refresh, server commands, and the
warnings a plan carries.

Frozen records with JSON-typed fields, apart from the services that produce them, so that a
client decoding one (the daemon client, a warm CLI command) imports only these classes and not
the provider stack behind the operations.

A warning is a record of its own, never words inside a note: the diff, the snapshot rows and the
materialize report carry them in a ``warnings`` field, so the CLI, ``--json``, the panels and the
frames show them without reading prose back apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from legion_nb.errors import LegionError, ProviderError, ProviderUnavailableError

__all__ = [
    "FlaggedResource",
    "MaterializeReport",
    "PlanWarning",
    "RefreshFailure",
    "RefreshReport",
    "RefreshResult",
    "ServerCommandResult",
    "Status",
    "refresh_failure",
]

Status = Literal["succeeded", "failed", "interrupted", "cancelled"]

RefreshFailure = Literal["unreachable", "refused", "failed"]
"""Why a provider's refresh failed: the provider could not be reached (timeouts, connection
errors, 5xx), it answered with a refusal (credentials, rate limit, a rejected request), or
something on Legion's side failed. The CLI's exit code follows it (a provider's own failure is
exit 4, as for any :class:`~legion_nb.errors.ProviderError`)."""


def refresh_failure(error: LegionError) -> RefreshFailure:
    """The :data:`RefreshFailure` kind of the error a provider's refresh ended with."""
    if isinstance(error, ProviderUnavailableError):
        return "unreachable"
    if isinstance(error, ProviderError):
        return "refused"
    return "failed"


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """Something the plan does that the operator should decide about knowingly (materialize still
    proceeds: it is the operator's call). ``code`` is stable for automation to match on;
    ``message`` is one sentence an operator reads, saying what to do about it."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class FlaggedResource:
    """A resource of the plan with the warnings it carries (the materialize report lists them)."""

    kind: str
    name: str
    warnings: tuple[PlanWarning, ...]


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
    warnings: list[FlaggedResource] = field(default_factory=list)
    """The warnings of the plan this materialize applied, per resource (it proceeds regardless)."""


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one provider refresh saw and did. ``unmanaged`` are resources without Legion's labels
    that nobody tracks (reported, never touched); ``orphans`` carry Legion's labels but are neither
    planned nor tracked (reported, never deleted), each as its kind and name (``server web-9``) or,
    for a public IP assigned to nothing, its kind and address (``floating IP 203.0.113.7``).
    ``public_ips`` counts the addresses the provider keeps apart (0 where it has none to list, as
    ``skipped`` then says)."""

    provider: str
    servers: int = 0
    dns_zones: int = 0
    firewalls: int = 0
    public_ips: int = 0
    adopted: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    orphans: tuple[str, ...] = ()
    error: str | None = None
    skipped: tuple[str, ...] = field(default_factory=tuple)
    failure: RefreshFailure | None = None
    """Set with ``error``: what kind of failure it was."""


@dataclass(frozen=True, slots=True)
class RefreshResult:
    ok: bool
    summary: str
    providers: list[RefreshReport]

    def failures(self) -> set[RefreshFailure]:
        """The kinds of the providers' failures (empty when every provider was refreshed)."""
        return {r.failure or "failed" for r in self.providers if r.error}


@dataclass(frozen=True, slots=True)
class ServerCommandResult:
    server: str
    command: str
    status: str
    summary: str
