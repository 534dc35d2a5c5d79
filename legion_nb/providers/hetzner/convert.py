"""Hetzner wire shapes -> provider-neutral records (and the few records -> wire shapes).

Pure functions, no I/O. A body that lacks a documented field raises ``ProviderResponseError`` via
:func:`convert`, so a provider-side format change is one clear error instead of a ``KeyError`` deep in
the engine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from legion_nb.errors import ValidationError
from legion_nb.providers.hetzner import wire
from legion_nb.providers.http import ProviderResponseError
from legion_nb.providers.records import (
    Catalog,
    CatalogAddon,
    CatalogImage,
    CatalogLocation,
    CatalogPrice,
    CatalogServerType,
    DnsRecord,
    DnsRecordType,
    DnsZone,
    Firewall,
    FirewallRule,
    Operation,
    OperationState,
    PortRange,
    PublicIp,
    PublicIpKind,
    Server,
    ServerStatus,
    SshKey,
)

__all__ = [
    "PROVIDER",
    "catalog_image",
    "catalog_location",
    "catalog_server_type",
    "convert",
    "firewall",
    "firewall_rule",
    "floating_ip",
    "label_selector",
    "operation",
    "operation_state",
    "primary_ip",
    "rrset",
    "rule_to_wire",
    "server",
    "server_status",
    "ssh_key",
    "zone",
]

PROVIDER = "hetzner"

T = TypeVar("T")

_STATUS: dict[str, ServerStatus] = {
    "initializing": "provisioning",
    "starting": "provisioning",
    "rebuilding": "provisioning",
    "migrating": "provisioning",
    "running": "running",
    "stopping": "off",
    "off": "off",
    "deleting": "deleting",
}


def convert(fn: Callable[[Any], T], payload: Any, what: str) -> T:
    """Run one conversion; a body that is not the documented shape becomes one clear error."""
    try:
        return fn(payload)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        raise ProviderResponseError(PROVIDER, f"unexpected {what} shape from the API ({exc!r})") from exc


def label_selector(labels: Mapping[str, str]) -> str:
    """``{"a": "1", "b": "2"}`` -> ``a=1,b=2`` (comma is AND)."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def server_status(raw: str) -> ServerStatus:
    return _STATUS.get(raw, "unknown")


def _created(raw: str | None) -> datetime | None:
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _ipv6_address(block: str) -> str:
    """A server's IPv6 address from its ``/64`` block: Hetzner's images configure ``<prefix>::1``.

    The API reports the block (``2001:db8:1:2::/64``), while DNS AAAA records, certificate names and
    firewall peers need one address.
    """
    network = ipaddress.IPv6Network(block, strict=False)
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network.network_address + 1)


def server(data: wire.Server) -> Server:
    public = data["public_net"]
    ipv4 = public.get("ipv4")
    ipv6 = public.get("ipv6")
    image = data.get("image")
    location = data.get("location")
    return Server(
        provider=PROVIDER,
        id=str(data["id"]),
        name=data["name"],
        status=server_status(data["status"]),
        provider_status=data["status"],
        ipv4=ipv4["ip"] if ipv4 else None,
        ipv6=_ipv6_address(ipv6["ip"]) if ipv6 else None,
        server_type=data["server_type"]["name"] if data.get("server_type") else None,
        location=location["name"] if location else None,
        image=(image.get("name") or str(image["id"])) if image else None,
        labels=dict(data.get("labels") or {}),
        created=_created(data.get("created")),
        outgoing_traffic=data.get("outgoing_traffic"),
        included_traffic=data.get("included_traffic"),
    )


def ssh_key(data: wire.SshKey) -> SshKey:
    return SshKey(
        provider=PROVIDER,
        id=str(data["id"]),
        name=data["name"],
        fingerprint=data.get("fingerprint"),
        public_key=data["public_key"],
        labels=dict(data.get("labels") or {}),
    )


def operation(data: wire.Action) -> Operation:
    resources = data.get("resources") or []
    first = resources[0] if resources else None
    return Operation(
        provider=PROVIDER,
        id=str(data["id"]),
        kind=data["command"],
        resource_id=str(first["id"]) if first else None,
        resource_type=first["type"] if first else "server",
    )


def operation_state(op: Operation, data: wire.Action) -> OperationState:
    error = data.get("error")
    return OperationState(
        operation=op,
        status=data["status"],
        progress=int(data.get("progress") or 0),
        error_code=error["code"] if error else None,
        error_message=error["message"] if error else None,
    )


def firewall_rule(data: wire.FirewallRule) -> FirewallRule:
    port = data.get("port")
    return FirewallRule(
        direction=data["direction"],
        protocol=data["protocol"],
        port=PortRange.parse(port) if port else None,
        sources=tuple(data.get("source_ips") or ()),
        destinations=tuple(data.get("destination_ips") or ()),
        description=data.get("description") or None,
    )


def rule_to_wire(rule: FirewallRule) -> wire.FirewallRule:
    body: wire.FirewallRule = {
        "direction": rule.direction,
        "protocol": rule.protocol,
        "source_ips": list(rule.sources) if rule.direction == "in" else [],
        "destination_ips": list(rule.destinations) if rule.direction == "out" else [],
    }
    if rule.port is not None:
        body["port"] = str(rule.port)
    elif rule.protocol in ("tcp", "udp"):
        body["port"] = "1-65535"
    if rule.description:
        body["description"] = rule.description
    return body


def firewall(data: wire.Firewall) -> Firewall:
    applied = tuple(
        str(item["server"]["id"])
        for item in data.get("applied_to") or []
        if item.get("type") == "server" and "server" in item
    )
    try:
        rules = tuple(firewall_rule(rule) for rule in data.get("rules") or [])
    except ValidationError as exc:
        raise ProviderResponseError(
            PROVIDER, f"firewall {data['id']} holds a rule we cannot read: {exc}"
        ) from exc
    return Firewall(
        provider=PROVIDER,
        id=str(data["id"]),
        name=data["name"],
        rules=rules,
        applied_to=applied,
        labels=dict(data.get("labels") or {}),
    )


def floating_ip(data: wire.FloatingIp) -> PublicIp:
    home = data.get("home_location")
    return _public_ip("floating", data, data.get("server"), home["name"] if home else None)


def primary_ip(data: wire.PrimaryIp) -> PublicIp:
    return _public_ip("primary", data, data.get("assignee_id"), data["location"]["name"])


def _public_ip(
    kind: PublicIpKind, data: wire.FloatingIp | wire.PrimaryIp, server_id: int | None, location: str | None
) -> PublicIp:
    """The fields both address resources share; they differ only in how they name their server
    (``server`` / ``assignee_id``) and their location (``home_location`` / ``location``)."""
    return PublicIp(
        provider=PROVIDER,
        kind=kind,
        id=str(data["id"]),
        name=data.get("name") or str(data["id"]),
        ip=data["ip"],
        ip_type=data["type"],
        server_id=str(server_id) if server_id is not None else None,
        location=location,
        labels=dict(data.get("labels") or {}),
        created=_created(data.get("created")),
    )


def zone(data: wire.Zone) -> DnsZone:
    return DnsZone(
        provider=PROVIDER,
        id=str(data["id"]),
        name=data["name"],
        ttl=data.get("ttl"),
        labels=dict(data.get("labels") or {}),
    )


def rrset(data: wire.RRSet) -> DnsRecord:
    return DnsRecord(
        name=data["name"],
        type=cast(DnsRecordType, data["type"]),
        ttl=data.get("ttl"),
        values=tuple(record["value"] for record in data.get("records") or []),
    )


def _money(raw: str) -> Decimal:
    return Decimal(str(raw))


def _traffic_price(price: wire.ServerTypePrice) -> Decimal | None:
    per_tb = price.get("price_per_tb_traffic")
    return _money(per_tb["net"]) if per_tb else None


def catalog_server_type(data: wire.ServerType) -> CatalogServerType:
    """Prices are net (without VAT), as Hetzner lists them; locations are the available, undeprecated
    ones (from ``locations`` where present, else the priced ones)."""
    prices = tuple(
        CatalogPrice(
            location=p["location"],
            hourly=_money(p["price_hourly"]["net"]),
            monthly=_money(p["price_monthly"]["net"]),
            per_tb_traffic=_traffic_price(p),
        )
        for p in data.get("prices") or []
    )
    listed = data.get("locations")
    if listed is not None:
        locations = tuple(
            loc["name"] for loc in listed if not loc.get("deprecation") and loc.get("available", True)
        )
    else:
        locations = tuple(p.location for p in prices)
    return CatalogServerType(
        name=data["name"],
        cores=int(data["cores"]),
        memory_gb=float(data["memory"]),
        disk_gb=int(data["disk"]),
        arch=data.get("architecture", "x86"),
        prices=prices,
        locations=locations,
        deprecated=bool(data.get("deprecated") or data.get("deprecation")),
        description=data.get("description"),
    )


def catalog_location(data: wire.Location) -> CatalogLocation:
    return CatalogLocation(
        name=data["name"], city=data["city"], country=data["country"], description=data.get("description")
    )


def catalog_image(data: wire.Image) -> CatalogImage:
    """Hetzner's create call takes an image's name, which (unlike the numeric id) is the same in every
    project, so the name doubles as the id."""
    name = data.get("name") or str(data["id"])
    return CatalogImage(
        id=name,
        name=name,
        os_flavor=data.get("os_flavor") or "unknown",
        os_version=data.get("os_version") or "",
        arch=data.get("architecture", "x86"),
        deprecated=bool(data.get("deprecated")),
    )


def catalog(
    server_types: Sequence[wire.ServerType],
    locations: Sequence[wire.Location],
    images: Sequence[wire.Image],
    currency: str,
    fetched_at: datetime,
    *,
    pricing: wire.Pricing | None = None,
) -> Catalog:
    """``pricing`` (``/pricing``) adds the addresses billed apart from servers: primary and floating
    IPs per type and location (``primary_ipv4``, ``floating_ipv4``, ...)."""
    return Catalog(
        provider=PROVIDER,
        currency=currency,
        server_types=tuple(catalog_server_type(t) for t in server_types),
        locations=tuple(catalog_location(loc) for loc in locations),
        images=tuple(catalog_image(i) for i in images if i.get("type", "system") == "system"),
        source="live",
        fetched_at=fetched_at,
        addons=tuple(
            CatalogAddon(
                name=f"{family}_{group['type']}",
                location=p["location"],
                hourly=_money(p["price_hourly"]["net"]) if p.get("price_hourly") else Decimal(0),
                monthly=_money(p["price_monthly"]["net"]),
            )
            for family, groups in _address_prices(pricing)
            for group in groups
            for p in group.get("prices") or []
        ),
    )


def _address_prices(
    pricing: wire.Pricing | None,
) -> list[tuple[str, Sequence[wire.PrimaryIpPricing | wire.FloatingIpPricing]]]:
    if pricing is None:
        return []
    return [("primary", pricing.get("primary_ips") or []), ("floating", pricing.get("floating_ips") or [])]
