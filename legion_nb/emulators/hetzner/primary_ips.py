"""``/primary_ips``: the public addresses servers are created with, and standalone ones.

Every server holds an IPv4 primary IP (its loopback address) and, unless created with
``enable_ipv6: false``, an IPv6 ``/64`` one; the server's own primary IPs are created with
``auto_delete: true`` and vanish with it. ``POST /primary_ips`` creates a standalone one in a location
(IPv4 addresses come from the world's loopback pool); a new server takes it through
``public_net.ipv4`` / ``ipv6``. Deleting an assigned primary IP is ``422 must_be_unassigned``.

Creating one straight onto a server (``assignee_id``) follows the real rules: the server must be off
(``422 server_not_stopped``) and lack that kind of address (``server_has_ipv4`` / ``server_has_ipv6``).
The ``assign`` / ``unassign`` actions are not emulated: a sandbox server's IPv4 address is how its
simulated machine is reached, so they answer ``422 unsupported_error``.
"""

from __future__ import annotations

from aiohttp import web

from legion_nb.emulators.hetzner.labels import filter_by_selector, validate_labels
from legion_nb.emulators.hetzner.project import HetznerProject, PrimaryIpRecord, ServerRecord
from legion_nb.emulators.hetzner.wire import (
    ApiError,
    Json,
    by_id,
    filter_equal,
    invalid_input,
    must_be_unassigned,
    optional_str,
    page_of,
    read_body,
    resource_routes,
    sort_items,
)

__all__ = ["PrimaryIpsApi"]

_KINDS = ("ipv4", "ipv6")


class PrimaryIpsApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return resource_routes(prefix, "primary_ips", self)

    def _get(self, raw_id: str) -> PrimaryIpRecord:
        return by_id(self.p.primary_ips, raw_id, "primary_ip")

    async def index(self, request: web.Request) -> web.Response:
        items = [r.wire() for r in self.p.primary_ips.values()]
        items = filter_equal(request, items, "name", "ip")
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "created")), "primary_ips")

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"primary_ip": self._get(request.match_info["id"]).wire()})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        kind = body.get("type")
        if kind not in _KINDS:
            raise invalid_input("type", "must be 'ipv4' or 'ipv6'")
        name = optional_str(body, "name")
        if not name:
            raise invalid_input("name", "is required")
        self._unique(name)
        auto_delete = body.get("auto_delete", False)
        if not isinstance(auto_delete, bool):
            raise invalid_input("auto_delete", "must be a boolean")
        labels = validate_labels(body.get("labels"))
        assignee = self._assignee(body, kind)
        if assignee is None and body.get("location") is None:
            raise invalid_input("location", "is required when no assignee_id is given")
        location = assignee.location if assignee else self.p.location(body.get("location"))
        record = self.p.add_primary_ip(kind, location, name=name, auto_delete=auto_delete, labels=labels)
        action: Json | None = None
        if assignee is not None:
            record.assignee_id = assignee.id
            if kind == "ipv6":
                assignee.ipv6_id = record.id
            started = self.p.actions.start(
                "assign_primary_ip", [("primary_ip", record.id), ("server", assignee.id)]
            )
            action = started.wire()
        return web.json_response({"primary_ip": record.wire(), "action": action}, status=201)

    async def update(self, request: web.Request) -> web.Response:
        record = self._get(request.match_info["id"])
        body = await read_body(request)
        name = optional_str(body, "name")
        if name is not None:
            self._unique(name, record.id)
            record.name = name
        if "auto_delete" in body:
            if not isinstance(body["auto_delete"], bool):
                raise invalid_input("auto_delete", "must be a boolean")
            record.auto_delete = body["auto_delete"]
        if "labels" in body:
            record.labels = validate_labels(body["labels"])
        return web.json_response({"primary_ip": record.wire()})

    async def delete(self, request: web.Request) -> web.Response:
        record = self._get(request.match_info["id"])
        if record.assignee_id is not None:
            raise must_be_unassigned("primary IP", record.id, record.assignee_id)
        self.p.drop_primary_ip(record)
        return web.Response(status=204)

    async def action(self, request: web.Request) -> web.Response:
        self._get(request.match_info["id"])
        raise ApiError(
            422,
            "unsupported_error",
            "the sandbox does not move primary IPs between servers; "
            "create the server with public_net.ipv4/ipv6 naming this primary IP instead",
        )

    def _unique(self, name: str, own_id: int | None = None) -> None:
        if any(r.name == name and r.id != own_id for r in self.p.primary_ips.values()):
            raise ApiError(
                409, "uniqueness_error", "primary IP name is already used", {"fields": [{"name": "name"}]}
            )

    def _assignee(self, body: Json, kind: str) -> ServerRecord | None:
        ref = body.get("assignee_id")
        if ref is None:
            return None
        if body.get("location") is not None:
            raise invalid_input("location", "must be omitted when assignee_id is given")
        if body.get("assignee_type", "server") != "server":
            raise invalid_input("assignee_type", "must be 'server'")
        server = self.p.server_by_ref(ref, "assignee_id")
        if server.status != "off":
            raise ApiError(422, "server_not_stopped", f"server {server.id} must be off to get a primary IP")
        if kind == "ipv4" or server.ipv6_id is not None:
            raise ApiError(422, f"server_has_{kind}", f"server {server.id} already has an {kind} address")
        return server
