"""The legion-nb error tree.

Every error that can reach an operator is a ``LegionError``. Each one carries a one-line message that
names the problem and what to do about it, and an ``exit_code`` that the CLI uses, so the CLI never
prints a traceback for an operator mistake. Foreign exceptions (httpx, asyncssh, cryptography,
argon2) are translated into this tree at the module that calls the foreign library, with
``raise ... from exc``; nobody above that edge catches third-party exception types.

::

    LegionError
    ├── UsageError                  bad input from the operator (exit 2)
    │   ├── ValidationError         a plan or record that breaks a rule (names, references, duplicates)
    │   ├── NotTrackedError         a command names a server Legion does not track
    │   └── NotAnOrphanError        orphan_delete refused: the resource is no orphan now
    │       ├── UnknownOrphanError  the provider lists no resource of that id
    │       ├── NotLegionsError     it lacks Legion's labels: someone else's, never deleted
    │       └── HeldByStateError    the state tracks, plans or awaits it (or a server holds an IP)
    ├── StateError                  the encrypted local state (exit 3)
    │   ├── StateNotFoundError      no state file at the path
    │   ├── StateExistsError        init refused to overwrite an existing state
    │   ├── WrongPasswordError      the password does not unwrap the data key
    │   ├── StateCorruptedError     the file is damaged or was tampered with
    │   ├── StateFormatError        unknown format version or refused KDF parameters
    │   ├── LockedError             the engine is locked: unlock first
    │   ├── StateBusyError          another process is writing this state
    │   └── StateConflictError      the file changed on disk since it was loaded
    ├── ProviderError               a cloud provider said no, or could not be reached (exit 4)
    │   ├── ProviderAuthError       credentials missing, wrong or read-only
    │   ├── ProviderNotFoundError   the provider has no such resource
    │   ├── ProviderConflictError   uniqueness or state conflict at the provider
    │   ├── ProviderInvalidInputError  the provider rejected the request's fields
    │   ├── ProviderRateLimitedError   429: slow down and retry later
    │   ├── ProviderUnavailableError   5xx, timeouts, unreachable endpoint (temporary)
    │   ├── ProviderAmbiguousError  a mutation's outcome is unknown and could not be settled
    │   └── CapabilityMissingError  the provider cannot do this at all (plan around it)
    ├── OperationError              engine operations (exit 5)
    │   ├── ApplyRunningError       a materialize is already running
    │   ├── RunbookFailedError      a runbook run ended with a failing cell (its record says which)
    │   └── RunRecordsTamperedError run records or output notebooks changed since they were written
    ├── DaemonError                 the local daemon (exit 6)
    │   ├── DaemonNotRunningError   no live daemon for this state
    │   ├── DaemonAuthError         missing or wrong daemon token
    │   └── DaemonProtocolError     a malformed or refused daemon message
    └── NodeError                   a managed node: SSH, host keys, certificates, admin API (exit 7)
"""

from __future__ import annotations

__all__ = [
    "ApplyRunningError",
    "CapabilityMissingError",
    "DaemonAuthError",
    "DaemonBusyError",
    "DaemonError",
    "DaemonInternalError",
    "DaemonNotRunningError",
    "DaemonProtocolError",
    "HeldByStateError",
    "LegionError",
    "LockedError",
    "MethodNotAllowedError",
    "NodeError",
    "NotAnOrphanError",
    "NotLegionsError",
    "NotTrackedError",
    "OperationError",
    "ProviderAmbiguousError",
    "ProviderAuthError",
    "ProviderConflictError",
    "ProviderError",
    "ProviderInvalidInputError",
    "ProviderNotFoundError",
    "ProviderRateLimitedError",
    "ProviderUnavailableError",
    "RunRecordsTamperedError",
    "RunbookFailedError",
    "StateBusyError",
    "StateConflictError",
    "StateCorruptedError",
    "StateError",
    "StateExistsError",
    "StateFormatError",
    "StateNotFoundError",
    "UnknownOrphanError",
    "UsageError",
    "ValidationError",
    "WrongPasswordError",
]


class LegionError(Exception):
    """Root of every error legion-nb raises on purpose.

    ``code`` is a stable, machine-readable name (used by ``--json`` output and the daemon wire);
    ``str(error)`` is the one-line operator message.
    """

    exit_code: int = 1
    code: str = "legion_error"

    def __init__(self, message: str) -> None:
        # One line, always: multi-line messages break the CLI's "one line on stderr" contract.
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def to_wire(self) -> dict[str, str]:
        """The error as the daemon and ``--json`` output carry it: code and message, and for an error
        defined outside this module the ``family`` code of its nearest class here, so a client that
        never imported the defining module still rebuilds an error with the right exit code."""
        wire = {"code": self.code, "message": self.message}
        family = next(
            c for c in type(self).__mro__ if issubclass(c, LegionError) and c.__module__ == __name__
        )
        if family.code != self.code:
            wire["family"] = family.code
        return wire


class UsageError(LegionError):
    """The operator asked for something that cannot be done as asked."""

    exit_code = 2
    code = "usage"


class ValidationError(UsageError):
    """A plan, name or record breaks a rule; the message names the field and the rule."""

    code = "invalid"


class NotTrackedError(UsageError):
    """A command for one server (``server reboot``, ``terminal``...) names one Legion does not
    track: a mistyped or not yet materialized name, the operator's input rather than a node fault."""

    code = "not_tracked"


class NotAnOrphanError(UsageError):
    """``orphan_delete`` refused a resource that is no orphan as its provider lists it now; nothing
    was deleted. The subclasses say which part of the rule it fails."""

    code = "not_orphan"


class UnknownOrphanError(NotAnOrphanError):
    """The provider lists no resource of the id given (a typo, or already gone)."""

    code = "orphan_unknown"


class NotLegionsError(NotAnOrphanError):
    """The resource lacks Legion's two ownership labels: someone else made it, Legion never deletes it."""

    code = "not_legions"


class HeldByStateError(NotAnOrphanError):
    """Something in the state holds the resource: tracked, planned for adoption, a pending create,
    or (a public IP) assigned to a server."""

    code = "held_by_state"


class StateError(LegionError):
    """Something about the encrypted local state file."""

    exit_code = 3
    code = "state"


class StateNotFoundError(StateError):
    code = "state_not_found"


class StateExistsError(StateError):
    code = "state_exists"


class WrongPasswordError(StateError):
    code = "wrong_password"


class StateCorruptedError(StateError):
    code = "state_corrupted"


class StateFormatError(StateError):
    code = "state_format"


class LockedError(StateError):
    code = "locked"


class StateBusyError(StateError):
    code = "state_busy"


class StateConflictError(StateError):
    code = "state_conflict"


class ProviderError(LegionError):
    """A provider refused a call or could not be reached.

    Carries the provider name, the provider's own error code, its message and its request id
    (Hetzner ``X-Correlation-Id``, OVH ``X-OVH-QUERYID``, Scaleway ``x-request-id``) so that an
    operator can quote it to the provider's support.
    """

    exit_code = 4
    code = "provider"
    temporary: bool = False

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.provider = provider
        self.provider_code = provider_code
        self.request_id = request_id
        self.status = status
        detail = f" [{provider_code}]" if provider_code else ""
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{provider}: {message}{detail}{rid}")
        self.provider_message = " ".join(message.split())

    def to_wire(self) -> dict[str, str]:
        wire = super().to_wire()
        wire["provider"] = self.provider
        if self.provider_code:
            wire["provider_code"] = self.provider_code
        if self.request_id:
            wire["request_id"] = self.request_id
        return wire


class ProviderAuthError(ProviderError):
    code = "provider_auth"


class ProviderNotFoundError(ProviderError):
    code = "provider_not_found"


class ProviderConflictError(ProviderError):
    code = "provider_conflict"


class ProviderInvalidInputError(ProviderError):
    code = "provider_invalid_input"


class ProviderRateLimitedError(ProviderError):
    code = "provider_rate_limited"
    temporary = True

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retry_after: float | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(provider, message, provider_code=provider_code, request_id=request_id, status=status)


class ProviderUnavailableError(ProviderError):
    code = "provider_unavailable"
    temporary = True


class ProviderAmbiguousError(ProviderError):
    code = "provider_ambiguous"


class CapabilityMissingError(ProviderError):
    code = "capability_missing"


class OperationError(LegionError):
    exit_code = 5
    code = "operation"


class ApplyRunningError(OperationError):
    code = "apply_running"


class RunbookFailedError(OperationError):
    code = "runbook_failed"


class RunRecordsTamperedError(OperationError):
    code = "run_records_tampered"


class DaemonError(LegionError):
    exit_code = 6
    code = "daemon"


class DaemonNotRunningError(DaemonError):
    code = "daemon_not_running"


class DaemonAuthError(DaemonError):
    code = "daemon_auth"


class DaemonProtocolError(DaemonError):
    code = "daemon_protocol"


# The daemon's own replies are errors of this module, so any client rebuilds them from their code alone
# and the wire error stays exactly ``{"code", "message"}``.
class DaemonInternalError(DaemonError):
    """The daemon hit a bug; the reply carries no detail, the daemon's log carries the type."""

    code = "internal"


class DaemonBusyError(DaemonError):
    """The daemon holds as many connections of that state as it serves; this one is closed."""

    code = "daemon_busy"


class MethodNotAllowedError(DaemonProtocolError):
    """A ``call`` named something that is not on the engine's public allow-list."""

    code = "method_not_allowed"


class NodeError(LegionError):
    """A managed node could not be reached, proved itself wrong, or refused a step.

    Specific kinds (host key mismatch, unreachable, certificate refused) live beside the module that
    talks to the node: :mod:`legion_nb.engine.ssh` and :mod:`legion_nb.engine.deployment`.
    ``temporary`` says whether retrying later (e.g. after a reboot) can help.
    """

    exit_code = 7
    code = "node"
    temporary: bool = False
