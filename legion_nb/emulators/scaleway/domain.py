"""The emulated Domains and DNS API: ``/domain/v2beta1/dns-zones`` and their records.

A DNS zone is named by its full name (``sub.example.com``) and split on the wire into ``domain`` and
``subdomain``. Record names are relative to the zone and the apex is the empty string. Every zone starts
with its two default NS records. Records change only through one ``PATCH .../records`` holding a list of
``add``/``set``/``delete``/``clear`` changes, applied atomically: if one change fails, none is kept.
``set`` replaces every record matching its ``id`` or ``id_fields`` (creating them when none match);
``delete`` of a record that does not exist is ``not_found``.
"""

from __future__ import annotations

import ipaddress
import re
from copy import deepcopy
from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway.errors import ScwApiError, invalid_argument, json_response, not_found
from legion_nb.emulators.scaleway.store import DnsRecordEntry, DnsZoneEntry, ScalewayAccount
from legion_nb.emulators.scaleway.wire import paged_list, read_body, require

__all__ = ["DomainApi"]

NAMESERVERS = ("ns0.dom.scw.cloud", "ns1.dom.scw.cloud")
RECORD_TYPES = (
    "A",
    "AAAA",
    "CNAME",
    "TXT",
    "SRV",
    "TLSA",
    "MX",
    "NS",
    "PTR",
    "CAA",
    "ALIAS",
    "HTTPS",
    "SVCB",
)
_LABEL = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)$")
_MIN_TTL, _MAX_TTL = 60, 2_592_000


def _valid_dns_name(name: str) -> bool:
    return bool(name) and all(_LABEL.match(label) for label in name.lower().split("."))


class DomainApi:
    def __init__(self, account: ScalewayAccount) -> None:
        self.account = account

    def routes(self) -> list[web.RouteDef]:
        base = "/domain/v2beta1/dns-zones"
        return [
            web.get(base, self.list_zones),
            web.post(base, self.create_zone),
            web.delete(f"{base}/{{dns_zone}}", self.delete_zone),
            web.get(f"{base}/{{dns_zone}}/records", self.list_records),
            web.patch(f"{base}/{{dns_zone}}/records", self.update_records),
        ]

    # ------------------------------------------------------------------------------------------ zones

    def zone_json(self, zone: DnsZoneEntry) -> dict[str, Any]:
        return {
            "domain": zone.domain,
            "subdomain": zone.subdomain,
            "ns": list(NAMESERVERS),
            "ns_default": list(NAMESERVERS),
            "ns_master": [],
            "status": "active",
            "message": None,
            "updated_at": zone.updated.isoformat(),
            "project_id": self.account.project_id,
            "linked_products": [],
        }

    def _zone(self, request: web.Request) -> DnsZoneEntry:
        name = request.match_info["dns_zone"].lower()
        zone = self.account.dns_zones.get(name)
        if zone is None:
            raise not_found("dns_zone", name)
        return zone

    def _new_zone(self, domain: str, subdomain: str) -> DnsZoneEntry:
        now = self.account.world.now()
        zone = DnsZoneEntry(domain=domain, subdomain=subdomain, updated=now)
        for ns in NAMESERVERS:
            zone.records.append(DnsRecordEntry(self.account.new_id(), "", "NS", f"{ns}.", 1800))
        self.account.dns_zones[zone.name] = zone
        return zone

    async def list_zones(self, request: web.Request) -> web.Response:
        self.account.check_project(request.query.get("project_id"), request.query.get("organization_id"))
        zones = sorted(self.account.dns_zones.values(), key=lambda z: z.name)
        if domain := request.query.get("domain"):
            zones = [z for z in zones if z.domain == domain.lower()]
        if dns_zone := request.query.get("dns_zone"):
            zones = [z for z in zones if z.name == dns_zone.lower()]
        if names := request.query.getall("dns_zones", []):
            zones = [z for z in zones if z.name in {n.lower() for n in names}]
        return paged_list(request, "dns_zones", [self.zone_json(z) for z in zones])

    async def create_zone(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        self.account.check_project(body.get("project_id"))
        domain = require(body, "domain", str, "domain must be a domain name such as example.com").lower()
        subdomain = str(body.get("subdomain") or "").lower()
        if not _valid_dns_name(domain) or "." not in domain:
            raise invalid_argument("domain", f"{domain!r} is not a domain name such as example.com")
        if subdomain and not _valid_dns_name(subdomain):
            raise invalid_argument("subdomain", f"{subdomain!r} is not a valid DNS label sequence")
        name = f"{subdomain}.{domain}" if subdomain else domain
        if name in self.account.dns_zones:
            raise ScwApiError(
                409, "conflict", f"DNS zone {name} already exists", resource="dns_zone", resource_id=name
            )
        return json_response(self.zone_json(self._new_zone(domain, subdomain)))

    async def delete_zone(self, request: web.Request) -> web.Response:
        self.account.check_project(request.query.get("project_id"))
        zone = self._zone(request)
        del self.account.dns_zones[zone.name]
        return json_response({})

    # ---------------------------------------------------------------------------------------- records

    @staticmethod
    def record_json(record: DnsRecordEntry) -> dict[str, Any]:
        return {
            "id": record.id,
            "data": record.data,
            "name": record.name,
            "priority": record.priority,
            "ttl": record.ttl,
            "type": record.type,
            "comment": record.comment,
        }

    async def list_records(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        records = list(zone.records)
        if (name := request.query.get("name")) is not None and name != "":
            records = [r for r in records if r.name == name.lower()]
        if (rtype := request.query.get("type")) and rtype != "unknown":
            records = [r for r in records if r.type == rtype.upper()]
        if record_id := request.query.get("id"):
            records = [r for r in records if r.id == record_id]
        return paged_list(request, "records", [self.record_json(r) for r in records])

    def _parse_record(self, raw: object) -> DnsRecordEntry:
        if not isinstance(raw, dict):
            raise invalid_argument("records", "each record must be an object")
        rtype = str(raw.get("type") or "").upper()
        if rtype not in RECORD_TYPES:
            raise invalid_argument("type", f"record type must be one of {', '.join(RECORD_TYPES)}")
        name = str(raw.get("name") or "").lower().rstrip(".")
        if name and not _valid_dns_name(name):
            raise invalid_argument("name", f"record name {name!r} is not a valid relative DNS name")
        data = str(raw.get("data") or "")
        if not data:
            raise invalid_argument("data", "record data must not be empty")
        if rtype in ("A", "AAAA"):
            try:
                address = ipaddress.ip_address(data)
            except ValueError:
                raise invalid_argument("data", f"{data!r} is not an address for a {rtype} record") from None
            if (address.version == 4) != (rtype == "A"):
                raise invalid_argument("data", f"{data} does not fit a {rtype} record")
        ttl = raw.get("ttl") or 3600
        if not isinstance(ttl, int) or not _MIN_TTL <= ttl <= _MAX_TTL:
            raise invalid_argument("ttl", f"ttl must be between {_MIN_TTL} and {_MAX_TTL} seconds")
        priority = raw.get("priority") or 0
        if not isinstance(priority, int) or priority < 0:
            raise invalid_argument("priority", "priority must be a non-negative integer")
        comment = raw.get("comment")
        return DnsRecordEntry(self.account.new_id(), name, rtype, data, ttl, priority, comment or None)

    @staticmethod
    def _selector(change: dict[str, Any], verb: str) -> tuple[str | None, dict[str, Any] | None]:
        record_id = change.get("id")
        id_fields = change.get("id_fields")
        if (record_id is None) == (id_fields is None):
            raise invalid_argument(verb, f"{verb} needs exactly one of id or id_fields")
        if id_fields is not None:
            if not isinstance(id_fields, dict) or not id_fields.get("type"):
                raise invalid_argument(f"{verb}.id_fields", "id_fields needs name and type")
            id_fields = {
                **id_fields,
                "name": str(id_fields.get("name") or "").lower(),
                "type": str(id_fields["type"]).upper(),
            }
        return (str(record_id) if record_id is not None else None), id_fields

    @staticmethod
    def _matches(record: DnsRecordEntry, record_id: str | None, fields: dict[str, Any] | None) -> bool:
        if record_id is not None:
            return record.id == record_id
        assert fields is not None
        data, ttl = fields.get("data") or None, fields.get("ttl") or None
        return record.matches(fields["name"], fields["type"], data, ttl)

    def _apply(self, records: list[DnsRecordEntry], change: object) -> list[DnsRecordEntry]:
        """Apply one change to ``records`` in place; return the records it added."""
        if not isinstance(change, dict) or len(change) != 1:
            raise invalid_argument("changes", "each change must hold exactly one of add, set, delete, clear")
        verb, payload = next(iter(change.items()))
        if not isinstance(payload, dict):
            raise invalid_argument(f"changes.{verb}", f"{verb} must be an object")
        if verb == "clear":
            records[:] = [r for r in records if r.type == "NS" and r.name == ""]
            return []
        if verb == "add":
            added = [self._parse_record(raw) for raw in payload.get("records") or []]
            fresh = [a for a in added if not any(r.matches(a.name, a.type, a.data) for r in records)]
            records.extend(fresh)
            return fresh
        if verb == "set":
            record_id, fields = self._selector(payload, "set")
            new = [self._parse_record(raw) for raw in payload.get("records") or []]
            if record_id is not None and not any(r.id == record_id for r in records):
                raise not_found("dns_record", record_id)
            records[:] = [r for r in records if not self._matches(r, record_id, fields)]
            records.extend(new)
            return new
        if verb == "delete":
            record_id, fields = self._selector(payload, "delete")
            kept = [r for r in records if not self._matches(r, record_id, fields)]
            if len(kept) == len(records):
                what = record_id or (f"{fields['name']}/{fields['type']}" if fields else "")
                raise not_found("dns_record", what)
            records[:] = kept
            return []
        raise invalid_argument("changes", f"unknown change {verb}; use add, set, delete or clear")

    def _zone_for_update(self, request: web.Request, create: bool) -> DnsZoneEntry:
        name = request.match_info["dns_zone"].lower()
        zone = self.account.dns_zones.get(name)
        if zone is not None:
            return zone
        if not create or not _valid_dns_name(name) or "." not in name:
            raise not_found("dns_zone", name)
        parent = next((z for z in self.account.dns_zones.values() if name.endswith("." + z.name)), None)
        if parent is not None:
            return self._new_zone(parent.domain, name.removesuffix("." + parent.domain))
        labels = name.split(".")
        return self._new_zone(".".join(labels[-2:]), ".".join(labels[:-2]))

    async def update_records(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        changes = body.get("changes")
        if not isinstance(changes, list):
            raise invalid_argument("changes", "changes must be a list")
        existed = request.match_info["dns_zone"].lower() in self.account.dns_zones
        zone = self._zone_for_update(request, create=not body.get("disallow_new_zone_creation", False))
        records = deepcopy(zone.records)
        touched: list[DnsRecordEntry] = []
        try:
            for change in changes:
                touched.extend(self._apply(records, change))
        except ScwApiError:
            if not existed:  # all or nothing: a zone created for this call goes away with it
                del self.account.dns_zones[zone.name]
            raise
        zone.records = records
        zone.updated = self.account.world.now()
        shown = records if body.get("return_all_records", True) else touched
        return json_response({"records": [self.record_json(r) for r in shown]})
