"""What the emulated Scaleway sells: zones, Instance types with prices, and system images.

Figures are close to Scaleway's public price list (EUR, excl. VAT) in late 2026; they only need to be
realistic enough for the catalog policy to make sensible choices. Image ids are derived from the zone
and label with UUIDv5, so they are stable across runs and differ per zone, like the real ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "IMAGES",
    "SERVER_TYPES",
    "ZONES",
    "ImageTemplate",
    "ServerTypeSpec",
    "availability",
    "image_id",
    "server_type_json",
]

ZONES: tuple[str, ...] = ("fr-par-1", "fr-par-2", "nl-ams-1", "pl-waw-1")

GIB = 1024**3
GB = 1000**3

Arch = Literal["x86_64", "arm64"]


@dataclass(frozen=True)
class ServerTypeSpec:
    name: str
    ncpus: int
    ram_gib: int
    hourly: float
    monthly: float
    arch: Arch = "x86_64"
    local_ssd_gb: int = 0
    """Local SSD size the type comes with; 0 for block-storage-only types."""
    zones: tuple[str, ...] = ZONES
    bandwidth_mbps: int = 200

    def json(self) -> dict[str, Any]:
        return server_type_json(self)


SERVER_TYPES: tuple[ServerTypeSpec, ...] = (
    ServerTypeSpec("DEV1-S", 2, 2, 0.0099, 7.23, local_ssd_gb=20),
    ServerTypeSpec("DEV1-M", 3, 4, 0.0198, 14.45, local_ssd_gb=40, bandwidth_mbps=300),
    ServerTypeSpec("DEV1-L", 4, 8, 0.042, 30.66, local_ssd_gb=80, bandwidth_mbps=400),
    ServerTypeSpec("PLAY2-PICO", 1, 2, 0.014, 10.22, bandwidth_mbps=100),
    ServerTypeSpec("PLAY2-NANO", 2, 4, 0.027, 19.71, bandwidth_mbps=200),
    ServerTypeSpec("PRO2-XXS", 2, 8, 0.055, 40.15, bandwidth_mbps=350),
    ServerTypeSpec("PRO2-XS", 4, 16, 0.11, 80.30, bandwidth_mbps=700),
    ServerTypeSpec(
        "COPARM1-2C-8G", 2, 8, 0.0426, 31.10, arch="arm64", zones=("fr-par-2",), bandwidth_mbps=400
    ),
)

_AVAILABILITY: dict[tuple[str, str], str] = {
    ("pl-waw-1", "PRO2-XS"): "shortage",
    ("nl-ams-1", "PRO2-XS"): "scarce",
}


def availability(zone: str, commercial_type: str) -> str:
    """``available``, ``scarce`` or ``shortage`` (creating a server of a type in shortage fails)."""
    return _AVAILABILITY.get((zone, commercial_type), "available")


def server_type_json(spec: ServerTypeSpec) -> dict[str, Any]:
    local = spec.local_ssd_gb * GB
    return {
        "monthly_price": spec.monthly,
        "hourly_price": spec.hourly,
        "alt_names": [],
        "per_volume_constraint": {"l_ssd": {"min_size": 1 * GB if local else 0, "max_size": local}},
        "volumes_constraint": {"min_size": local, "max_size": local},
        "ncpus": spec.ncpus,
        "gpu": 0,
        "ram": spec.ram_gib * GIB,
        "arch": spec.arch,
        "baremetal": False,
        "network": {
            "interfaces": [
                {"internal_bandwidth": None, "internet_bandwidth": spec.bandwidth_mbps * 1_000_000}
            ],
            "sum_internal_bandwidth": None,
            "sum_internet_bandwidth": spec.bandwidth_mbps * 1_000_000,
            "ipv6_support": True,
        },
        "capabilities": {
            "boot_types": ["local", "rescue"],
            "max_file_systems": 0,
            "block_storage": True,
        },
        "scratch_storage_max_size": 0,
        "scratch_storage_max_volumes_count": 0,
        "block_bandwidth": 262144000,
        "end_of_service": False,
    }


@dataclass(frozen=True)
class ImageTemplate:
    label: str
    name: str
    arch: Arch
    root_size_gb: int = 10


IMAGES: tuple[ImageTemplate, ...] = (
    ImageTemplate("debian_bookworm", "Debian Bookworm", "x86_64"),
    ImageTemplate("debian_bookworm", "Debian Bookworm", "arm64"),
    ImageTemplate("debian_trixie", "Debian Trixie", "x86_64"),
    ImageTemplate("debian_trixie", "Debian Trixie", "arm64"),
    ImageTemplate("ubuntu_noble", "Ubuntu 24.04 Noble Numbat", "x86_64"),
)

_IMAGE_NAMESPACE = uuid.UUID("6f1f2b6e-5c1d-4b4e-9a51-8c9d1e2f3a4b")


def image_id(zone: str, label: str, arch: str) -> str:
    return str(uuid.uuid5(_IMAGE_NAMESPACE, f"{zone}/{label}/{arch}"))
