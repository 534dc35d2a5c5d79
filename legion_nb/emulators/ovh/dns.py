"""OVHcloud DNS zones under ``/domain/zone``: records by id, and publication only on refresh.

Two OVHcloud habits shape every client and are reproduced here:

* Record lists return **ids only** (optionally filtered by ``fieldType`` and ``subDomain``); a
  client reads each record with one more call.
* Record changes are drafts. The authoritative servers keep answering the last *published* zone
  until ``POST /domain/zone/{zone}/refresh``. The emulator keeps both: :meth:`Dns.published` is what
  the world would resolve, ``GET .../status`` says ``isDeployed: false`` while drafts are pending, and
  ``GET .../export`` renders the published zone file.

Creating a zone is not an API call at OVHcloud: a zone comes with a domain order. The sandbox
therefore pre-provisions a fixed set of zones (:data:`DEFAULT_ZONES`: ``example.org``,
``example.com`` and ``legion.test``, all names that can never be real delegations of anyone else),
or the set handed to ``create_app(world, zones=...)``. Each starts with its two NS records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from legion_nb.emulators.httpkit import isoformat as iso
from legion_nb.emulators.ovh.compute import read_json
from legion_nb.emulators.ovh.errors import OvhFault, json_response
from legion_nb.emulators.world import SandboxWorld

__all__ = ["DEFAULT_ZONES", "FIELD_TYPES", "Dns", "Record", "Zone"]

DEFAULT_ZONES: tuple[str, ...] = ("example.org", "example.com", "legion.test")
FIELD_TYPES = frozenset(
    {
        "A",
        "AAAA",
        "CAA",
        "CNAME",
        "DKIM",
        "DMARC",
        "LOC",
        "MX",
        "NAPTR",
        "NS",
        "PTR",
        "SPF",
        "SRV",
        "SSHFP",
        "TLSA",
        "TXT",
    }
)
_NAME_SERVERS = ("dns1.sandbox.invalid.", "ns1.sandbox.invalid.")
_DEFAULT_TTL = 0
"""OVHcloud's "use the zone default" ttl."""


@dataclass(frozen=True)
class Record:
    id: int
    zone: str
    field_type: str
    sub_domain: str
    target: str
    ttl: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "zone": self.zone,
            "fieldType": self.field_type,
            "subDomain": self.sub_domain,
            "target": self.target,
            "ttl": self.ttl,
        }


@dataclass
class Zone:
    name: str
    records: dict[int, Record] = field(default_factory=dict)
    published: dict[int, Record] = field(default_factory=dict)
    serial: int = 1
    last_update: str = ""

    @property
    def deployed(self) -> bool:
        return self.records == self.published


class Dns:
    """Every zone of the account, with draft and published records."""

    def __init__(self, world: SandboxWorld, zones: tuple[str, ...] = DEFAULT_ZONES) -> None:
        self.world = world
        self.zones: dict[str, Zone] = {}
        self._next_id = 5_000_000_001
        for name in zones:
            zone = Zone(name, last_update=iso(world.now()))
            for server in _NAME_SERVERS:
                record = self._new_record(name, "NS", "", server, _DEFAULT_TTL)
                zone.records[record.id] = record
            zone.published = dict(zone.records)
            self.zones[name] = zone

    def published(self, zone: str) -> list[Record]:
        """What the zone's name servers answer now (the records as of the last refresh)."""
        return sorted(self.zones[zone].published.values(), key=lambda r: r.id)

    def routes(self, prefix: str) -> list[web.RouteDef]:
        base = f"{prefix}/domain/zone/{{zoneName}}"
        return [
            web.get(f"{prefix}/domain/zone", self.list_zones),
            web.get(base, self.get_zone),
            web.get(f"{base}/status", self.get_status),
            web.get(f"{base}/export", self.export),
            web.post(f"{base}/refresh", self.refresh),
            web.get(f"{base}/record", self.list_records),
            web.post(f"{base}/record", self.create_record),
            web.get(f"{base}/record/{{id}}", self.get_record),
            web.put(f"{base}/record/{{id}}", self.update_record),
            web.delete(f"{base}/record/{{id}}", self.delete_record),
        ]

    def _new_record(self, zone: str, field_type: str, sub_domain: str, target: str, ttl: int) -> Record:
        record = Record(self._next_id, zone, field_type, sub_domain, target, ttl)
        self._next_id += 1
        return record

    def _zone(self, request: web.Request) -> Zone:
        name = request.match_info["zoneName"]
        zone = self.zones.get(name)
        if zone is None:
            raise OvhFault(404, "Client::NotFound", f"This service does not exist: {name}")
        return zone

    def _record(self, request: web.Request) -> tuple[Zone, Record]:
        zone = self._zone(request)
        raw = request.match_info["id"]
        record = zone.records.get(int(raw)) if raw.isdigit() else None
        if record is None:
            raise OvhFault(404, "Client::NotFound", f"The requested object (id = {raw}) does not exist")
        return zone, record

    async def list_zones(self, request: web.Request) -> web.Response:
        return json_response(sorted(self.zones))

    async def get_zone(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        return json_response(
            {
                "name": zone.name,
                "hasDnsAnycast": False,
                "dnssecSupported": True,
                "lastUpdate": zone.last_update,
                "nameServers": [s.rstrip(".") for s in _NAME_SERVERS],
                "iamResourceUrn": f"urn:v1:eu:resource:dnsZone:{zone.name}",
            }
        )

    async def get_status(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        return json_response({"isDeployed": zone.deployed, "errors": [], "warnings": [], "infos": []})

    async def export(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        lines = [
            "$TTL 3600",
            f"@\tIN SOA {_NAME_SERVERS[0]} tech.ovh.net. ({zone.serial} 86400 3600 3600000 60)",
        ]
        for record in self.published(zone.name):
            ttl = f"{record.ttl} " if record.ttl else ""
            lines.append(f"{record.sub_domain or '@'}\t{ttl}IN {record.field_type} {record.target}")
        return json_response("\n".join(lines) + "\n")

    async def refresh(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        if not zone.deployed:
            zone.published = dict(zone.records)
            zone.serial += 1
            zone.last_update = iso(self.world.now())
        return json_response(None)

    async def list_records(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        field_type = request.query.get("fieldType")
        sub_domain = request.query.get("subDomain")
        ids = [
            r.id
            for r in zone.records.values()
            if (field_type is None or r.field_type == field_type)
            and (sub_domain is None or r.sub_domain == sub_domain)
        ]
        return json_response(sorted(ids))

    async def create_record(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        body = await read_json(request)
        field_type = body.get("fieldType")
        if field_type not in FIELD_TYPES:
            raise OvhFault(400, "Client::BadRequest", f"Invalid fieldType: {field_type!r}")
        target = body.get("target")
        if not isinstance(target, str) or not target:
            raise OvhFault(400, "Client::BadRequest", "Missing parameter(s): target")
        sub_domain = _sub_domain(body.get("subDomain", ""))
        ttl = _ttl(body.get("ttl", _DEFAULT_TTL))
        duplicate = any(
            (r.field_type, r.sub_domain, r.target) == (field_type, sub_domain, target)
            for r in zone.records.values()
        )
        if duplicate:
            raise OvhFault(
                409, "Client::Conflict::RecordAlreadyExists", "This record already exists in the zone"
            )
        record = self._new_record(zone.name, field_type, sub_domain, target, ttl)
        zone.records[record.id] = record
        return json_response(record.to_json())

    async def get_record(self, request: web.Request) -> web.Response:
        _, record = self._record(request)
        return json_response(record.to_json())

    async def update_record(self, request: web.Request) -> web.Response:
        zone, record = self._record(request)
        body = await read_json(request)
        unknown = set(body) - {"subDomain", "target", "ttl"}
        if unknown:
            raise OvhFault(400, "Client::BadRequest", f"Invalid parameter(s): {', '.join(sorted(unknown))}")
        target = body.get("target", record.target)
        if not isinstance(target, str) or not target:
            raise OvhFault(400, "Client::BadRequest", "Invalid parameter: target")
        zone.records[record.id] = Record(
            record.id,
            zone.name,
            record.field_type,
            _sub_domain(body.get("subDomain", record.sub_domain)),
            target,
            _ttl(body.get("ttl", record.ttl)),
        )
        return json_response(None)

    async def delete_record(self, request: web.Request) -> web.Response:
        zone, record = self._record(request)
        del zone.records[record.id]
        return json_response(None)


def _sub_domain(value: Any) -> str:
    if not isinstance(value, str) or value.endswith(".") or " " in value:
        raise OvhFault(400, "Client::BadRequest", f"Invalid subDomain: {value!r}")
    return value


def _ttl(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2_147_483_647:
        raise OvhFault(400, "Client::BadRequest", f"Invalid ttl: {value!r}")
    return value
