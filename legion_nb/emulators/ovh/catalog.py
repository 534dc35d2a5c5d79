"""The sandbox's OVHcloud Public Cloud catalog: regions, flavors, images and hourly prices.

At OVHcloud a flavor or an image is not a global name: each exists once *per region*, with its own
UUID. A client therefore has to pick the flavor id and the image id that belong to the region it
creates the instance in; the emulator enforces that, because an adapter that mixes regions fails
against the real API too. Ids are UUIDv5 of ``region/name`` so that every sandbox (whatever its seed)
shows the same catalog and tests can name ids without asking first.

Prices are hourly, without tax, in EUR, close to OVHcloud's public price list of late 2026 (the exact
figures are not the point; their order of magnitude and their per-flavor differences are).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FLAVORS",
    "IMAGES",
    "REGIONS",
    "Catalog",
    "Flavor",
    "Image",
    "Region",
    "flavor_id",
    "order_catalog",
]

_NAMESPACE = uuid.UUID("6f0e3c1e-3d55-4c8e-9a51-0a4b8c7d2e10")


@dataclass(frozen=True)
class Region:
    name: str
    continent: str
    datacenter: str
    countries: tuple[str, ...]


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    kind: str
    hourly_eur: float
    monthly_eur: float
    bandwidth_mbps: int


@dataclass(frozen=True)
class Image:
    name: str
    user: str
    min_disk_gb: int
    size_gb: float


REGIONS: tuple[Region, ...] = (
    Region("GRA11", "EU", "GRA", ("fr",)),
    Region("SBG5", "EU", "SBG", ("fr",)),
    Region("BHS5", "NA", "BHS", ("ca",)),
    Region("WAW1", "EU", "WAW", ("pl",)),
    Region("UK1", "EU", "LON", ("uk",)),
)

FLAVORS: tuple[Flavor, ...] = (
    Flavor("d2-2", 1, 2000, 25, "ovh.d2", 0.0099, 5.46, 100),
    Flavor("d2-4", 2, 4000, 50, "ovh.d2", 0.0198, 10.91, 100),
    Flavor("b2-7", 2, 7000, 50, "ovh.ssd.eg", 0.0681, 24.86, 250),
    Flavor("b3-8", 2, 8000, 50, "ovh.b3", 0.0508, 25.08, 500),
    Flavor("c3-4", 2, 4000, 50, "ovh.c3", 0.0448, 22.10, 500),
)

IMAGES: tuple[Image, ...] = (
    Image("Debian 12", "debian", 2, 0.4),
    Image("Debian 13", "debian", 2, 0.45),
    Image("Ubuntu 24.04", "ubuntu", 3, 0.6),
)


def _object_id(kind: str, region: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{region}/{name}"))


def flavor_id(region: str, name: str) -> str:
    """The id flavor ``name`` has in ``region``."""
    return _object_id("flavor", region, name)


class Catalog:
    """Lookup of the per-region catalog, rendered in OVHcloud's wire shapes."""

    def __init__(self) -> None:
        self.regions = {r.name: r for r in REGIONS}
        self._flavors: dict[str, tuple[Region, Flavor]] = {}
        self._images: dict[str, tuple[Region, Image]] = {}
        for region in REGIONS:
            for flavor in FLAVORS:
                self._flavors[_object_id("flavor", region.name, flavor.name)] = (region, flavor)
            for image in IMAGES:
                self._images[_object_id("image", region.name, image.name)] = (region, image)

    def flavor(self, flavor_id: str) -> tuple[Region, Flavor] | None:
        return self._flavors.get(flavor_id)

    def image(self, image_id: str) -> tuple[Region, Image] | None:
        return self._images.get(image_id)

    def flavor_json(self, flavor_id: str) -> dict[str, Any]:
        region, flavor = self._flavors[flavor_id]
        return {
            "id": flavor_id,
            "name": flavor.name,
            "region": region.name,
            "vcpus": flavor.vcpus,
            "ram": flavor.ram_mb,
            "disk": flavor.disk_gb,
            "type": flavor.kind,
            "osType": "linux",
            "inboundBandwidth": flavor.bandwidth_mbps,
            "outboundBandwidth": flavor.bandwidth_mbps,
            "available": True,
            "quota": 20,
            "planCodes": {
                "hourly": f"{flavor.name}.consumption",
                "monthly": f"{flavor.name}.monthly.postpaid",
            },
            "capabilities": [
                {"name": "resize", "enabled": True},
                {"name": "snapshot", "enabled": True},
                {"name": "volume", "enabled": True},
                {"name": "failoverip", "enabled": True},
            ],
        }

    def image_json(self, image_id: str) -> dict[str, Any]:
        region, image = self._images[image_id]
        return {
            "id": image_id,
            "name": image.name,
            "region": region.name,
            "type": "linux",
            "visibility": "public",
            "status": "active",
            "user": image.user,
            "minDisk": image.min_disk_gb,
            "minRam": 0,
            "size": image.size_gb,
            "flavorType": None,
            "tags": [],
            "planCode": None,
            "creationDate": "2026-09-01T00:00:00Z",
        }

    def region_json(self, name: str) -> dict[str, Any]:
        region = self.regions[name]
        return {
            "name": region.name,
            "type": "region",
            "status": "UP",
            "continentCode": region.continent,
            "datacenterLocation": region.datacenter,
            "ipCountries": list(region.countries),
            # Real regions list each service's OpenStack endpoint; the sandbox hands out no address
            # outside loopback, so the endpoints are left out.
            "services": [{"name": "instance", "status": "UP"}, {"name": "network", "status": "UP"}],
        }

    def flavor_ids(self, region: str | None = None) -> list[str]:
        return [fid for fid, (r, _) in self._flavors.items() if region is None or r.name == region]

    def image_ids(self, region: str | None = None) -> list[str]:
        return [iid for iid, (r, _) in self._images.items() if region is None or r.name == region]


def order_catalog() -> dict[str, Any]:
    """``GET /order/catalog/public/cloud``: where OVHcloud publishes Public Cloud prices.

    Prices are integers in 1e-8 of the currency unit, as in the real catalog; each flavor has an
    hourly ``<name>.consumption`` add-on and a ``<name>.monthly.postpaid`` add-on.
    """
    addons: list[dict[str, Any]] = []
    for flavor in FLAVORS:
        for plan, interval, price in (
            (f"{flavor.name}.consumption", "hour", flavor.hourly_eur),
            (f"{flavor.name}.monthly.postpaid", "month", flavor.monthly_eur),
        ):
            addons.append(
                {
                    "planCode": plan,
                    "invoiceName": f"{flavor.name} instance",
                    "product": f"publiccloud-instance-{flavor.name}",
                    "pricingType": "consumption" if interval == "hour" else "rental",
                    "pricings": [
                        {
                            "price": round(price * 100_000_000),
                            "tax": 0,
                            "intervalUnit": interval,
                            "interval": 1,
                            "capacities": ["consumption"] if interval == "hour" else ["renew"],
                            "description": f"{flavor.name} {interval}ly price",
                        }
                    ],
                    "blobs": {
                        "technical": {
                            "cpu": {"cores": flavor.vcpus},
                            "memory": {"size": flavor.ram_mb // 1000},
                        }
                    },
                }
            )
    return {
        "catalogId": 1,
        "locale": {"currencyCode": "EUR", "subsidiary": "FR", "taxRate": 20},
        "plans": [{"planCode": "project.2018", "invoiceName": "Public Cloud Project", "addonFamilies": []}],
        "addons": addons,
    }
