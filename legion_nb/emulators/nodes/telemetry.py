"""A simulated node's metrics: plausible, reproducible series with a back-dated history.

Why computed rather than recorded: an analyst opening a fresh sandbox wants a day or more of data to
explore, and a test wants the same numbers on every run. Every sample is a pure function of the
node's seed, the series and the sample's time step, so any stretch of history - hours before the
node "booted" - is produced on demand, page by page, and nothing grows in memory. Live facts the
node knows (the tribes service stopped, metrics stalled) are overlaid on the same function.

Shapes: CPU, load, network and players follow a diurnal curve with noise and occasional bursts;
memory drifts slowly; the root filesystem fills steadily (faster on one node in four, so there is
always a disk to worry about); drops are rare spikes; ``tribes_up`` is 0 while the service is down.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SERIES", "NodeTelemetry", "TelemetryPage"]

SERIES: tuple[tuple[str, str], ...] = (
    ("instance:node_cpu_utilisation:rate5m", ""),
    ("instance:node_load1_per_cpu:ratio", ""),
    ("instance:node_memory_utilisation:ratio", ""),
    ("instance_device:node_disk_io_time_seconds:rate5m", "sda"),
    ("node_filesystem_avail_bytes", "/"),
    ("node_filesystem_size_bytes", "/"),
    ("instance:node_network_receive_bytes_excluding_lo:rate5m", ""),
    ("instance:node_network_transmit_bytes_excluding_lo:rate5m", ""),
    ("instance:node_network_receive_drop_excluding_lo:rate5m", ""),
    ("instance:node_network_transmit_drop_excluding_lo:rate5m", ""),
    ("tribes_up", ""),
    ("tribes_players", ""),
    ("tribes_tick_seconds", ""),
    ("tribes_sync_peers", ""),
)
"""(metric, device) of every series a node reports, in wire order."""

_DAY_MS = 86_400_000
_DISK_BYTES = 40 * 1024**3
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _unit_noise(step: npt.NDArray[np.int64], salt: int) -> npt.NDArray[np.float64]:
    """Uniform [0, 1) noise per time step: splitmix64 of the step, salted per node and series."""
    with np.errstate(over="ignore"):
        z = (step.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


@dataclass(frozen=True, slots=True)
class TelemetryPage:
    """Samples in time order, then series order: ``index`` points into :data:`SERIES`."""

    index: npt.NDArray[np.int64]
    time_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    next_after: int
    more: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "series": [{"metric": m, "device": d} for m, d in SERIES],
            "samples": {
                "index": self.index.tolist(),
                "time_ms": self.time_ms.tolist(),
                "value": self.value.tolist(),
            },
            "next": self.next_after,
            "more": self.more,
        }


@dataclass
class NodeTelemetry:
    """The metric source of one node, sampled every ``interval_ms`` on a fixed grid."""

    hostname: str
    seed: int = 0
    interval_ms: int = 15_000
    history_hours: float = 26.0
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    peers: int = 0
    outages: list[list[int | None]] = field(default_factory=list)
    """[start_ms, end_ms or None] spans during which the tribes service is down."""
    stalled_at: int | None = None
    """When set, the node serves no sample newer than this (its exporter hangs)."""

    def __post_init__(self) -> None:
        digest = hashlib.sha256(f"{self.seed}:{self.hostname}".encode()).digest()
        self._salt = int.from_bytes(digest[:8], "little")
        self._fill_rate = 1.0 + 5.0 * (digest[8] % 4 == 0)  # one node in four fills its disk fast

    # -- live facts ----------------------------------------------------------------------------

    def service_down(self, at_ms: int | None = None) -> None:
        if not self.outages or self.outages[-1][1] is not None:
            self.outages.append([_now() if at_ms is None else at_ms, None])

    def service_up(self, at_ms: int | None = None) -> None:
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1][1] = _now() if at_ms is None else at_ms

    def stall(self, at_ms: int | None = None) -> None:
        self.stalled_at = _now() if at_ms is None else at_ms

    def resume(self) -> None:
        self.stalled_at = None

    # -- serving -------------------------------------------------------------------------------

    def latest_ms(self, now_ms: int | None = None) -> int:
        """The time of the newest sample the node can serve (older than now while stalled)."""
        now = _now() if now_ms is None else now_ms
        if self.stalled_at is not None:
            now = min(now, self.stalled_at)
        return now - now % self.interval_ms

    @property
    def history_start_ms(self) -> int:
        start = self.started_ms - int(self.history_hours * 3_600_000)
        return start - start % self.interval_ms

    def page(self, *, after_ms: int | None, limit: int, now_ms: int | None = None) -> TelemetryPage:
        """Samples strictly after ``after_ms`` (from the start of history when None), at most
        ``limit`` of them rounded down to whole time steps, up to now."""
        now = _now() if now_ms is None else now_ms
        if self.stalled_at is not None:
            now = min(now, self.stalled_at)
        first = self.history_start_ms if after_ms is None else after_ms + 1
        first = max(first, self.history_start_ms)
        first_step = -(-first // self.interval_ms)
        last_step = now // self.interval_ms
        steps_wanted = max(1, limit // len(SERIES))
        end_step = min(last_step, first_step + steps_wanted - 1)
        if end_step < first_step:
            return TelemetryPage(
                np.empty(0, np.int64),
                np.empty(0, np.int64),
                np.empty(0, np.float64),
                after_ms if after_ms is not None else first - 1,
                False,
            )
        steps = np.arange(first_step, end_step + 1, dtype=np.int64)
        values = self.values(steps)
        count = len(steps)
        index = np.tile(np.arange(len(SERIES), dtype=np.int64), count)
        times = np.repeat(steps * self.interval_ms, len(SERIES))
        return TelemetryPage(
            index, times, values.T.reshape(-1), int(steps[-1] * self.interval_ms), end_step < last_step
        )

    def values(self, steps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """A (series, steps) array of every series at the given time steps."""
        t = steps * self.interval_ms
        day = (t % _DAY_MS) / _DAY_MS
        diurnal = 0.5 - 0.5 * np.cos(2 * np.pi * (day - 0.125))  # low near 03:00 UTC, high near 15:00
        noise = [_unit_noise(steps, self._salt + k * 7919) for k in range(8)]
        burst = (_unit_noise(steps // 20, self._salt + 104729) > 0.97).astype(np.float64)  # 5-minute bursts
        up = self._service_up(t)
        players = np.round((4 + 36 * diurnal + 6 * noise[0]) * up)
        cpu = np.clip(0.06 + 0.30 * diurnal + 0.45 * burst + 0.06 * noise[1] + 0.004 * players, 0, 1) * (
            0.3 + 0.7 * up
        )
        load = cpu * (1.1 + 0.4 * noise[2])
        memory = np.clip(0.30 + 0.08 * diurnal + 0.02 * noise[3] + 0.05 * np.sin(t / 9.7e6), 0, 1)
        disk_io = np.clip(0.01 + 0.08 * burst + 0.04 * cpu + 0.01 * noise[4], 0, 1)
        hours_since_start = (t - self.history_start_ms) / 3_600_000
        used = _DISK_BYTES * (0.22 + 0.0015 * self._fill_rate * hours_since_start) + 2e8 * noise[5]
        avail = np.clip(_DISK_BYTES - used, 0, _DISK_BYTES)
        size = np.full(len(steps), float(_DISK_BYTES))
        rx = (3e4 + 2.4e5 * diurnal * up + 5e4 * noise[6]) * (1 + 2 * burst)
        tx = rx * (1.6 + 0.2 * noise[7])
        rx_drop = np.where(noise[2] > 0.995, np.round(40 * noise[3]), 0.0)
        tx_drop = np.where(noise[4] > 0.997, np.round(20 * noise[5]), 0.0)
        tick = (0.012 + 0.02 * cpu + 0.002 * noise[6]) * up
        peers = np.full(len(steps), float(self.peers)) * up
        return np.vstack(
            [cpu, load, memory, disk_io, avail, size, rx, tx, rx_drop, tx_drop, up, players, tick, peers]
        ).astype(np.float64)

    def _service_up(self, t: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        up = np.ones(len(t), dtype=np.float64)
        for start, end in self.outages:
            assert start is not None  # an outage always has a start
            stop = np.iinfo(np.int64).max if end is None else end
            up[(t >= start) & (t < stop)] = 0.0
        return up


def _now() -> int:
    return int(time.time() * 1000)
