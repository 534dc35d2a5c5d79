"""Time windows as an analyst writes them: ``since="2h"``, or ``start``/``end`` as ISO 8601.

The engine API takes JSON types (the same arguments cross the daemon), so a window is a duration
string or a number of seconds back from now, or two instants as ISO 8601 text; in process a
``datetime`` or ``timedelta`` is accepted too. Naive instants are read as UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from legion_nb.errors import UsageError

__all__ = ["Instant", "Since", "parse_duration", "window_ms"]

Since = str | float | dt.timedelta | None
"""A duration back from now: ``"15m"``-style text, seconds (an int is a float to the type checker), a
timedelta, or None (no lower bound). Spelled as the declared API spells it."""
Instant = str | dt.datetime | None

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | int | float | dt.timedelta) -> float:
    """Seconds in ``30s``, ``15m``, ``2h``, ``7d``, ``1w``, a bare number (seconds) or a timedelta.

    Raises :class:`~legion_nb.errors.UsageError` for anything else or a duration not above zero.
    """
    if isinstance(text, dt.timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, bool):
        raise UsageError(f"duration {text!r} is not valid: use e.g. 30s, 15m, 2h or 7d")
    elif isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if match is None:
            raise UsageError(f"duration {text!r} is not valid: use e.g. 30s, 15m, 2h or 7d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if not seconds > 0:
        raise UsageError(f"duration {text!r} is not valid: it must be longer than zero")
    return seconds


def window_ms(
    since: Since = None, start: Instant = None, end: Instant = None, *, now_ms: int | None = None
) -> tuple[int | None, int | None]:
    """``(start_ms, end_ms)`` in epoch milliseconds (None: unbounded), from ``since`` (back from
    now) or ``start``; ``since`` and ``start`` together are a :class:`UsageError`."""
    if since is not None and start is not None:
        raise UsageError("give either since (a duration back from now) or start, not both")
    end_ms = _instant_ms(end, "end")
    start_ms = _instant_ms(start, "start")
    if since is not None:
        now = (time.time_ns() // 1_000_000) if now_ms is None else now_ms
        start_ms = int((end_ms if end_ms is not None else now) - parse_duration(since) * 1000)
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise UsageError("the window's start must lie before its end")
    return start_ms, end_ms


def _instant_ms(value: Instant, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, AttributeError) as exc:  # an operator's typo, said plainly
            raise UsageError(f"{what} {value!r} is not an ISO 8601 time (e.g. 2026-12-05T13:00:00Z)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)
