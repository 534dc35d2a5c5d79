"""Scaleway wire shapes -> provider-neutral records (and the few reverse mappings).

Ids of zonal resources (servers, security groups, flexible IPs) are returned as ``"<zone>/<uuid>"``,
the form Scaleway's own tooling uses: a bare Scaleway uuid does not say which zone's API to ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from legion_nb.errors import ProviderNotFoundError
from legion_nb.providers.http import ProviderResponseError
from legion_nb.providers.ownership import (
    decode_owned_name,
    labels_from_tags,
)
from legion_nb.providers.records import (
    BillingEntry,
    CatalogImage,
    CatalogLocation,
    CatalogPrice,
    CatalogServerType,
    DnsRecord,
    FirewallRule,
    PortRange,
    PublicIp,
    Server,
    ServerStatus,
    SshKey,
    rrsets_from_values,
)
from legion_nb.providers.scaleway import wire

__all__ = [
    "LOCATIONS",
    "PROVIDER",
    "billing_entry",
    "catalog_image",
    "enum",
    "firewall_rules",
    "flexible_ip",
    "invoice_entry",
    "months",
    "qualified",
    "record_sets",
    "rules_to_wire",
    "server",
    "server_status",
    "server_type",
    "split_id",
    "ssh_key",
    "tags_for",
]

PROVIDER = "scaleway"
NAME_LABEL = "legion/name"
"""Tag key holding the name of resources Scaleway gives no name (flexible IPs)."""

LOCATIONS: dict[str, CatalogLocation] = {
    "fr-par-1": CatalogLocation("fr-par-1", "Paris", "FR", "Paris 1"),
    "fr-par-2": CatalogLocation("fr-par-2", "Paris", "FR", "Paris 2"),
    "fr-par-3": CatalogLocation("fr-par-3", "Paris", "FR", "Paris 3"),
    "nl-ams-1": CatalogLocation("nl-ams-1", "Amsterdam", "NL", "Amsterdam 1"),
    "nl-ams-2": CatalogLocation("nl-ams-2", "Amsterdam", "NL", "Amsterdam 2"),
    "nl-ams-3": CatalogLocation("nl-ams-3", "Amsterdam", "NL", "Amsterdam 3"),
    "pl-waw-1": CatalogLocation("pl-waw-1", "Warsaw", "PL", "Warsaw 1"),
    "pl-waw-2": CatalogLocation("pl-waw-2", "Warsaw", "PL", "Warsaw 2"),
    "pl-waw-3": CatalogLocation("pl-waw-3", "Warsaw", "PL", "Warsaw 3"),
}

_IMAGE_VERSIONS: dict[str, tuple[str, str]] = {
    "debian_bullseye": ("debian", "11"),
    "debian_bookworm": ("debian", "12"),
    "debian_trixie": ("debian", "13"),
    "ubuntu_jammy": ("ubuntu", "22.04"),
    "ubuntu_noble": ("ubuntu", "24.04"),
}


def enum(value: object) -> str:
    """A Scaleway enumeration value, normalized: Scaleway mixes ``TCP`` and ``tcp``."""
    return str(value or "").strip().lower()


def qualified(zone: str, raw_id: str) -> str:
    return f"{zone}/{raw_id}"


def split_id(value: str, what: str) -> tuple[str, str]:
    """``("fr-par-1", "<uuid>")`` from ``"fr-par-1/<uuid>"``; NotFound for anything else."""
    zone, sep, raw = value.partition("/")
    if not sep or not zone or not raw or "/" in raw:
        raise ProviderNotFoundError(
            PROVIDER, f"no {what} with id {value!r}; Scaleway ids here look like fr-par-1/<uuid>"
        )
    return zone, raw


def tags_for(labels: Mapping[str, str], extra: Mapping[str, str] | None = None) -> list[str]:
    """Labels as ``key=value`` tags (Scaleway has tags, not labels), in a stable order."""
    merged = {**labels, **(extra or {})}
    return [f"{key}={value}" if value != "" else key for key, value in sorted(merged.items())]


def _created(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def server_status(state: str, detail: str = "") -> ServerStatus:
    state = enum(state).replace("_", " ")
    if state == "running":
        return "running"
    if state == "starting":
        return "provisioning"
    if state == "stopping":
        return "deleting" if "terminat" in enum(detail) else "off"
    if state in ("stopped", "stopped in place"):
        return "off"
    if state == "locked":
        return "error"
    return "unknown"


def _require(body: Mapping[str, Any], key: str, what: str) -> Any:
    value = body.get(key)
    if value is None:
        raise ProviderResponseError(PROVIDER, f"{what} lacks {key!r}")
    return value


def server(body: wire.ServerJson, zone: str, image_labels: Mapping[str, str] | None = None) -> Server:
    """``image_labels`` maps image ids to Marketplace labels (the catalog's image ids), when known."""
    zone = body.get("zone") or zone
    raw_id = str(_require(body, "id", "a server"))
    addresses = [ip for ip in (body.get("public_ips") or []) if ip.get("address")]
    if not addresses and body.get("public_ip"):
        addresses = [body["public_ip"]]  # type: ignore[list-item]
    ipv4 = next((ip["address"] for ip in addresses if enum(ip.get("family") or "inet") == "inet"), None)
    ipv6 = next((ip["address"] for ip in addresses if enum(ip.get("family")) == "inet6"), None)
    image = body.get("image") or {}
    state = str(body.get("state") or "")
    return Server(
        provider=PROVIDER,
        id=qualified(zone, raw_id),
        name=str(body.get("name") or ""),
        status=server_status(state, str(body.get("state_detail") or "")),
        provider_status=state,
        ipv4=ipv4,
        ipv6=ipv6,
        server_type=body.get("commercial_type"),
        location=zone,
        image=_image_ref(image, image_labels or {}),
        labels=labels_from_tags(body.get("tags") or []),
        created=_created(body.get("creation_date")),
    )


def _image_ref(image: object, labels: Mapping[str, str]) -> str | None:
    if not isinstance(image, dict):
        return None
    label = labels.get(str(image.get("id")))
    return label or (str(image["name"]) if image.get("name") else None)


def ssh_key(body: wire.SshKeyJson) -> SshKey:
    name, labels = decode_owned_name(str(body.get("name") or ""))
    return SshKey(
        provider=PROVIDER,
        id=str(_require(body, "id", "an SSH key")),
        name=name,
        fingerprint=body.get("fingerprint"),
        public_key=str(body.get("public_key") or ""),
        labels=labels,
    )


def flexible_ip(body: wire.FlexibleIpJson, zone: str) -> PublicIp:
    """A flexible IP: Scaleway's address made on its own and moved between servers (``floating``)."""
    zone = body.get("zone") or zone
    labels = labels_from_tags(body.get("tags") or [])
    name = labels.pop(NAME_LABEL, "") or str(body.get("address") or "")
    attached = body.get("server") or None
    ip_type: Literal["ipv4", "ipv6"] = "ipv6" if "ipv6" in enum(body.get("type")) else "ipv4"
    return PublicIp(
        provider=PROVIDER,
        kind="floating",
        id=qualified(zone, str(_require(body, "id", "a flexible IP"))),
        name=name,
        ip=str(body.get("address") or ""),
        ip_type=ip_type,
        server_id=qualified(zone, attached["id"]) if attached and attached.get("id") else None,
        location=zone,
        labels=labels,
    )


def firewall_rules(rules: Iterable[wire.RuleJson]) -> tuple[FirewallRule, ...]:
    """Editable accept rules, merged back into one rule per (direction, protocol, ports).

    Scaleway holds one CIDR per rule; Legion's rules hold many. Non-editable rules (Scaleway's own
    anti-spam defaults), drop rules and ``ANY`` rules are not Legion's and are left out.
    """
    merged: dict[tuple[str, str, PortRange | None], list[str]] = {}
    for rule in sorted(rules, key=lambda r: r.get("position") or 0):
        protocol = enum(rule.get("protocol"))
        if not rule.get("editable", True) or enum(rule.get("action")) != "accept":
            continue
        if protocol not in ("tcp", "udp", "icmp"):
            continue
        direction = "in" if enum(rule.get("direction")) == "inbound" else "out"
        first, last = rule.get("dest_port_from"), rule.get("dest_port_to")
        port = None
        if protocol != "icmp" and first:
            port = PortRange(int(first), int(last or first))
        merged.setdefault((direction, protocol, port), []).append(str(rule.get("ip_range") or "0.0.0.0/0"))
    out = []
    for (direction, protocol, port), ranges in merged.items():
        cidrs = tuple(dict.fromkeys(ranges))
        out.append(
            FirewallRule(
                direction=direction,  # type: ignore[arg-type]
                protocol=protocol,  # type: ignore[arg-type]
                port=port,
                sources=cidrs if direction == "in" else (),
                destinations=cidrs if direction == "out" else (),
            )
        )
    return tuple(out)


def rules_to_wire(rules: Iterable[FirewallRule]) -> list[dict[str, Any]]:
    """Legion's allow rules as Scaleway rules: one per CIDR, all editable, in order."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        cidrs = rule.sources if rule.direction == "in" else rule.destinations
        for cidr in cidrs:
            out.append(
                {
                    "action": "accept",
                    "protocol": rule.protocol.upper(),
                    "direction": "inbound" if rule.direction == "in" else "outbound",
                    "ip_range": cidr,
                    "dest_port_from": rule.port.first if rule.port else None,
                    "dest_port_to": rule.port.last
                    if rule.port and rule.port.last != rule.port.first
                    else None,
                    "position": len(out) + 1,
                    "editable": True,
                }
            )
    return out


def record_sets(records: Iterable[wire.DnsRecordJson]) -> list[DnsRecord]:
    """Scaleway's one-value records as RRsets."""
    return rrsets_from_values(
        (
            str(r.get("name") or ""),
            str(r.get("type") or "").upper(),
            int(r.get("ttl") or 0),
            str(r.get("data") or ""),
        )
        for r in records
    )


def server_type(name: str, offers: Mapping[str, wire.ServerTypeJson], zones: list[str]) -> CatalogServerType:
    """One Instance type from its per-zone product entries (``offers``: zone -> entry)."""
    first = next(iter(offers.values()))
    local = int((first.get("volumes_constraint") or {}).get("max_size") or 0)
    return CatalogServerType(
        name=name,
        cores=int(first.get("ncpus") or 0),
        memory_gb=round(int(first.get("ram") or 0) / 1024**3, 2),
        disk_gb=local // 1000**3,
        arch="arm" if "arm" in enum(first.get("arch")) else "x86",
        prices=tuple(
            CatalogPrice(
                location=zone,
                hourly=Decimal(str(entry.get("hourly_price") or 0)),
                monthly=Decimal(str(entry.get("monthly_price") or 0)),
            )
            for zone, entry in sorted(offers.items())
            if zone in zones  # priced where it can be bought; a zone in shortage sells none
        ),
        locations=tuple(sorted(zones)),
        deprecated=bool(first.get("end_of_service")),
        description=name,
        block_storage=local == 0,
    )


def catalog_image(label: str, arch: str, zones: Sequence[str], every_zone: Sequence[str]) -> CatalogImage:
    """``locations`` stays empty (meaning "everywhere") when the image is in ``every_zone``."""
    flavor, version = _IMAGE_VERSIONS.get(label, (label.partition("_")[0], label.partition("_")[2]))
    return CatalogImage(
        id=label,
        name=label,
        os_flavor=flavor,
        os_version=version,
        arch="arm" if "arm" in enum(arch) else "x86",
        locations=() if set(every_zone) <= set(zones) else tuple(sorted(zones)),
    )


def months(start: date, end: date) -> list[date]:
    """The first day of every month from ``start``'s to ``end``'s, in order."""
    out: list[date] = []
    current = start.replace(day=1)
    while current <= end:
        out.append(current)
        current = next_month(current)
    return out


def next_month(month: date) -> date:
    """The first day of the month after ``month``'s."""
    first = month.replace(day=1)
    return first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)


def _money(value: Mapping[str, Any] | None) -> tuple[Decimal, str]:
    value = value or {}
    units = Decimal(str(value.get("units") or 0))
    nanos = Decimal(int(value.get("nanos") or 0)) / Decimal(1_000_000_000)
    return units + nanos, str(value.get("currency_code") or "EUR")


def invoice_entry(item: Mapping[str, Any]) -> BillingEntry | None:
    """One invoice as its untaxed total over its billing month (None without a readable period)."""
    raw = str(item.get("billing_period") or item.get("start_date") or "")
    try:
        month = datetime.fromisoformat(raw.replace("Z", "+00:00")).date().replace(day=1)
    except ValueError:
        return None
    amount, currency = _money(item.get("total_untaxed"))
    number = item.get("number") or "draft"
    return BillingEntry(
        provider=PROVIDER,
        id=str(item.get("id") or month.isoformat()),
        date=month,
        amount=amount,
        currency=currency,
        description=f"invoice {number} ({item.get('state') or 'unknown'})",
        period_start=month,
        period_end=next_month(month),
        resource_name=f"invoice {number}",
        sku="invoice",
    )


def billing_entry(line: wire.ConsumptionJson, day: date, month: date | None = None) -> BillingEntry:
    """One consumption line. Instance lines (``sku`` ending ``run_<zone>``) name their server as
    ``consumer_id``; that becomes the ``<zone>/<uuid>`` resource id servers carry. ``month`` is the
    billing period's first day (the line covers that whole calendar month)."""
    amount, currency = _money(line.get("value"))
    sku = str(line.get("sku") or "")
    consumer = str(line.get("consumer_id") or "")
    zone = sku.rpartition("/run_")[2] if "/run_" in sku else ""
    resource_id = qualified(zone, consumer) if zone in LOCATIONS and consumer else None
    product, resource = str(line.get("product_name") or ""), str(line.get("resource_name") or "")
    return BillingEntry(
        provider=PROVIDER,
        id=f"{day:%Y-%m}/{sku}/{consumer or resource}",
        date=day,
        amount=amount,
        currency=currency,
        description=" ".join(
            p for p in (product, resource, f"({line.get('billed_quantity')} {line.get('unit')})") if p
        ),
        resource_id=resource_id,
        period_start=month,
        period_end=None if month is None else next_month(month),
        resource_name=resource or None,
        sku=sku or None,
    )
