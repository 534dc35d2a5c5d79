"""The telemetry inventory: which series a node reports, named as Prometheus users know them.

The node metrics follow node_exporter's node-mixin recording rules (``instance:...:rate5m`` and
friends), so an analyst who knows those dashboards reads the same names here; the filesystem pair is
node_exporter's own gauges, and the ``tribes_*`` series are what the Tribes service exposes.
A series is one (node, metric, device) triple; ``device`` is empty for per-node metrics.

Those names stay the metrics' identity in frames, stores and the CLI's ``--json``; :data:`LABELS`
says how each reads to a person (``CPU utilisation (%)``), so panels and the CLI title a chart or
a pick in words and units while the rule name stays beside it for an analyst to copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BASELINE",
    "LABELS",
    "METRICS",
    "MetricLabel",
    "MetricSpec",
    "SeriesKey",
    "metric_label",
    "metric_spec",
]

Unit = Literal["ratio", "bytes", "bytes/s", "packets/s", "seconds", "count"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of the inventory: its name, unit, and the devices it is reported per."""

    name: str
    unit: Unit
    help: str
    devices: tuple[str, ...] = ("",)


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """One stored series: a metric of a node, per device where the metric has devices."""

    node: str
    metric: str
    device: str = ""


BASELINE: tuple[MetricSpec, ...] = (
    MetricSpec("instance:node_cpu_utilisation:rate5m", "ratio", "share of CPU time not idle"),
    MetricSpec("instance:node_load1_per_cpu:ratio", "ratio", "1-minute load average per CPU"),
    MetricSpec("instance:node_memory_utilisation:ratio", "ratio", "share of memory not available"),
    MetricSpec(
        "instance_device:node_disk_io_time_seconds:rate5m",
        "ratio",
        "seconds spent doing I/O per second, per disk",
        ("sda",),
    ),
    MetricSpec("node_filesystem_avail_bytes", "bytes", "free space for unprivileged users", ("/",)),
    MetricSpec("node_filesystem_size_bytes", "bytes", "filesystem size", ("/",)),
    MetricSpec(
        "instance:node_network_receive_bytes_excluding_lo:rate5m", "bytes/s", "bytes received per second"
    ),
    MetricSpec(
        "instance:node_network_transmit_bytes_excluding_lo:rate5m", "bytes/s", "bytes sent per second"
    ),
    MetricSpec(
        "instance:node_network_receive_drop_excluding_lo:rate5m", "packets/s", "received packets dropped"
    ),
    MetricSpec(
        "instance:node_network_transmit_drop_excluding_lo:rate5m", "packets/s", "sent packets dropped"
    ),
)
"""The node-mixin baseline every node reports."""

TRIBES: tuple[MetricSpec, ...] = (
    MetricSpec("tribes_up", "ratio", "1 while the tribes service runs, else 0"),
    MetricSpec("tribes_players", "count", "players connected"),
    MetricSpec("tribes_tick_seconds", "seconds", "mean server tick duration"),
    MetricSpec("tribes_sync_peers", "count", "cluster peers connected on the sync port"),
)

METRICS: tuple[MetricSpec, ...] = BASELINE + TRIBES
_BY_NAME = {spec.name: spec for spec in METRICS}


def metric_spec(name: str) -> MetricSpec | None:
    """The inventory entry for ``name``, or None for a metric the inventory does not know."""
    return _BY_NAME.get(name)


@dataclass(frozen=True, slots=True)
class MetricLabel:
    """How a metric reads to a person: what it measures in words and the unit its values are shown
    in (``%`` for a ratio shown as a percentage, empty for a plain number such as a load)."""

    text: str
    unit: str = ""

    @property
    def title(self) -> str:
        """The words with the unit: ``CPU utilisation (%)``, ``Network receive (bytes/s)``."""
        return f"{self.text} ({self.unit})" if self.unit else self.text

    @property
    def percent(self) -> bool:
        """True when the stored values are ratios shown as percentages (0.45 reads 45%)."""
        return self.unit == "%"


LABELS: Mapping[str, MetricLabel] = {
    "instance:node_cpu_utilisation:rate5m": MetricLabel("CPU utilisation", "%"),
    "instance:node_load1_per_cpu:ratio": MetricLabel("Load per CPU, 1-minute average"),
    "instance:node_memory_utilisation:ratio": MetricLabel("Memory utilisation", "%"),
    "instance_device:node_disk_io_time_seconds:rate5m": MetricLabel("Disk busy time", "%"),
    "node_filesystem_avail_bytes": MetricLabel("Filesystem free space", "bytes"),
    "node_filesystem_size_bytes": MetricLabel("Filesystem size", "bytes"),
    "instance:node_network_receive_bytes_excluding_lo:rate5m": MetricLabel("Network receive", "bytes/s"),
    "instance:node_network_transmit_bytes_excluding_lo:rate5m": MetricLabel("Network transmit", "bytes/s"),
    "instance:node_network_receive_drop_excluding_lo:rate5m": MetricLabel(
        "Network receive drops", "packets/s"
    ),
    "instance:node_network_transmit_drop_excluding_lo:rate5m": MetricLabel(
        "Network transmit drops", "packets/s"
    ),
    "tribes_up": MetricLabel("Tribes service up (1) or down (0)"),
    "tribes_players": MetricLabel("Players connected", "count"),
    "tribes_tick_seconds": MetricLabel("Server tick duration", "s"),
    "tribes_sync_peers": MetricLabel("Sync peers connected", "count"),
}
"""Every inventory metric as a person reads it (:class:`MetricLabel`), keyed by its name."""


def metric_label(name: str) -> MetricLabel:
    """How ``name`` reads to a person; a metric the inventory does not know reads as its own name."""
    return LABELS.get(name) or MetricLabel(name)
