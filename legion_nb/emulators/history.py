"""Back-dated account history: servers that lived and were deleted before the sandbox started.

A fresh sandbox account has no past, so its billing APIs would show one month with a few minutes of
usage. With ``SandboxWorld(history_days=N)`` each emulator seeds its billing records (never its
live inventory) with servers that ran at some point in the last N days, so consumptions, invoices,
usage periods and bills span months an analyst can explore. The lifetimes come from their own
random stream (seed and provider), so credentials and the rest of the world stay as without history,
and one seed always gives the same past.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PastServer", "past_servers"]


@dataclass(frozen=True, slots=True)
class PastServer:
    """One server of the past: its name, its type (one of the offered names) and its lifetime."""

    name: str
    server_type: str
    created: dt.datetime
    deleted: dt.datetime


def past_servers(
    seed: int, provider: str, days: int, now: dt.datetime, types: Sequence[str]
) -> list[PastServer]:
    """About one server every four days of history (at least two), each alive between one hour and
    three weeks, all deleted before ``now``; oldest first."""
    if days <= 0 or not types:
        return []
    rng = random.Random(zlib.crc32(f"{seed}/{provider}/history".encode()))  # noqa: S311 - reproducible
    window = dt.timedelta(days=days)
    out: list[PastServer] = []
    for n in range(max(2, days // 4)):
        created = now - window + dt.timedelta(seconds=rng.randrange(int(window.total_seconds())))
        created = created.replace(microsecond=0)
        life = dt.timedelta(minutes=rng.randrange(60, 21 * 24 * 60))
        deleted = min(created + life, now - dt.timedelta(minutes=1))
        if deleted <= created:
            continue
        out.append(PastServer(f"history-{n + 1}", types[rng.randrange(len(types))], created, deleted))
    return sorted(out, key=lambda s: s.created)
