"""Activity: what the engine is doing now, derived from the current operation and actor snapshots.

Why derived: the seed's lesson is that progress pushed from orchestration steps drifts from the
truth (an invented "60 %" while a server is really stuck waiting for its provider). Here the only
inputs are the operation the engine runs (materialize, a server command) and the resource actors'
snapshots, so the activity view says exactly what the actors say: how many resources are in each
lifecycle state, which ones run an operation or wait and why, which ones failed. No percentages.

Two outputs:

* :meth:`ActivityEmitter.view` - the whole picture on demand (engine API ``activity()``);
* items on the hub's "activity" topic: one per operation start/end and one per resource whose
  visible status (state, operation, waiting reason, error) changed. Each item has a ``summary``
  line, which is what the panels and ``legion materialize`` print.

An actor that stops is retired, not a resource status: the supervisor stops the actor of a server
or zone the state no longer names once it has settled (``deleted``), and every actor at lock. Its
snapshot then says ``stopped`` about the actor, which read as the resource's status would tell
the operator that a server just deleted stopped. So a stopped actor publishes nothing here; its
key is forgotten, and an actor started for the same key later is reported afresh.

Items that only fill in a step a headline already tells (a deployment phase's end, see
:mod:`~legion_nb.engine.deployment.node_events`) carry ``"detail": true``: a progress view for
people (``legion materialize`` without ``--json``, the activity panel's recent lines) leaves them
out (:func:`~legion_nb.engine.headline.headline`); machine consumers get every item.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from legion_nb.engine.events import EventHub
from legion_nb.engine.redaction import redact
from legion_nb.engine.resources.snapshot import ActorSnapshot, ResourceKey
from legion_nb.engine.results import ActivityView, ResourceAtWork, ResourceFailure
from legion_nb.engine.state.model import utcnow

__all__ = ["ActivityEmitter", "CurrentOperation", "describe"]

_Visible = tuple[str, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class CurrentOperation:
    id: str
    kind: str
    started: dt.datetime
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "started": self.started.isoformat(), "target": self.target}


def describe(snapshot: ActorSnapshot) -> str:
    """One line for a resource's visible status: ``server web-1: provisioning (create)``; a waiting
    resource says what for once (``dns zone example.org: waiting for web-1``). A reason that names
    the operator's command (``legion materialize: rules out of date``: command first, as the CLI's
    narrow WAITING FOR column needs) reads as what the resource waits for, after its state
    (``firewall fw: applied, waiting for legion materialize: rules out of date``)."""
    waiting = snapshot.waiting or ""
    if waiting and not waiting.startswith("waiting "):
        waiting = f"waiting for {waiting}"
    said = snapshot.lifecycle == "waiting" and bool(waiting)
    status = waiting if said else snapshot.lifecycle
    text = f"{snapshot.key.kind.replace('_', ' ')} {snapshot.key.identity}: {status}"
    if snapshot.operation:
        text += f" ({snapshot.operation})"
    if waiting and not said:
        text += f", {waiting}"
    if snapshot.error:
        text += f" - {snapshot.error}"
    return text


class ActivityEmitter:
    """Owned by EngineOps: turns the current operation and actor changes into activity."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._current: CurrentOperation | None = None
        self._last: CurrentOperation | None = None
        self._last_status: str | None = None
        self._last_summary = ""
        self._seen: dict[ResourceKey, _Visible] = {}

    @property
    def current(self) -> CurrentOperation | None:
        return self._current

    def begin(self, operation: CurrentOperation) -> None:
        self._current = operation
        target = f" {operation.target}" if operation.target else ""
        self._publish("begin", f"{operation.kind}{target} started", status="running")

    def finish(self, status: str, summary: str) -> None:
        operation, self._current = self._current, None
        if operation is None:
            return
        summary = redact(summary)  # it quotes resource and provider errors
        self._last, self._last_status, self._last_summary = operation, status, summary
        self._publish("end", summary, status=status, operation=operation)

    def actors_changed(self, snapshots: Iterable[ActorSnapshot]) -> None:
        """One item per resource whose visible status changed (revision-only changes are quiet);
        a stopped actor is retired quietly (see the module notes)."""
        for snapshot in snapshots:
            if snapshot.lifecycle == "stopped":
                self._seen.pop(snapshot.key, None)
                continue
            visible: _Visible = (snapshot.lifecycle, snapshot.operation, snapshot.waiting, snapshot.error)
            if self._seen.get(snapshot.key) == visible:
                continue
            self._seen[snapshot.key] = visible
            item = self._item("resource", describe(snapshot))
            item["resource"] = snapshot.to_json()
            self._hub.publish("activity", item)

    def reset(self) -> None:
        """Forget everything (logout): nothing about the unlocked state outlives it."""
        self._current = self._last = None
        self._last_status, self._last_summary = None, ""
        self._seen.clear()

    def view(self, snapshots: Iterable[ActorSnapshot]) -> ActivityView:
        """Counts per lifecycle, resources at work or waiting, failures, and the operation."""
        counts: dict[str, int] = {}
        current: list[ResourceAtWork] = []
        errors: list[ResourceFailure] = []
        total = settled = 0
        for snapshot in snapshots:
            total += 1
            settled += snapshot.settled
            counts[snapshot.lifecycle] = counts.get(snapshot.lifecycle, 0) + 1
            if snapshot.operation or snapshot.waiting or not snapshot.settled:
                current.append(
                    {
                        "kind": snapshot.key.kind,
                        "name": snapshot.key.identity,
                        "state": snapshot.lifecycle,
                        "operation": snapshot.operation or "",
                        "substage": snapshot.substage or "",
                        "waiting": snapshot.waiting or "",
                    }
                )
            if snapshot.error:
                errors.append(
                    {"kind": snapshot.key.kind, "name": snapshot.key.identity, "error": snapshot.error}
                )
        last = None
        if self._last is not None:
            last = {**self._last.to_json(), "status": self._last_status, "summary": self._last_summary}
        return {
            "operation": None if self._current is None else self._current.to_json(),
            "last": last,
            "counts": dict(sorted(counts.items())),
            "total": total,
            "settled": settled,
            "current": current,
            "errors": errors,
        }

    def _item(self, event: str, summary: str) -> dict[str, Any]:
        operation = self._current
        return {
            "event": event,
            "operation": None if operation is None else operation.id,
            "time": utcnow().isoformat(),
            "summary": redact(summary),  # summaries quote resource and provider errors
        }

    def _publish(
        self, event: str, summary: str, *, status: str, operation: CurrentOperation | None = None
    ) -> None:
        item = self._item(event, summary)
        if operation is not None:
            item["operation"] = operation.id
        item["status"] = status
        self._hub.publish("activity", item)
