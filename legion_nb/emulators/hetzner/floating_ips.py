"""``/floating_ips``: addresses that move between servers (IPv4 only in the sandbox).

A floating IP comes from the world's loopback pool, so it is as reachable as a server address. The
sandbox does not hand out IPv6 floating IPs (there is only one IPv6 loopback address); asking for one
is a 422 that says so. Deleting one that is still assigned is ``422 must_be_unassigned``, the rule the
real API enforces since May 2026.
"""

from __future__ import annotations

from aiohttp import web

from legion_nb.emulators.hetzner.actions import Action
from legion_nb.emulators.hetzner.labels import filter_by_selector, validate_labels
from legion_nb.emulators.hetzner.project import FloatingIpRecord, HetznerProject
from legion_nb.emulators.hetzner.wire import (
    ApiError,
    Json,
    by_id,
    filter_equal,
    invalid_input,
    must_be_unassigned,
    not_found,
    optional_str,
    page_of,
    read_body,
    resource_routes,
    sort_items,
)
from legion_nb.emulators.httpkit import isoformat

__all__ = ["FloatingIpsApi"]


def _wire(fip: FloatingIpRecord) -> Json:
    return {
        "id": fip.id,
        "name": fip.name,
        "description": fip.description,
        "ip": fip.ip,
        "type": fip.type,
        "server": fip.server,
        "dns_ptr": [{"ip": fip.ip, "dns_ptr": f"static.{fip.ip}.clients.your-server.de"}],
        "home_location": fip.home_location.wire(),
        "blocked": False,
        "protection": {"delete": False},
        "labels": dict(fip.labels),
        "created": fip.created,
    }


class FloatingIpsApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return resource_routes(prefix, "floating_ips", self)

    def _get(self, raw_id: str) -> FloatingIpRecord:
        return by_id(self.p.floating_ips, raw_id, "floating_ip")

    async def index(self, request: web.Request) -> web.Response:
        items = [_wire(f) for f in self.p.floating_ips.values()]
        items = filter_equal(request, items, "name")
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "created")), "floating_ips")

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"floating_ip": _wire(self._get(request.match_info["id"]))})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        kind = body.get("type")
        if kind == "ipv6":
            raise invalid_input("type", "the sandbox hands out IPv4 floating IPs only")
        if kind != "ipv4":
            raise invalid_input("type", "must be 'ipv4' or 'ipv6'")
        server_ref = body.get("server")
        server = self.p.server_by_ref(server_ref, "server") if server_ref is not None else None
        if server is None and body.get("home_location") is None:
            raise invalid_input("home_location", "is required when no server is given")
        location = server.location if server else self.p.location(body["home_location"], "home_location")
        labels = validate_labels(body.get("labels"))
        fid = self.p.new_id("floating_ip")
        name = optional_str(body, "name") or f"floating-ip-{fid}"
        if any(f.name == name for f in self.p.floating_ips.values()):
            raise ApiError(
                409, "uniqueness_error", "floating IP name is already used", {"fields": [{"name": "name"}]}
            )
        fip = FloatingIpRecord(
            fid,
            name,
            optional_str(body, "description"),
            self.p.world.addresses.allocate(),
            "ipv4",
            location,
            None,
            labels,
            isoformat(self.p.world.now()),
        )
        self.p.floating_ips[fip.id] = fip
        action = None
        if server is not None:
            action = self._assign(fip, server.id).wire()
        return web.json_response({"floating_ip": _wire(fip), "action": action}, status=201)

    async def update(self, request: web.Request) -> web.Response:
        fip = self._get(request.match_info["id"])
        body = await read_body(request)
        if "description" in body:
            fip.description = optional_str(body, "description")
        name = optional_str(body, "name")
        if name is not None:
            if any(f.name == name and f.id != fip.id for f in self.p.floating_ips.values()):
                raise ApiError(409, "uniqueness_error", "floating IP name is already used")
            fip.name = name
        if "labels" in body:
            fip.labels = validate_labels(body["labels"])
        return web.json_response({"floating_ip": _wire(fip)})

    async def delete(self, request: web.Request) -> web.Response:
        fip = self._get(request.match_info["id"])
        if fip.server is not None:
            raise must_be_unassigned("floating IP", fip.id, fip.server)
        del self.p.floating_ips[fip.id]
        self.p.world.addresses.release(fip.ip)
        return web.Response(status=204)

    async def action(self, request: web.Request) -> web.Response:
        fip = self._get(request.match_info["id"])
        body = await read_body(request)
        name = request.match_info["action"]
        self.p.ensure_unlocked("floating_ip", fip.id)
        if name == "assign":
            server = self.p.server_by_ref(body.get("server"), "server")
            action = self._assign(fip, server.id)
        elif name == "unassign":
            action = self.p.actions.start("unassign_floating_ip", [("floating_ip", fip.id)])
            fip.server = None
        else:
            raise not_found("floating_ip action", name)
        return web.json_response({"action": action.wire()}, status=201)

    def _assign(self, fip: FloatingIpRecord, server_id: int) -> Action:
        fip.server = server_id
        return self.p.actions.start("assign_floating_ip", [("floating_ip", fip.id), ("server", server_id)])
