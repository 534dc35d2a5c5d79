"""DNS in the Cloud API: ``/zones`` and their RRsets (``/zones/{id_or_name}/rrsets/{name}/{type}``).

An RRset is keyed by relative name (``@`` is the apex) and type; its id on the wire is ``name/type``.
Creating one that exists is ``409 uniqueness_error``. ``add_records`` on an RRset that does not exist
creates it (ACME clients publish their TXT challenge that way); ``remove_records`` that empties an RRset
deletes it, as on the real platform. A new zone starts with the apex SOA and NS RRsets.

Status codes and action commands are the spec's: deleting a zone or an RRset answers 201 with an
action, ``update_records`` answers 200; RRset actions report ``<verb>_rrset_<noun>`` commands
(``add_rrset_records``, ``change_rrset_ttl``...), zone actions their own name (``change_ttl``).
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

from legion_nb.emulators.hetzner.labels import filter_by_selector, validate_labels
from legion_nb.emulators.hetzner.project import HetznerProject, RRset, Zone
from legion_nb.emulators.hetzner.wire import (
    ApiError,
    Json,
    filter_equal,
    invalid_input,
    not_found,
    page_of,
    read_body,
    sort_items,
)
from legion_nb.emulators.httpkit import isoformat

__all__ = ["ZonesApi"]

NAMESERVERS = ("hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com.", "helium.ns.hetzner.de.")
RRSET_TYPES = (
    "A",
    "AAAA",
    "CAA",
    "CNAME",
    "DS",
    "HINFO",
    "HTTPS",
    "MX",
    "NS",
    "PTR",
    "RP",
    "SOA",
    "SRV",
    "SVCB",
    "TLSA",
    "TXT",
)
_RRSET_COMMANDS = {
    "add_records": "add_rrset_records",
    "set_records": "set_rrset_records",
    "remove_records": "remove_rrset_records",
    "update_records": "update_rrset_records",
    "change_ttl": "change_rrset_ttl",
    "change_protection": "change_rrset_protection",
}
_ZONE_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_RR_NAME = re.compile(
    r"^(@|(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*)$"
)


def _ttl(value: object, field_name: str = "ttl") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= 2_147_483_647:
        raise invalid_input(field_name, "must be an integer number of seconds, at least 60")
    return value


def _records(value: object, rtype: str, *, allow_empty: bool = False) -> list[Json]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise invalid_input("records", 'must be a non-empty list of {"value", "comment"}')
    records: list[Json] = []
    for index, item in enumerate(value):
        raw = item.get("value") if isinstance(item, dict) else None
        if not isinstance(raw, str) or not raw.strip():
            raise invalid_input(f"records[{index}].value", "must be a non-empty string")
        comment = item.get("comment") if isinstance(item, dict) else None
        if comment is not None and not isinstance(comment, str):
            raise invalid_input(f"records[{index}].comment", "must be a string")
        if rtype in ("A", "AAAA"):
            try:
                parsed = ipaddress.ip_address(raw)
            except ValueError:
                raise invalid_input(f"records[{index}].value", f"{raw!r} is not an IP address") from None
            if (rtype == "A") != (parsed.version == 4):
                raise invalid_input(f"records[{index}].value", f"{raw} is not a valid {rtype} value")
        if rtype == "TXT" and not (len(raw) >= 2 and raw.startswith('"') and raw.endswith('"')):
            raise invalid_input(
                f"records[{index}].value", "TXT values must be quoted strings, e.g. '\"v=spf1 -all\"'"
            )
        records.append({"value": raw, "comment": comment or ""})
    if rtype == "CNAME" and len(records) > 1:
        raise invalid_input("records", "a CNAME RRset holds exactly one record")
    return records


class ZonesApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project
        self.zones = project.zones

    def routes(self, prefix: str) -> list[web.RouteDef]:
        z = f"{prefix}/zones/{{zone}}"
        r = f"{z}/rrsets/{{name}}/{{type}}"
        return [
            web.get(f"{prefix}/zones", self.index),
            web.post(f"{prefix}/zones", self.create),
            web.get(z, self.get),
            web.put(z, self.update),
            web.delete(z, self.delete),
            web.post(f"{z}/actions/{{action}}", self.zone_action),
            web.get(f"{z}/zonefile", self.zonefile),
            web.get(f"{z}/rrsets", self.list_rrsets),
            web.post(f"{z}/rrsets", self.create_rrset),
            web.get(r, self.get_rrset),
            web.put(r, self.update_rrset),
            web.delete(r, self.delete_rrset),
            web.post(f"{r}/actions/{{action}}", self.rrset_action),
        ]

    # -- rendering ----------------------------------------------------------------------------

    def zone_wire(self, zone: Zone) -> Json:
        return {
            "id": zone.id,
            "name": zone.name,
            "created": zone.created,
            "mode": zone.mode,
            "ttl": zone.ttl,
            "labels": dict(zone.labels),
            "protection": dict(zone.protection),
            "status": "ok",
            "record_count": sum(len(r.records) for r in zone.rrsets.values()),
            "registrar": "other",
            "primary_nameservers": [],
            "authoritative_nameservers": {
                "assigned": list(NAMESERVERS),
                "delegated": [],
                "delegation_last_check": None,
                "delegation_status": "unknown",
            },
        }

    @staticmethod
    def rrset_wire(zone: Zone, rrset: RRset) -> Json:
        return {
            "id": f"{rrset.name}/{rrset.type}",
            "name": rrset.name,
            "type": rrset.type,
            "ttl": rrset.ttl,
            "labels": dict(rrset.labels),
            "protection": dict(rrset.protection),
            "records": [dict(r) for r in rrset.records],
            "zone": zone.id,
        }

    # -- lookups ------------------------------------------------------------------------------

    def _zone(self, request: web.Request) -> Zone:
        key = request.match_info["zone"]
        for zone in self.zones.values():
            if key in (str(zone.id), zone.name) and not zone.deleting:
                return zone
        raise not_found("zone", key)

    def _rrset(self, request: web.Request) -> tuple[Zone, RRset]:
        zone = self._zone(request)
        key = (request.match_info["name"], request.match_info["type"])
        rrset = zone.rrsets.get(key)
        if rrset is None:
            raise not_found("rrset", "/".join(key))
        return zone, rrset

    # -- zones --------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        items = [self.zone_wire(z) for z in self.zones.values() if not z.deleting]
        items = filter_equal(request, items, "name", "mode")
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "name", "created")), "zones")

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"zone": self.zone_wire(self._zone(request))})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not _ZONE_NAME.match(name):
            raise invalid_input(
                "name", "must be a lowercase domain name without a trailing dot, e.g. example.com"
            )
        mode = body.get("mode", "primary")
        if mode != "primary":
            raise invalid_input("mode", "the sandbox serves primary zones only")
        ttl = _ttl(body.get("ttl", 3600))
        labels = validate_labels(body.get("labels"))
        if any(z.name == name for z in self.zones.values()):
            raise ApiError(
                409, "uniqueness_error", f"zone {name} already exists", {"fields": [{"name": "name"}]}
            )
        zone = Zone(self.p.new_id("zone"), name, mode, ttl, labels, isoformat(self.p.world.now()))
        serial = self.p.world.now().strftime("%Y%m%d01")
        zone.rrsets[("@", "SOA")] = RRset(
            "@",
            "SOA",
            None,
            {},
            [
                {
                    "value": f"{NAMESERVERS[0]} dns.hetzner.com. {serial} 86400 10800 3600000 3600",
                    "comment": "",
                }
            ],
        )
        zone.rrsets[("@", "NS")] = RRset(
            "@", "NS", None, {}, [{"value": ns, "comment": ""} for ns in NAMESERVERS]
        )
        for item in body.get("rrsets") or []:
            rrset = self._new_rrset(zone, item if isinstance(item, dict) else {})
            zone.rrsets[(rrset.name, rrset.type)] = rrset
        self.zones[zone.id] = zone
        action = self.p.actions.start("create_zone", [("zone", zone.id)])
        return web.json_response({"zone": self.zone_wire(zone), "action": action.wire()}, status=201)

    async def update(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        body = await read_body(request)
        if "labels" in body:
            zone.labels = validate_labels(body["labels"])
        return web.json_response({"zone": self.zone_wire(zone)})

    async def delete(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        if zone.protection["delete"]:
            raise ApiError(423, "protected", f"zone {zone.name} is protected against deletion")
        zone.deleting = True

        def forget() -> None:
            self.zones.pop(zone.id, None)

        action = self.p.actions.start("delete_zone", [("zone", zone.id)], on_success=forget)
        return web.json_response({"action": action.wire()}, status=201)

    async def zone_action(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        body = await read_body(request)
        name = request.match_info["action"]
        if name == "change_ttl":
            zone.ttl = _ttl(body.get("ttl"))
            action = self.p.actions.start("change_ttl", [("zone", zone.id)])
        elif name == "change_protection":
            if not isinstance(body.get("delete"), bool):
                raise invalid_input("delete", "must be a boolean")
            zone.protection["delete"] = body["delete"]
            action = self.p.actions.finished("change_protection", [("zone", zone.id)])
        else:
            raise not_found("zone action", name)
        return web.json_response({"action": action.wire()}, status=201)

    async def zonefile(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        lines = [f"$ORIGIN {zone.name}.", f"$TTL {zone.ttl}"]
        for rrset in zone.rrsets.values():
            ttl = "" if rrset.ttl is None else f" {rrset.ttl}"
            lines += [f"{rrset.name}{ttl} IN {rrset.type} {r['value']}" for r in rrset.records]
        return web.json_response({"zonefile": "\n".join(lines) + "\n"})

    # -- rrsets -------------------------------------------------------------------------------

    def _new_rrset(self, zone: Zone, body: Json) -> RRset:
        name = body.get("name")
        rtype = body.get("type")
        if not isinstance(name, str) or not _RR_NAME.match(name):
            raise invalid_input("name", "must be a relative lowercase name such as 'www' or '@' for the apex")
        if name == zone.name or name.endswith(f".{zone.name}"):
            raise invalid_input(
                "name", f"must be relative to {zone.name}: drop the zone name (use '@' for the apex)"
            )
        if rtype not in RRSET_TYPES or rtype == "SOA":
            raise invalid_input("type", f"must be one of {', '.join(t for t in RRSET_TYPES if t != 'SOA')}")
        ttl = None if body.get("ttl") is None else _ttl(body.get("ttl"))
        records = _records(body.get("records"), rtype)
        if (name, rtype) in zone.rrsets:
            raise ApiError(
                409,
                "uniqueness_error",
                f"RRset {name}/{rtype} already exists in {zone.name}",
                {"fields": [{"name": "name"}, {"name": "type"}]},
            )
        others = {t for (n, t) in zone.rrsets if n == name}
        if others and (rtype == "CNAME" or "CNAME" in others):
            raise invalid_input("type", f"a CNAME at {name!r} cannot coexist with other RRsets")
        return RRset(name, rtype, ttl, validate_labels(body.get("labels")), records)

    async def list_rrsets(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        items = [self.rrset_wire(zone, r) for r in zone.rrsets.values()]
        items = filter_equal(request, items, "name")
        types = request.query.getall("type", [])
        if types:
            items = [i for i in items if i["type"] in types]
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("name", "type", "ttl")), "rrsets")

    async def create_rrset(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        rrset = self._new_rrset(zone, await read_body(request))
        zone.rrsets[(rrset.name, rrset.type)] = rrset
        action = self.p.actions.start("create_rrset", [("zone", zone.id)])
        return web.json_response({"rrset": self.rrset_wire(zone, rrset), "action": action.wire()}, status=201)

    async def get_rrset(self, request: web.Request) -> web.Response:
        zone, rrset = self._rrset(request)
        return web.json_response({"rrset": self.rrset_wire(zone, rrset)})

    async def update_rrset(self, request: web.Request) -> web.Response:
        zone, rrset = self._rrset(request)
        body = await read_body(request)
        if "labels" in body:
            rrset.labels = validate_labels(body["labels"])
        return web.json_response({"rrset": self.rrset_wire(zone, rrset)})

    async def delete_rrset(self, request: web.Request) -> web.Response:
        zone, rrset = self._rrset(request)
        if rrset.type in ("SOA",) or (rrset.type == "NS" and rrset.name == "@"):
            raise ApiError(422, "invalid_input", f"the apex {rrset.type} RRset is managed by the platform")
        self._protected(rrset)
        del zone.rrsets[(rrset.name, rrset.type)]
        action = self.p.actions.start("delete_rrset", [("zone", zone.id)])
        return web.json_response({"action": action.wire()}, status=201)

    async def rrset_action(self, request: web.Request) -> web.Response:
        name = request.match_info["action"]
        command = _RRSET_COMMANDS.get(name)
        if command is None:
            raise not_found("rrset action", name)
        body = await read_body(request)
        if name == "add_records":
            zone = self._zone(request)
            key = (request.match_info["name"], request.match_info["type"])
            if key not in zone.rrsets:
                created = self._new_rrset(
                    zone,
                    {"name": key[0], "type": key[1], "ttl": body.get("ttl"), "records": body.get("records")},
                )
                zone.rrsets[key] = created
                action = self.p.actions.start(command, [("zone", zone.id)])
                return web.json_response({"action": action.wire()}, status=201)
        zone, rrset = self._rrset(request)
        if name != "change_protection":
            self._protected(rrset)
        if name == "set_records":
            rrset.records = _records(body.get("records"), rrset.type)
        elif name == "add_records":
            existing = {r["value"] for r in rrset.records}
            added = [r for r in _records(body.get("records"), rrset.type) if r["value"] not in existing]
            if rrset.type == "CNAME" and rrset.records and added:
                raise invalid_input("records", "a CNAME RRset holds exactly one record")
            rrset.records += added
            if body.get("ttl") is not None:
                rrset.ttl = _ttl(body.get("ttl"))
        elif name == "remove_records":
            gone = {r["value"] for r in _records(body.get("records"), rrset.type)}
            rrset.records = [r for r in rrset.records if r["value"] not in gone]
            if not rrset.records:
                del zone.rrsets[(rrset.name, rrset.type)]
        elif name == "update_records":
            comments = {r["value"]: r["comment"] for r in _records(body.get("records"), rrset.type)}
            for record in rrset.records:
                record["comment"] = comments.get(record["value"], record["comment"])
        elif name == "change_ttl":
            rrset.ttl = None if body.get("ttl") is None else _ttl(body.get("ttl"))
        elif name == "change_protection":
            if not isinstance(body.get("change"), bool):
                raise invalid_input("change", "must be a boolean")
            rrset.protection["change"] = body["change"]
        action = self.p.actions.start(command, [("zone", zone.id)])
        return web.json_response({"action": action.wire()}, status=200 if name == "update_records" else 201)

    @staticmethod
    def _protected(rrset: RRset) -> None:
        if rrset.protection["change"]:
            raise ApiError(423, "protected", f"RRset {rrset.name}/{rrset.type} is protected against changes")
