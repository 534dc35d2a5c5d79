"""The engine API's JSON-shaped results, as ``TypedDict``s.

Results that are views rather than records (an unlock's outcome, a status, the app snapshot, the
activity, a terminal poll, a catalog) are plain dicts of JSON types: lists rather than tuples,
strings for dates and decimals. They are the same object in process and after a trip through the
daemon, so they need no decoding, and this module imports nothing but :mod:`typing`: a warm CLI
command that gets one of them never loads the engine's record classes. Records (the plan, the
diff, the reports of operations) stay frozen dataclasses and are decoded from their declared type
(see :mod:`legion_nb.engine.typed_json`).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = [
    "ActivityView",
    "AppSnapshot",
    "AuthResult",
    "CatalogView",
    "ClusterNbde",
    "ConcernRecord",
    "ConcernRun",
    "CredentialFacts",
    "NodeNbdeStatus",
    "ObservationView",
    "Removed",
    "RepairView",
    "ResourceAtWork",
    "ResourceFailure",
    "SnapshotRow",
    "StatusReport",
    "StreamView",
    "TerminalClosed",
    "TerminalFacts",
    "TerminalOutputView",
    "TerminalWritten",
    "WarningView",
]


class AuthResult(TypedDict):
    """After ``bootstrap``, ``unlock``, ``logout`` or ``change_password``."""

    state: str
    unlocked: bool
    revision: int | None


class StatusReport(TypedDict):
    """Locked or unlocked; when unlocked, what the plan holds, who has credentials, what would change."""

    state: str
    exists: bool
    unlocked: bool
    revision: int | None
    counts: dict[str, int]
    providers: list[str]
    actions: dict[str, int]


class Removed(TypedDict):
    """A resource taken out of the plan (``zone`` only for a DNS host)."""

    removed: str
    name: str
    zone: NotRequired[str]


class CredentialFacts(TypedDict):
    """A provider's stored credentials without their secrets: endpoint and field names."""

    provider: str
    endpoint: str | None
    fields: list[str]


class ResourceAtWork(TypedDict):
    kind: str
    name: str
    state: str
    operation: str
    substage: str
    waiting: str


class ResourceFailure(TypedDict):
    kind: str
    name: str
    error: str


class ActivityView(TypedDict):
    """The current and last operation, counts per lifecycle state, resources at work and failures."""

    operation: dict[str, Any] | None
    last: dict[str, Any] | None
    counts: dict[str, int]
    total: int
    settled: int
    current: list[ResourceAtWork]
    errors: list[ResourceFailure]


class WarningView(TypedDict):
    """A warning the plan carries for one resource (:class:`~legion_nb.engine.reports.PlanWarning`
    as JSON): a stable ``code`` and the ``message`` an operator reads."""

    code: str
    message: str


class SnapshotRow(TypedDict):
    """One resource of the app snapshot (:mod:`legion_nb.engine.snapshot` says what each key holds).
    ``note`` explains the diff's verdict in words; ``warnings`` are what the operator should decide
    about, apart from the note so that nobody reads them back out of prose."""

    kind: str
    name: str
    provider: str
    action: str
    note: str
    warnings: list[WarningView]
    fields: list[Any]
    """The field diffs as JSON (``FieldDiff`` with ``changed``). Passed through as they come: decoding
    each field's object again doubles the cost of a remote 1,000-row snapshot (12 -> 24 ms)."""
    state: str
    system: str | None
    health: str
    operation: str
    substage: str
    waiting: str
    error: str
    settled: bool
    facts: dict[str, Any]
    revision: int
    checked_at: str | None
    reason: str | None


class AppSnapshot(TypedDict):
    """One row per resource (planned, tracked, observed and the actor's belief), the providers, and
    the plan's cost totals when the engine priced it."""

    locked: bool
    revision: int | None
    rows: list[SnapshotRow]
    providers: NotRequired[list[dict[str, Any]]]
    cost: NotRequired[dict[str, Any]]
    observation: NotRequired[ObservationView]


class ConcernRun(TypedDict):
    """One observation concern's outcome in a one-shot pass (``observe_once``)."""

    ok: bool | None
    seconds: float | None
    items: int
    error: str | None


class ConcernRecord(TypedDict):
    """One observation concern's status record; times are ISO 8601 UTC."""

    concern: str
    interval: float
    enabled: bool
    running: bool
    last_run: str | None
    seconds: float | None
    ok: bool | None
    items: int
    error: str | None
    next_run: str | None
    runs: int
    deferred: int


class ObservationView(TypedDict):
    """The observation scheduler: whether its timers run, its budget share, each concern's record."""

    running: bool
    share: float
    concerns: list[ConcernRecord]


class NodeNbdeStatus(TypedDict):
    node: str
    healthy: bool
    mode: str | None
    peers: list[str]
    threshold: int | None
    local_boot_key: bool | None
    target_mode: str | None
    in_policy: bool


class ClusterNbde(TypedDict):
    """A cluster's NBDE mode as its healthy nodes call for it, and each node's recorded binding."""

    cluster: str
    mode: str
    reason: str
    nodes: list[NodeNbdeStatus]


class RepairView(TypedDict):
    """One safe repair: the node, the operation and why; what the tick does with it (``run`` or
    ``held`` with the reason and the earliest next attempt); after a run, its outcome."""

    node: str
    operation: str
    reasons: list[str]
    action: str
    held_because: str | None
    next_attempt: str | None
    attempts: int
    outcome: str | None
    error: str | None


class StreamView(TypedDict):
    """A Sender stream session: where it runs and sends, its state (``starting | live | stalled |
    stopped | failed``) with the reason, and what the last probe saw (ISO times, UTC)."""

    name: str
    satellite: str
    endpoint: str
    state: str
    reason: str | None
    bytes: int
    reachable: bool | None
    latency_ms: float | None
    checked_at: str | None
    progressed_at: str | None


class CatalogView(TypedDict):
    """Server types with prices (decimal strings), locations and images of one provider."""

    provider: str
    currency: str
    source: str
    fetched_at: str | None
    server_types: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    images: list[dict[str, Any]]


class TerminalFacts(TypedDict):
    """An open terminal: node, address and size (never a key)."""

    id: str
    node: str
    host: str
    pty: bool
    cols: int
    rows: int
    closed: bool


class TerminalOutputView(TypedDict):
    """Output since the last read, and whether the shell ended (with its exit status)."""

    id: str
    data: str
    closed: bool
    exit_status: int | None
    stderr: NotRequired[str]
    """A shell opened without a PTY: its error output, with the poll that sees it end."""


class TerminalWritten(TypedDict):
    id: str
    written: int


class TerminalClosed(TypedDict):
    id: str
    closed: bool


class NodeHostKey(TypedDict):
    """A node's SSH host key as Legion pinned it and as the node presents it now (public keys only,
    ``type base64``), and whether they match."""

    node: str
    address: str
    pinned: str
    presented: str
    matches: bool
