"""Instance flexible IPs (``/ips``): addresses from the world's pool, attached to at most one server."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway.errors import invalid_argument, json_response
from legion_nb.emulators.scaleway.instance.zone import (
    PREFIX,
    InstanceCollection,
    check_owner_query,
    in_zone,
    zone_of,
)
from legion_nb.emulators.scaleway.store import FlexibleIp, InstanceServer
from legion_nb.emulators.scaleway.wire import instance_list, read_body, split_csv, tag_list

__all__ = ["IpsApi"]


class IpsApi(InstanceCollection):
    """Route handlers of ``/ips`` over one :class:`ScalewayAccount`."""

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/ips", self.list_ips),
            web.post(f"{p}/ips", self.create_ip),
            web.get(f"{p}/ips/{{ip_id}}", self.get_ip),
            web.patch(f"{p}/ips/{{ip_id}}", self.update_ip),
            web.delete(f"{p}/ips/{{ip_id}}", self.delete_ip),
        ]

    def _ip(self, request: web.Request) -> FlexibleIp:
        return in_zone(self.account.ips, zone_of(request), request.match_info["ip_id"], "instance_ip")

    def ip_json(self, ip: FlexibleIp) -> dict[str, Any]:
        server = self.account.servers.get(ip.server_id) if ip.server_id else None
        return {
            "id": ip.id,
            "address": ip.address,
            "prefix": f"{ip.address}/32",
            "reverse": ip.reverse,
            "server": {"id": server.id, "name": server.name} if server else None,
            **self.account.owner_fields(),
            "zone": ip.zone,
            "type": ip.ip_type,
            "state": "attached" if server else "detached",
            "tags": list(ip.tags),
            "ipam_id": ip.id,
        }

    async def list_ips(self, request: web.Request) -> web.Response:
        zone = zone_of(request)
        check_owner_query(self.account, request)
        ips = [ip for ip in self.account.ips.values() if ip.zone == zone]
        if tags := split_csv(request.query.get("tags")):
            ips = [ip for ip in ips if all(tag in ip.tags for tag in tags)]
        if ip_type := request.query.get("type"):
            ips = [ip for ip in ips if ip.ip_type == ip_type]
        return instance_list(request, "ips", [self.ip_json(ip) for ip in ips])

    async def create_ip(self, request: web.Request) -> web.Response:
        zone = zone_of(request)
        body = await read_body(request)
        self.account.check_project(body.get("project"), body.get("organization"))
        ip_type = body.get("type") or "routed_ipv4"
        if ip_type not in ("routed_ipv4", "nat"):
            raise invalid_argument(
                "type", "only IPv4 flexible IPs (routed_ipv4, nat) are offered in this zone"
            )
        tags = tag_list(body)
        server_id = body.get("server")
        server = None
        if server_id:
            server = in_zone(self.account.servers, zone, str(server_id), "instance_server")
        ip = FlexibleIp(self.account.new_id(), zone, self.world.addresses.allocate(), ip_type, list(tags))
        self.account.ips[ip.id] = ip
        if server is not None:
            self._attach(ip, server)
        return json_response({"ip": self.ip_json(ip)}, status=201)

    def _attach(self, ip: FlexibleIp, server: InstanceServer | None) -> None:
        if ip.server_id and (old := self.account.servers.get(ip.server_id)) is not None:
            old.flexible_ip_ids = [i for i in old.flexible_ip_ids if i != ip.id]
        ip.server_id = server.id if server else None
        if server is not None and ip.id not in server.flexible_ip_ids:
            server.flexible_ip_ids.append(ip.id)

    async def get_ip(self, request: web.Request) -> web.Response:
        return json_response({"ip": self.ip_json(self._ip(request))})

    async def update_ip(self, request: web.Request) -> web.Response:
        ip = self._ip(request)
        body = await read_body(request)
        if "tags" in body:
            ip.tags = tag_list(body)
        if "reverse" in body:
            ip.reverse = body["reverse"] or None
        if "server" in body:
            server_id = body["server"]
            server = None
            if server_id:
                server = in_zone(self.account.servers, ip.zone, str(server_id), "instance_server")
            self._attach(ip, server)
        return json_response({"ip": self.ip_json(ip)})

    async def delete_ip(self, request: web.Request) -> web.Response:
        ip = self._ip(request)
        self._attach(ip, None)
        del self.account.ips[ip.id]
        self.world.addresses.release(ip.address)
        return web.Response(status=204)
