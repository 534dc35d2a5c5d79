"""A simulated node's back-dated journal: what it logged before the sandbox started.

Like the metrics, the history is a pure function of the node's seed and the line's sequence number,
so a collector can page through a day of it by cursor, a restart serves the same lines, and nothing
is kept in memory. Live lines (``NodeSystem.log``) continue the same sequence after the history.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

__all__ = ["JournalHistory", "JournalLine"]

_MAPS = ("Broadside", "Katabatic", "Raindance", "Sanctuary", "Tombstone", "Avalon", "Desiccator")
_NAMES = ("Ares", "Blaze", "Cinder", "Dusk", "Echo", "Flint", "Gale", "Havoc", "Ion", "Jolt", "Kestrel")


@dataclass(frozen=True, slots=True)
class JournalLine:
    seq: int
    time: float
    unit: str
    message: str
    priority: int = 6


class JournalHistory:
    """``count`` journal lines spread evenly (with jitter) over the hours before ``end``."""

    def __init__(self, hostname: str, *, seed: int = 0, end: float, hours: float = 26.0, per_hour: int = 180):
        self.hostname = hostname
        self.count = max(0, int(hours * per_hour))
        self._start = end - hours * 3600
        self._gap = 3600 / per_hour
        self._salt = int.from_bytes(
            hashlib.sha256(f"journal:{seed}:{hostname}".encode()).digest()[:8], "little"
        )

    def lines(self, *, after: int, limit: int) -> list[JournalLine]:
        """History lines with ``seq > after``, oldest first, at most ``limit``."""
        first = max(1, after + 1)
        last = min(self.count, first + limit - 1)
        return [self.line(seq) for seq in range(first, last + 1)]

    def line(self, seq: int) -> JournalLine:
        rng = random.Random(self._salt ^ seq)  # noqa: S311 - simulation, not security
        at = self._start + (seq - 1) * self._gap + rng.random() * self._gap * 0.9
        roll = rng.random()
        peer = f"127.{rng.randrange(1, 250)}.{rng.randrange(0, 250)}.{rng.randrange(2, 250)}"
        player = rng.choice(_NAMES) + str(rng.randrange(10, 99))
        if roll < 0.30:
            return JournalLine(seq, at, "tribes", f"player {player} joined from {peer}")
        if roll < 0.55:
            return JournalLine(seq, at, "tribes", f"player {player} left after {rng.randrange(2, 95)} min")
        if roll < 0.62:
            return JournalLine(seq, at, "tribes", f"map rotated to {rng.choice(_MAPS)}")
        if roll < 0.70:
            return JournalLine(
                seq, at, "tribes", f"tick overrun: {rng.randrange(34, 180)} ms (budget 33 ms)", priority=4
            )
        if roll < 0.78:
            return JournalLine(seq, at, "tribes-sync", f"peer {peer} synced {rng.randrange(1, 900)} records")
        if roll < 0.80:
            return JournalLine(
                seq, at, "tribes-sync", f"heartbeat timeout from peer {peer}, reconnecting", priority=3
            )
        if roll < 0.88:
            return JournalLine(
                seq,
                at,
                "sshd",
                f"Accepted publickey for legion-admin from 127.0.0.1 port {rng.randrange(30000, 60999)}",
            )
        if roll < 0.94:
            return JournalLine(seq, at, "CRON", "(root) CMD (/usr/lib/tribes/rotate-demos)")
        if roll < 0.98:
            return JournalLine(seq, at, "systemd", "Started Daily apt download activities.")
        return JournalLine(
            seq, at, "kernel", f"EXT4-fs (sda1): {rng.randrange(1, 40)} orphan inodes deleted", priority=5
        )
