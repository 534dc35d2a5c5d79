"""Optional JSONL tracing of actor transitions (``LEGION_TRACE_ACTORS=1``).

Why: when a wave does something surprising, the order of transitions across actors is the story.
Each transition becomes one JSON line ``{"ts", "actor", "event", "source", "target", "config"}`` in
``<log dir>/actors.jsonl`` (the log directory beside the state). Lines carry state ids and event
names only: never event data, which can hold provider records. Writes are appended synchronously
(a line is small) so a crash loses nothing written before it. The file is the operator's alone
(mode 0600, like the state beside it), also when an older, wider one is reopened.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import IO, Any

from legion_nb.engine.redaction import redact_data
from legion_nb.engine.resources.snapshot import ResourceKey

__all__ = ["TRACE_ENV", "ActorTracer", "tracing_enabled"]

TRACE_ENV = "LEGION_TRACE_ACTORS"
TRACE_FILE = "actors.jsonl"

log = logging.getLogger(__name__)


def tracing_enabled(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(TRACE_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


class ActorTracer:
    """Appends transition lines to ``log_dir/actors.jsonl``; one per supervisor, closed at stop."""

    def __init__(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = log_dir / TRACE_FILE
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # O_CREAT's mode applies to new files only
        self._file: IO[str] | None = os.fdopen(fd, "a", encoding="utf-8")

    def listener(self, key: ResourceKey) -> _TransitionListener:
        return _TransitionListener(self, str(key))

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(redact_data(record), separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:  # tracing must never break an actor
            log.warning("actor trace write to %s failed (%s); tracing stops", self.path, exc)
            self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _TransitionListener:
    """A python-statemachine listener: one JSON line per transition of one actor."""

    def __init__(self, tracer: ActorTracer, actor: str) -> None:
        self._tracer = tracer
        self._actor = actor

    def after_transition(self, event: str, source: Any, target: Any, machine: Any) -> None:
        event_name = str(event)
        if event_name.startswith("done.invoke."):
            event_name = "done.invoke." + event_name.split(".")[2]
        self._tracer.write(
            {
                "ts": round(time.time(), 6),
                "actor": self._actor,
                "event": event_name,
                "source": str(source.id),
                "target": str(target.id),
                "config": sorted(str(v) for v in machine.configuration_values),
            }
        )
