"""Scaleway's JSON shapes, as the adapter reads them (``total=False``: read defensively, every key may
be absent in an older or newer API version).

Enumerations are kept as plain ``str`` on purpose: Scaleway renders some in upper case (rule
``protocol``: ``TCP``) and documents them in lower case, so the adapter compares them case-insensitively
(:func:`legion_nb.providers.scaleway.convert.enum`) instead of trusting a ``Literal``.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "SERVER_STATES",
    "ConsumptionJson",
    "DnsRecordJson",
    "DnsZoneJson",
    "FlexibleIpJson",
    "LocalImageJson",
    "RuleJson",
    "SecurityGroupJson",
    "ServerIpJson",
    "ServerJson",
    "ServerTypeJson",
    "SshKeyJson",
    "TaskJson",
]

ServerState = Literal["running", "stopped", "stopped in place", "starting", "stopping", "locked"]
SERVER_STATES: tuple[str, ...] = ("running", "stopped", "stopped in place", "starting", "stopping", "locked")
ServerAction = Literal["poweron", "poweroff", "stop_in_place", "reboot", "terminate"]


class Ref(TypedDict, total=False):
    id: str
    name: str


class ServerIpJson(TypedDict, total=False):
    id: str
    address: str
    family: str
    dynamic: bool


class ImageJson(TypedDict, total=False):
    id: str
    name: str
    arch: str


class ServerJson(TypedDict, total=False):
    id: str
    name: str
    commercial_type: str
    state: str
    state_detail: str
    zone: str
    tags: list[str]
    image: ImageJson | None
    public_ip: ServerIpJson | None
    public_ips: list[ServerIpJson]
    ipv6: dict[str, str] | None
    security_group: Ref | None
    creation_date: str
    project: str


class TaskJson(TypedDict, total=False):
    id: str
    description: str
    status: str
    href_from: str
    href_result: str
    progress: int


class VolumeConstraintJson(TypedDict, total=False):
    min_size: int
    max_size: int


class ServerTypeJson(TypedDict, total=False):
    hourly_price: float
    monthly_price: float
    ncpus: int
    ram: int
    arch: str
    volumes_constraint: VolumeConstraintJson
    end_of_service: bool


class LocalImageJson(TypedDict, total=False):
    id: str
    label: str
    arch: str
    zone: str
    compatible_commercial_types: list[str]
    type: str


class RuleJson(TypedDict, total=False):
    id: str
    protocol: str
    direction: str
    action: str
    ip_range: str
    dest_port_from: int | None
    dest_port_to: int | None
    position: int
    editable: bool


class SecurityGroupJson(TypedDict, total=False):
    id: str
    name: str
    zone: str
    tags: list[str]
    servers: list[Ref]
    project_default: bool
    inbound_default_policy: str
    outbound_default_policy: str


class FlexibleIpJson(TypedDict, total=False):
    id: str
    address: str
    type: str
    zone: str
    tags: list[str]
    server: Ref | None


class SshKeyJson(TypedDict, total=False):
    id: str
    name: str
    public_key: str
    fingerprint: str
    disabled: bool


class DnsZoneJson(TypedDict, total=False):
    domain: str
    subdomain: str
    status: str
    project_id: str


class DnsRecordJson(TypedDict, total=False):
    id: str
    name: str
    type: str
    data: str
    ttl: int
    priority: int


class MoneyJson(TypedDict, total=False):
    currency_code: str
    units: int
    nanos: int


class ConsumptionJson(TypedDict, total=False):
    value: MoneyJson
    product_name: str
    resource_name: str
    sku: str
    project_id: str
    category_name: str
    unit: str
    billed_quantity: str
    consumer_id: str
