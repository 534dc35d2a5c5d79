"""The Hetzner catalog the emulator serves: locations, server types with prices, system images.

Figures are plausible late-2025 list prices in EUR (net), not a price list to rely on. Prices are
rendered as decimal strings with the API's precision; gross adds the 19 % German VAT. ARM (``cax``)
and the cost-optimised ``cx`` line exist in the EU locations only, as on the real platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from legion_nb.emulators.hetzner.wire import Json

__all__ = [
    "IMAGES",
    "LOAD_BALANCER_TYPES",
    "LOCATIONS",
    "SERVER_TYPES",
    "VAT_RATE",
    "Image",
    "Location",
    "ServerType",
    "pricing",
]

VAT_RATE = Decimal("0.19")
_GIB = 1024**4  # included traffic is rendered in bytes (per TB)


@dataclass(frozen=True)
class Location:
    id: int
    name: str
    description: str
    country: str
    city: str
    latitude: float
    longitude: float
    network_zone: str
    price_factor: Decimal

    def wire(self) -> Json:
        """Rendered once: catalog entries never change (callers must not mutate the result)."""
        return self._rendered

    @cached_property
    def _rendered(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "country": self.country,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "network_zone": self.network_zone,
        }


LOCATIONS: tuple[Location, ...] = (
    Location(
        1, "fsn1", "Falkenstein DC Park 1", "DE", "Falkenstein", 50.47612, 12.370071, "eu-central", Decimal(1)
    ),
    Location(
        2, "nbg1", "Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "eu-central", Decimal(1)
    ),
    Location(
        3, "hel1", "Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "eu-central", Decimal(1)
    ),
    Location(4, "ash", "Ashburn, VA", "US", "Ashburn, VA", 39.0437, -77.4875, "us-east", Decimal("1.2")),
    Location(5, "hil", "Hillsboro, OR", "US", "Hillsboro, OR", 45.54, -122.9353, "us-west", Decimal("1.2")),
    Location(6, "sin", "Singapore", "SG", "Singapore", 1.283333, 103.833333, "ap-southeast", Decimal("1.3")),
)
_EU = ("fsn1", "nbg1", "hel1")
_ALL = tuple(loc.name for loc in LOCATIONS)


@dataclass(frozen=True)
class ServerType:
    id: int
    name: str
    description: str
    cores: int
    memory: float
    disk: int
    cpu_type: str
    architecture: str
    category: str
    hourly: Decimal
    monthly: Decimal
    locations: tuple[str, ...]
    included_tb: int = 20

    def prices(self) -> list[Json]:
        return [
            _location_price(loc, self.hourly, self.monthly, self.included_tb)
            for loc in LOCATIONS
            if loc.name in self.locations
        ]

    def wire(self) -> Json:
        """Rendered once: catalog entries never change (callers must not mutate the result)."""
        return self._rendered

    @cached_property
    def _rendered(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "cores": self.cores,
            "memory": self.memory,
            "disk": self.disk,
            "deprecated": False,
            "deprecation": None,
            "prices": self.prices(),
            "storage_type": "local",
            "cpu_type": self.cpu_type,
            "architecture": self.architecture,
            "locations": [
                {"id": loc.id, "name": loc.name, "available": True, "recommended": True, "deprecation": None}
                for loc in LOCATIONS
                if loc.name in self.locations
            ],
        }


def _location_price(location: Location, hourly: Decimal, monthly: Decimal, included_tb: int) -> Json:
    """One per-location price entry, scaled by the location's price factor."""
    return {
        "location": location.name,
        "price_hourly": _price(hourly * location.price_factor),
        "price_monthly": _price(monthly * location.price_factor),
        "included_traffic": included_tb * _GIB,
        "price_per_tb_traffic": _price(Decimal("1.00") * location.price_factor),
    }


def _price(net: Decimal) -> Json:
    quantum = Decimal("0.0000000001")
    gross = net * (1 + VAT_RATE)
    return {"net": str(net.quantize(quantum)), "gross": str(gross.quantize(quantum))}


SERVER_TYPES: tuple[ServerType, ...] = (
    ServerType(
        104,
        "cx22",
        "CX22",
        2,
        4.0,
        40,
        "shared",
        "x86",
        "cost_optimized",
        Decimal("0.0060"),
        Decimal("3.79"),
        _EU,
    ),
    ServerType(
        105,
        "cx32",
        "CX32",
        4,
        8.0,
        80,
        "shared",
        "x86",
        "cost_optimized",
        Decimal("0.0109"),
        Decimal("6.80"),
        _EU,
    ),
    ServerType(
        106,
        "cx42",
        "CX42",
        8,
        16.0,
        160,
        "shared",
        "x86",
        "cost_optimized",
        Decimal("0.0263"),
        Decimal("16.40"),
        _EU,
    ),
    ServerType(
        22,
        "cpx11",
        "CPX 11",
        2,
        2.0,
        40,
        "shared",
        "x86",
        "regular_purpose",
        Decimal("0.0070"),
        Decimal("4.35"),
        _ALL,
    ),
    ServerType(
        23,
        "cpx21",
        "CPX 21",
        3,
        4.0,
        80,
        "shared",
        "x86",
        "regular_purpose",
        Decimal("0.0121"),
        Decimal("7.55"),
        _ALL,
    ),
    ServerType(
        24,
        "cpx31",
        "CPX 31",
        4,
        8.0,
        160,
        "shared",
        "x86",
        "regular_purpose",
        Decimal("0.0218"),
        Decimal("13.60"),
        _ALL,
    ),
    ServerType(
        45,
        "cax11",
        "CAX11",
        2,
        4.0,
        40,
        "shared",
        "arm",
        "cost_optimized",
        Decimal("0.0060"),
        Decimal("3.79"),
        _EU,
    ),
    ServerType(
        93,
        "cax21",
        "CAX21",
        4,
        8.0,
        80,
        "shared",
        "arm",
        "cost_optimized",
        Decimal("0.0104"),
        Decimal("6.49"),
        _EU,
    ),
    ServerType(
        96,
        "ccx13",
        "CCX13 Dedicated CPU",
        2,
        8.0,
        80,
        "dedicated",
        "x86",
        "general_purpose",
        Decimal("0.0200"),
        Decimal("12.49"),
        _ALL,
    ),
)


@dataclass(frozen=True)
class LoadBalancerType:
    """A load balancer size, listed for ``/pricing`` only: the sandbox serves no load balancers."""

    id: int
    name: str
    hourly: Decimal
    monthly: Decimal
    included_tb: int

    def prices(self) -> list[Json]:
        return [_location_price(loc, self.hourly, self.monthly, self.included_tb) for loc in LOCATIONS]


LOAD_BALANCER_TYPES: tuple[LoadBalancerType, ...] = (
    LoadBalancerType(1, "lb11", Decimal("0.0088"), Decimal("5.39"), 1),
    LoadBalancerType(2, "lb21", Decimal("0.0264"), Decimal("16.40"), 2),
    LoadBalancerType(3, "lb31", Decimal("0.0528"), Decimal("32.90"), 3),
)


@dataclass(frozen=True)
class Image:
    id: int
    name: str
    description: str
    os_flavor: str
    os_version: str
    architecture: str

    def wire(self) -> Json:
        """Rendered once: catalog entries never change (callers must not mutate the result)."""
        return self._rendered

    @cached_property
    def _rendered(self) -> Json:
        return {
            "id": self.id,
            "type": "system",
            "status": "available",
            "name": self.name,
            "description": self.description,
            "image_size": None,
            "disk_size": 5,
            "created": "2025-06-10T09:00:00+00:00",
            "created_from": None,
            "bound_to": None,
            "os_flavor": self.os_flavor,
            "os_version": self.os_version,
            "rapid_deploy": True,
            "protection": {"delete": False},
            "deprecated": None,
            "deprecation": None,
            "deleted": None,
            "labels": {},
            "architecture": self.architecture,
        }


def _image_pair(base_id: int, name: str, description: str, flavor: str, version: str) -> tuple[Image, Image]:
    return (
        Image(base_id, name, description, flavor, version, "x86"),
        Image(base_id + 1, name, description, flavor, version, "arm"),
    )


IMAGES: tuple[Image, ...] = (
    *_image_pair(114690387, "debian-12", "Debian 12", "debian", "12"),
    *_image_pair(232830931, "debian-13", "Debian 13", "debian", "13"),
    *_image_pair(161547269, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04"),
    *_image_pair(103908070, "ubuntu-22.04", "Ubuntu 22.04", "ubuntu", "22.04"),
)


def pricing() -> Json:
    """The ``/pricing`` document: currency, VAT and per-resource prices."""
    return {
        "currency": "EUR",
        "vat_rate": str((VAT_RATE * 100).quantize(Decimal("0.01"))),
        "image": {"price_per_gb_month": _price(Decimal("0.0119"))},
        "floating_ip": {"price_monthly": _price(Decimal("3.00"))},
        "floating_ips": [
            {
                "type": "ipv4",
                "prices": [
                    {"location": loc.name, "price_monthly": _price(Decimal("3.00"))} for loc in LOCATIONS
                ],
            },
        ],
        "primary_ips": [
            {
                "type": kind,
                "prices": [
                    {
                        "location": loc.name,
                        "price_hourly": _price(hourly),
                        "price_monthly": _price(monthly),
                    }
                    for loc in LOCATIONS
                ],
            }
            for kind, hourly, monthly in (
                ("ipv4", Decimal("0.0008"), Decimal("0.50")),
                ("ipv6", Decimal(0), Decimal(0)),
            )
        ],
        "server_backup": {"percentage": "20.00"},
        "volume": {"price_per_gb_month": _price(Decimal("0.0440"))},
        "server_types": [{"id": st.id, "name": st.name, "prices": st.prices()} for st in SERVER_TYPES],
        "load_balancer_types": [
            {"id": lb.id, "name": lb.name, "prices": lb.prices()} for lb in LOAD_BALANCER_TYPES
        ],
    }
