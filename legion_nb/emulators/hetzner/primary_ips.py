"""``/primary_ips`` (read-only): the IPv4 address each server was created with.

Server JSON names its primary IP by id (``public_net.ipv4.id``) and the SDK resolves it lazily, so the
emulator answers reads for them. Primary IPs are derived from the servers and vanish with them (the
real default, ``auto_delete: true``); creating or moving them independently is not emulated.
"""

from __future__ import annotations

from aiohttp import web

from legion_nb.emulators.hetzner.labels import filter_by_selector
from legion_nb.emulators.hetzner.project import HetznerProject, ServerRecord
from legion_nb.emulators.hetzner.wire import Json, filter_equal, not_found, page_of, sort_items

__all__ = ["PrimaryIpsApi"]


def _wire(server: ServerRecord) -> Json:
    return {
        "id": server.ipv4_id,
        "name": f"primary_ip-{server.ipv4_id}",
        "ip": server.ipv4,
        "type": "ipv4",
        "dns_ptr": [{"ip": server.ipv4, "dns_ptr": f"static.{server.ipv4}.clients.your-server.de"}],
        "location": server.location.wire(),
        "blocked": False,
        "protection": {"delete": False},
        "labels": {},
        "created": server.created,
        "assignee_id": server.id,
        "assignee_type": "server",
        "auto_delete": True,
    }


class PrimaryIpsApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(f"{prefix}/primary_ips", self.index),
            web.get(f"{prefix}/primary_ips/{{id}}", self.get),
        ]

    async def index(self, request: web.Request) -> web.Response:
        items = filter_equal(request, [_wire(s) for s in self.p.servers.values()], "name", "ip")
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "created")), "primary_ips")

    async def get(self, request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        for server in self.p.servers.values():
            if str(server.ipv4_id) == raw:
                return web.json_response({"primary_ip": _wire(server)})
        raise not_found("primary_ip", raw)
