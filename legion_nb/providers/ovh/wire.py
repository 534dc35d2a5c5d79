"""OVHcloud API v1 (``/1.0``) wire shapes the adapter reads and writes, as typed dicts.

Only the fields Legion uses are declared (``total=False`` where OVHcloud omits or nulls them). Names
follow the wire exactly (camelCase), so a reader can hold this file next to the API console.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "ACTIVE_STATUSES",
    "DELETING_STATUSES",
    "ERROR_STATUSES",
    "OFF_STATUSES",
    "FlavorWire",
    "ImageWire",
    "InstanceCreateWire",
    "InstanceStatus",
    "InstanceWire",
    "IpAddressWire",
    "OrderAddonWire",
    "OrderCatalogWire",
    "RecordCreateWire",
    "RecordWire",
    "RegionWire",
    "SshKeyWire",
    "UsageInstanceDetailWire",
    "UsageInstanceWire",
    "UsageWire",
]

InstanceStatus = Literal[
    "ACTIVE",
    "BUILD",
    "BUILDING",
    "DELETED",
    "DELETING",
    "ERROR",
    "HARD_REBOOT",
    "MIGRATING",
    "PASSWORD",
    "PAUSED",
    "REBOOT",
    "REBUILD",
    "RESCUE",
    "RESCUED",
    "RESCUING",
    "RESIZE",
    "RESUMING",
    "REVERT_RESIZE",
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SNAPSHOTTING",
    "SOFT_DELETED",
    "STOPPED",
    "SUSPENDED",
    "UNKNOWN",
    "UNRESCUING",
    "VERIFY_RESIZE",
]

ACTIVE_STATUSES = frozenset({"ACTIVE"})
OFF_STATUSES = frozenset({"SHUTOFF", "STOPPED", "SHELVED", "SHELVED_OFFLOADED", "PAUSED", "SUSPENDED"})
DELETING_STATUSES = frozenset({"DELETING", "DELETED", "SOFT_DELETED"})
ERROR_STATUSES = frozenset({"ERROR"})


class IpAddressWire(TypedDict, total=False):
    ip: str
    type: Literal["public", "private"]
    version: int
    networkId: str
    gatewayIp: str | None


class FlavorWire(TypedDict, total=False):
    id: str
    name: str
    region: str
    vcpus: int
    ram: int
    """Megabytes as OVHcloud counts them (b2-7 has 7000)."""
    disk: int
    type: str
    osType: str
    available: bool
    planCodes: dict[str, str | None]


class ImageWire(TypedDict, total=False):
    id: str
    name: str
    region: str
    type: str
    visibility: str
    status: str
    user: str


class SshKeyWire(TypedDict, total=False):
    id: str
    name: str
    publicKey: str
    fingerprint: str
    regions: list[str]


class InstanceWire(TypedDict, total=False):
    """``GET .../instance`` items (ids of flavor and image) and ``GET .../instance/{id}`` (objects)."""

    id: str
    name: str
    status: str
    region: str
    created: str
    ipAddresses: list[IpAddressWire]
    flavorId: str
    imageId: str
    sshKeyId: str | None
    flavor: FlavorWire
    image: ImageWire
    monthlyBilling: dict[str, str] | None
    planCode: str | None


class InstanceCreateWire(TypedDict, total=False):
    name: str
    flavorId: str
    imageId: str
    region: str
    sshKeyId: str
    userData: str
    monthlyBilling: bool


class RegionWire(TypedDict, total=False):
    name: str
    status: str
    continentCode: str
    datacenterLocation: str
    ipCountries: list[str]


class RecordWire(TypedDict):
    id: int
    zone: str
    fieldType: str
    subDomain: str
    target: str
    ttl: int


class RecordCreateWire(TypedDict):
    fieldType: str
    subDomain: str
    target: str
    ttl: int


class UsageQuantityWire(TypedDict, total=False):
    unit: str
    value: float


class UsageInstanceDetailWire(TypedDict, total=False):
    instanceId: str
    quantity: UsageQuantityWire
    activation: str
    totalPrice: float


class UsageInstanceWire(TypedDict, total=False):
    reference: str
    """The flavor name."""
    region: str
    totalPrice: float
    details: list[UsageInstanceDetailWire]


class UsageWire(TypedDict, total=False):
    """``usage/current`` and ``usage/history/{id}``; ``period`` is ``{"from", "to"}`` on the wire
    (``from`` is a Python keyword, so it is read with ``.get("from")``)."""

    id: str
    period: dict[str, str]
    lastUpdate: str
    hourlyUsage: dict[str, list[UsageInstanceWire]]
    monthlyUsage: dict[str, list[UsageInstanceWire]]


class OrderPricingWire(TypedDict, total=False):
    price: int
    """In 1e-8 of the currency unit."""
    intervalUnit: str


class OrderAddonWire(TypedDict, total=False):
    planCode: str
    pricings: list[OrderPricingWire]


class OrderCatalogWire(TypedDict, total=False):
    locale: dict[str, str | int]
    addons: list[OrderAddonWire]
