"""The rows the panels draw, and the one place that reads them out of the engine's streams.

The engine publishes its app snapshot as JSON-able data (an in-process :class:`~legion_nb.engine.
runtime.Engine` hands over Python objects, the daemon's ``RemoteEngine`` hands over decoded JSON);
:func:`parse_snapshot` turns either into typed rows, so the JavaScript side only ever sees the shapes
declared here. Keeping the schema in one module means the engine's resource actors only fill these
keys in the snapshot rows; the panels, their JavaScript and the tests all speak them.

Snapshot row keys (all strings; a missing key reads as empty, a missing ``state`` as ``unknown``)::

    kind       server | dns_zone | firewall | domain | floating_ip | primary_ip (public IPs: orphans only)
    name       the resource's name (host name, zone, firewall name; a public IP's address)
    provider   hetzner | ovh | scaleway
    action     what materialize would do: create | update | delete | unchanged | adopt | orphan
    state      the resource actor's lifecycle state; "unknown" until the actor has reported
    operation  the operation the actor is running now (empty when idle)
    substage   the persisted deployment phase of that operation (servers)
    waiting    why the actor is waiting (e.g. a DNS zone waiting for server endpoints)
    error      the last error the actor recorded
    settled    (a boolean) the actor has nothing left to do for now; false until an actor reports
    note       the diff's remark (e.g. a pending create settled by lookup first)
    warnings   what the operator should decide about: [{code, message}] (e.g. SSH open to anywhere);
               the panels show each as a visible warning line under the row
    fields     the field diffs: [{field, planned, tracked, observed, changed}] (the plan diff panel)

Other keys a row may carry (``system``, ``health``, ``facts``...) are detail for ``--json`` and are
not shown here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from legion_nb.engine.headline import headline
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import LegionError

__all__ = [
    "UNKNOWN_STATE",
    "DiffRow",
    "EngineOperation",
    "FieldRow",
    "OperationRow",
    "PanelDataError",
    "ResourceRow",
    "Snapshot",
    "WarningRow",
    "action_counts",
    "activity_lines",
    "current_operations",
    "follow_operation",
    "parse_snapshot",
    "plan_cost_of",
    "shown_action",
    "state_counts",
    "tally",
]

UNKNOWN_STATE = "unknown"


class PanelDataError(LegionError):
    """The engine published data the panels cannot read: engine and widgets disagree on a shape."""

    code = "panel_data"


class WarningRow(TypedDict):
    """One warning of a resource: a stable code and the message the panel shows."""

    code: str
    message: str


class ResourceRow(TypedDict):
    """One resource as the resources panel shows it (see the module docstring for each key)."""

    kind: str
    name: str
    provider: str
    action: str
    state: str
    operation: str
    substage: str
    waiting: str
    error: str
    settled: bool
    note: str
    warnings: list[WarningRow]


class FieldRow(TypedDict):
    """One field of one resource in the planned, tracked and observed views (None: not in that view)."""

    field: str
    planned: str | None
    tracked: str | None
    observed: str | None
    changed: bool


class DiffRow(TypedDict):
    kind: str
    name: str
    provider: str
    action: str
    note: str
    warnings: list[WarningRow]
    fields: list[FieldRow]


class OperationRow(TypedDict):
    """A resource that is busy right now: what it runs and where it stands."""

    kind: str
    name: str
    operation: str
    substage: str
    waiting: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The app snapshot as the panels need it."""

    locked: bool
    revision: int | None
    rows: tuple[ResourceRow, ...]
    # The same resources with their field diffs (each row's "fields"), for the plan diff panel.
    changes: tuple[DiffRow, ...] = ()


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` as a mapping: JSON objects as they are, engine objects (dataclasses, objects with
    ``to_json``) converted; anything else is a :class:`PanelDataError`. Only what a panel reads is
    converted further, so a 1,000-row snapshot is not copied once more before it is read."""
    plain = value
    if not isinstance(plain, Mapping):
        try:
            plain = to_jsonable(value)
        except TypeError:  # not an engine object either: reported just below
            plain = None
    if not isinstance(plain, Mapping):
        raise PanelDataError(
            f"{what} is a {type(value).__name__}, not an object: upgrade engine and widgets together"
        )
    return plain


def _text(value: Any) -> str:
    """Scalars as text; anything structured as compact JSON, so nothing is silently dropped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    try:
        plain = to_jsonable(value)
    except TypeError:  # an object the wire rules do not know: its own text is the best we have
        return str(value)
    return plain if isinstance(plain, str) else json.dumps(plain, sort_keys=True, separators=(",", ":"))


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


_CREATING = frozenset({"create", "settle create", "provision", "verify"})


def shown_action(action: str, operation: str) -> str:
    """The action a panel shows: the diff's, except while the actor still carries one out.

    A server the provider has accepted is tracked, so the diff already reads ``unchanged`` while it
    provisions, and a deleted one has no diff row at all while it is being deleted; the panel says
    ``create`` / ``delete`` until the actor has finished, never ``unchanged`` or ``-``.
    """
    if action in ("", "unchanged"):
        if operation in _CREATING:
            return "create"
        if operation == "delete":
            return "delete"
    return action


def _resource_row(raw: Any) -> ResourceRow:
    row = _mapping(raw, "a snapshot row")
    return ResourceRow(
        kind=_text(row.get("kind")),
        name=_text(row.get("name")),
        provider=_text(row.get("provider")),
        action=shown_action(_text(row.get("action")), _text(row.get("operation"))),
        state=_text(row.get("state")) or UNKNOWN_STATE,
        operation=_text(row.get("operation")),
        substage=_text(row.get("substage")),
        waiting=_text(row.get("waiting")),
        error=_text(row.get("error")),
        settled=row.get("settled") is True,
        note=_text(row.get("note")),
        warnings=_warnings(row.get("warnings")),
    )


def _warnings(raw: Any) -> list[WarningRow]:
    """A row's warnings; a shape the panels cannot read is a :class:`PanelDataError`, never dropped."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise PanelDataError("a resource's warnings are not a list: upgrade engine and widgets together")
    out: list[WarningRow] = []
    for item in raw:
        warning = _mapping(item, "a warning")
        out.append(WarningRow(code=_text(warning.get("code")), message=_text(warning.get("message"))))
    return out


def plan_cost_of(data: Any) -> dict[str, Any]:
    """The plan's monthly cost a snapshot carries (``{}`` when it carries none): per currency the
    amounts as decimal strings, and the servers no catalog could price."""
    cost = data.get("cost") if isinstance(data, Mapping) else None
    if not isinstance(cost, Mapping):
        return {}
    currencies = [
        {key: _text(line.get(key)) for key in ("currency", "now", "planned", "change")}
        for line in cost.get("currencies") or []
        if isinstance(line, Mapping)
    ]
    return {"currencies": currencies, "unpriced": [_text(name) for name in cost.get("unpriced") or []]}


def parse_snapshot(data: Any) -> Snapshot:
    """Typed rows from one "snapshot" publication (engine objects or decoded JSON alike)."""
    snapshot = _mapping(data, "the snapshot")
    rows = snapshot.get("rows", [])
    if not isinstance(rows, list):
        raise PanelDataError("the snapshot's rows are not a list: upgrade engine and widgets together")
    revision = snapshot.get("revision")
    return Snapshot(
        locked=bool(snapshot.get("locked", False)),
        revision=revision if isinstance(revision, int) and not isinstance(revision, bool) else None,
        rows=tuple(_resource_row(row) for row in rows),
        changes=tuple(_diff_row(row) for row in rows),
    )


def _field_row(raw: Any) -> FieldRow:
    field = _mapping(raw, "a diff field")
    return FieldRow(
        field=_text(field.get("field")),
        planned=_optional_text(field.get("planned")),
        tracked=_optional_text(field.get("tracked")),
        observed=_optional_text(field.get("observed")),
        changed=bool(field.get("changed", False)),
    )


def _diff_row(raw: Any) -> DiffRow:
    resource = _mapping(raw, "a snapshot row")
    fields = resource.get("fields", [])
    if not isinstance(fields, list):
        raise PanelDataError("a resource's fields are not a list: upgrade engine and widgets together")
    return DiffRow(
        kind=_text(resource.get("kind")),
        name=_text(resource.get("name")),
        provider=_text(resource.get("provider")),
        action=_text(resource.get("action")),
        note=_text(resource.get("note")),
        warnings=_warnings(resource.get("warnings")),
        fields=[_field_row(f) for f in fields],
    )


def tally(values: Iterable[str]) -> dict[str, int]:
    """How often each value occurs, sorted by value (the panels' counts per state or action)."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def state_counts(rows: Sequence[ResourceRow]) -> dict[str, int]:
    """How many resources are in each lifecycle state (sorted by state name)."""
    return tally([row["state"] for row in rows])


def action_counts(rows: Sequence[ResourceRow]) -> dict[str, int]:
    """How many resources need each action (sorted by action name)."""
    return tally([row["action"] for row in rows])


def current_operations(rows: Sequence[ResourceRow]) -> list[OperationRow]:
    """The resources that are running an operation or waiting for something, in snapshot order."""
    return [
        OperationRow(
            kind=row["kind"],
            name=row["name"],
            operation=row["operation"],
            substage=row["substage"],
            waiting=row["waiting"],
        )
        for row in rows
        if row["operation"] or row["waiting"]
    ]


def activity_lines(batch: Sequence[Any]) -> list[str]:
    """One readable line per "activity" item a person reads (a detail such as a deployment phase's
    end is left out, as ``legion materialize`` leaves it out: :func:`headline`): its time of day and
    ``summary`` (``message``) if it has them, else the item as JSON."""
    lines: list[str] = []
    for item in batch:
        data = to_jsonable(item)
        if not headline(data):
            continue
        if isinstance(data, Mapping):
            text = data.get("summary") or data.get("message")
            when = _text(data.get("time"))
            clock = when[11:19] + " " if len(when) >= 19 and when[10] == "T" else ""
            lines.append(clock + _text(text) if text else _text(data))
        else:
            lines.append(_text(data))
    return lines


@dataclass(frozen=True, slots=True)
class EngineOperation:
    """The engine's own operation (materialize, refresh, a server command) as activity tells it."""

    running: str = ""  # the running operation's summary, empty when none runs
    last: str = ""  # the last finished one: its summary and final status


def follow_operation(batch: Sequence[Any], seen: EngineOperation) -> EngineOperation:
    """``seen`` moved on by the "begin"/"end" items of an activity batch (other items leave it)."""
    running, last = seen.running, seen.last
    for item in batch:
        data = to_jsonable(item)
        if not isinstance(data, Mapping):
            continue
        if data.get("event") == "begin":
            running = _text(data.get("summary"))
        elif data.get("event") == "end":
            status = _text(data.get("status"))
            running, last = "", _text(data.get("summary")) + (f" ({status})" if status else "")
    return EngineOperation(running=running, last=last)
