"""Hetzner Cloud API v1 wire shapes, as the API sends and accepts them.

These are typing aids for the JSON the adapter reads and writes; nothing outside
``legion_nb.providers.hetzner`` sees them (the engine sees ``base`` records). Field names follow the
public OpenAPI spec. Optional keys are ``NotRequired``: the adapter reads them with ``.get``.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "Action",
    "ActionStatus",
    "Firewall",
    "FirewallAppliedTo",
    "FirewallRule",
    "FloatingIp",
    "FloatingIpPricing",
    "Image",
    "Location",
    "Pagination",
    "Price",
    "Pricing",
    "PrimaryIp",
    "PrimaryIpPricing",
    "RRSet",
    "Server",
    "ServerStatus",
    "ServerType",
    "ServerTypePrice",
    "SshKey",
    "Zone",
]

ServerStatus = Literal[
    "initializing", "starting", "running", "stopping", "off", "deleting", "rebuilding", "migrating", "unknown"
]
ActionStatus = Literal["running", "success", "error"]


class Pagination(TypedDict):
    page: int
    per_page: int
    previous_page: int | None
    next_page: int | None
    last_page: int | None
    total_entries: int | None


class ActionError(TypedDict):
    code: str
    message: str


class ActionResource(TypedDict):
    id: int
    type: str


class Action(TypedDict):
    id: int
    command: str
    status: ActionStatus
    progress: int
    started: str
    finished: str | None
    resources: list[ActionResource]
    error: ActionError | None


class Price(TypedDict):
    net: str
    gross: str


class ServerTypePrice(TypedDict):
    location: str
    price_hourly: Price
    price_monthly: Price
    included_traffic: NotRequired[int]
    price_per_tb_traffic: NotRequired[Price]


class ServerTypeLocation(TypedDict):
    name: str
    deprecation: NotRequired[dict[str, str] | None]
    available: NotRequired[bool]


class ServerType(TypedDict):
    id: int
    name: str
    description: NotRequired[str]
    cores: int
    memory: float
    disk: int
    cpu_type: NotRequired[str]
    architecture: Literal["x86", "arm"]
    prices: list[ServerTypePrice]
    locations: NotRequired[list[ServerTypeLocation]]
    deprecated: NotRequired[bool | None]
    deprecation: NotRequired[dict[str, str] | None]


class Location(TypedDict):
    id: int
    name: str
    description: NotRequired[str]
    country: str
    city: str
    network_zone: NotRequired[str]


class Image(TypedDict):
    id: int
    type: Literal["system", "app", "snapshot", "backup"]
    status: NotRequired[str]
    name: str | None
    description: NotRequired[str]
    os_flavor: str
    os_version: str | None
    architecture: Literal["x86", "arm"]
    deprecated: NotRequired[str | None]


class Ipv4(TypedDict):
    ip: str
    dns_ptr: NotRequired[str]


class Ipv6(TypedDict):
    ip: str


class PublicNet(TypedDict):
    ipv4: Ipv4 | None
    ipv6: Ipv6 | None
    floating_ips: NotRequired[list[int]]
    firewalls: NotRequired[list[dict[str, object]]]


class Server(TypedDict):
    id: int
    name: str
    status: ServerStatus
    created: str
    public_net: PublicNet
    server_type: ServerType
    location: NotRequired[Location]
    image: Image | None
    labels: dict[str, str]
    outgoing_traffic: NotRequired[int | None]
    included_traffic: NotRequired[int | None]


class LocationPrice(TypedDict):
    location: str
    price_hourly: NotRequired[Price]
    price_monthly: Price


class PrimaryIpPricing(TypedDict):
    type: Literal["ipv4", "ipv6"]
    prices: list[LocationPrice]


class FloatingIpPricing(TypedDict):
    type: Literal["ipv4", "ipv6"]
    prices: list[LocationPrice]
    """Per location; floating IPs publish ``price_monthly`` only."""


class Pricing(TypedDict):
    currency: str
    primary_ips: NotRequired[list[PrimaryIpPricing]]
    floating_ips: NotRequired[list[FloatingIpPricing]]


class SshKey(TypedDict):
    id: int
    name: str
    fingerprint: str
    public_key: str
    labels: dict[str, str]


class FirewallRule(TypedDict):
    direction: Literal["in", "out"]
    protocol: Literal["tcp", "udp", "icmp", "esp", "gre"]
    port: NotRequired[str | None]
    source_ips: list[str]
    destination_ips: list[str]
    description: NotRequired[str | None]


class FirewallServerRef(TypedDict):
    id: int


class FirewallAppliedTo(TypedDict):
    type: Literal["server", "label_selector"]
    server: NotRequired[FirewallServerRef]
    label_selector: NotRequired[dict[str, str]]


class Firewall(TypedDict):
    id: int
    name: str
    labels: dict[str, str]
    rules: list[FirewallRule]
    applied_to: list[FirewallAppliedTo]


class FloatingIp(TypedDict):
    id: int
    name: str
    ip: str
    type: Literal["ipv4", "ipv6"]
    server: int | None
    home_location: Location
    labels: dict[str, str]
    created: NotRequired[str]


class PrimaryIp(TypedDict):
    id: int
    name: str
    ip: str
    type: Literal["ipv4", "ipv6"]
    assignee_id: int | None
    assignee_type: NotRequired[str]
    location: Location
    labels: dict[str, str]
    created: str


class Zone(TypedDict):
    id: int
    name: str
    mode: Literal["primary", "secondary"]
    ttl: int
    labels: dict[str, str]


class RRSetRecord(TypedDict):
    value: str
    comment: NotRequired[str | None]


class RRSet(TypedDict):
    id: str
    name: str
    type: str
    ttl: int | None
    records: list[RRSetRecord]
    labels: NotRequired[dict[str, str]]
