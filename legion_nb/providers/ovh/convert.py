"""OVHcloud wire shapes -> the provider-neutral records of ``providers.records``.

**Ownership lives in the name.** OVHcloud instances and SSH keys have no labels or tags in API v1, and
instance names are not unique, so Legion writes its resource id into the provider-side name
(:func:`legion_nb.providers.ownership.encode_owned_name`) and reads it back into ownership labels here. The
engine keeps seeing the plain name and the usual ``legion/managed`` and ``legion/id`` labels, and an
ambiguous create is settled by re-listing by labels. Labels other than the ownership pair cannot be
stored at OVHcloud and are not returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from legion_nb.providers.ovh import wire
from legion_nb.providers.ownership import (
    decode_owned_name,
)
from legion_nb.providers.records import (
    BillingEntry,
    DnsRecord,
    Server,
    ServerStatus,
    SshKey,
    rrsets_from_values,
)

__all__ = [
    "PROVIDER",
    "bill_entry",
    "record_sets",
    "server",
    "server_status",
    "ssh_key",
    "sub_domain",
    "usage_entries",
    "usage_period",
]

PROVIDER = "ovh"


def server_status(status: str) -> ServerStatus:
    if status in wire.ACTIVE_STATUSES:
        return "running"
    if status in wire.OFF_STATUSES:
        return "off"
    if status in wire.DELETING_STATUSES:
        return "deleting"
    if status in wire.ERROR_STATUSES:
        return "error"
    if status in ("RESCUE", "RESCUED", "UNKNOWN"):
        return "unknown"
    return "provisioning"


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def server(
    item: wire.InstanceWire, flavor_names: Mapping[str, str], image_names: Mapping[str, str]
) -> Server:
    """A server from a list item (flavor/image ids, resolved by the maps) or a detail (objects)."""
    name, labels = decode_owned_name(item.get("name", ""))
    ipv4 = next(
        (
            a.get("ip")
            for a in item.get("ipAddresses", [])
            if a.get("version") == 4 and a.get("type") == "public"
        ),
        None,
    )
    ipv6 = next(
        (
            a.get("ip")
            for a in item.get("ipAddresses", [])
            if a.get("version") == 6 and a.get("type") == "public"
        ),
        None,
    )
    flavor = item.get("flavor", {}).get("name") or flavor_names.get(item.get("flavorId", ""))
    image = item.get("image", {}).get("name") or image_names.get(item.get("imageId", ""))
    status = item.get("status", "UNKNOWN")
    return Server(
        provider=PROVIDER,
        id=item["id"],
        name=name,
        status=server_status(status),
        provider_status=status,
        ipv4=ipv4,
        ipv6=ipv6,
        server_type=flavor,
        location=item.get("region"),
        image=image,
        labels=labels,
        created=_parse_time(item.get("created")),
    )


def ssh_key(item: wire.SshKeyWire) -> SshKey:
    name, labels = decode_owned_name(item.get("name", ""))
    return SshKey(
        provider=PROVIDER,
        id=item["id"],
        name=name,
        fingerprint=item.get("fingerprint"),
        public_key=item.get("publicKey", ""),
        labels=labels,
    )


def sub_domain(name: str) -> str:
    """A base-record name (``@`` is the apex) as OVHcloud's ``subDomain`` (empty at the apex)."""
    return "" if name in ("@", "") else name


def record_sets(records: Iterable[wire.RecordWire]) -> list[DnsRecord]:
    """OVHcloud's one-value records as RRsets (OVHcloud keeps a ttl per record)."""
    return rrsets_from_values((r["subDomain"], r["fieldType"], r["ttl"], r["target"]) for r in records)


def usage_period(item: wire.UsageWire) -> tuple[date, date] | None:
    """The first and last day a usage period covers (None when it carries no readable period)."""
    period = item.get("period") or {}
    start, end = _parse_time(period.get("from")), _parse_time(period.get("to"))
    if start is None or end is None:
        return None
    return start.date(), end.date()


def bill_entry(bill: Mapping[str, Any]) -> BillingEntry | None:
    """One bill as its total without tax over the month it bills: a bill dated on the first instant
    of a month closes the month before; any other date bills its own (running) month."""
    dated = _parse_time(bill.get("date"))
    if dated is None:
        return None
    month = dated.date().replace(day=1)
    if dated.day == 1 and dated.time() == datetime.min.time():
        month = (month - timedelta(days=1)).replace(day=1)
    price = bill.get("priceWithoutTax") or {}
    bill_id = str(bill.get("billId") or dated.isoformat())
    return BillingEntry(
        provider=PROVIDER,
        id=bill_id,
        date=dated.date(),
        amount=Decimal(str(price.get("value", 0))),
        currency=str(price.get("currencyCode") or "EUR"),
        description=f"bill {bill_id}",
        period_start=month,
        period_end=(month + timedelta(days=32)).replace(day=1),
        resource_name=f"bill {bill_id}",
        sku="invoice",
    )


def usage_entries(item: wire.UsageWire, currency: str) -> list[BillingEntry]:
    """One entry per instance and billing mode of a usage period, dated on the period's last day.

    The entry id is ``<usage id or period start>/<instance id>/<hourly|monthly>``: stable across
    reads, so a ledger can upsert it while the running month's amount grows.
    """
    covered = usage_period(item)
    if covered is None:
        return []
    start, end = covered
    key = item.get("id") or start.isoformat()
    entries: list[BillingEntry] = []
    for mode, usage in (
        ("hourly", item.get("hourlyUsage") or {}),
        ("monthly", item.get("monthlyUsage") or {}),
    ):
        for group in usage.get("instance", []):
            for detail in group.get("details", []):
                instance_id = detail.get("instanceId", "")
                quantity = detail.get("quantity", {})
                hours = f" {quantity.get('value', 0):g} h" if mode == "hourly" else ""
                where = f"in {group.get('region', '?')}"
                entries.append(
                    BillingEntry(
                        provider=PROVIDER,
                        id=f"{key}/{instance_id}/{mode}",
                        date=end,
                        amount=Decimal(str(detail.get("totalPrice", 0))),
                        currency=currency,
                        description=f"{group.get('reference', '?')} {mode}{hours} {where}",
                        resource_id=instance_id or None,
                        period_start=start,
                        period_end=(start.replace(day=1) + timedelta(days=32)).replace(day=1),
                        sku=f"{group.get('reference', '?')}/{mode}",
                    )
                )
    return entries
