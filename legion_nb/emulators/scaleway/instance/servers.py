"""Instance servers (``/servers``), their user data and their power actions.

A created server is ``stopped`` until ``poweron``; actions answer with a ``task`` and move the server
through ``starting``/``stopping`` after the world's timing. A server in a transient state refuses
actions and deletion, and a running one cannot be deleted (use ``terminate``). With
``dynamic_ip_required`` (the default) a server gets a public address from the world's pool, released
again when the server is deleted.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import (
    ScwApiError,
    invalid_argument,
    json_response,
    not_found,
    transient_state,
)
from legion_nb.emulators.scaleway.instance.images import resolve_image
from legion_nb.emulators.scaleway.instance.security_groups import default_group, find_group
from legion_nb.emulators.scaleway.instance.zone import (
    PREFIX,
    InstanceCollection,
    check_owner_query,
    in_zone,
    zone_of,
)
from legion_nb.emulators.scaleway.store import InstanceServer, ServerUsage
from legion_nb.emulators.scaleway.wire import flag, instance_list, read_body, require, split_csv, tag_list

__all__ = ["ServersApi"]

_TRANSIENT = ("starting", "stopping")
_ALLOWED_ACTIONS = {
    "stopped": ["poweron"],
    "stopped in place": ["poweron", "poweroff", "terminate"],
    "running": ["poweroff", "terminate", "reboot", "stop_in_place"],
}


class ServersApi(InstanceCollection):
    """Route handlers of ``/servers`` over one :class:`ScalewayAccount`."""

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/servers", self.list_servers),
            web.post(f"{p}/servers", self.create_server),
            web.get(f"{p}/servers/{{server_id}}", self.get_server),
            web.patch(f"{p}/servers/{{server_id}}", self.update_server),
            web.delete(f"{p}/servers/{{server_id}}", self.delete_server),
            web.get(f"{p}/servers/{{server_id}}/action", self.list_server_actions),
            web.post(f"{p}/servers/{{server_id}}/action", self.server_action),
            web.get(f"{p}/servers/{{server_id}}/user_data", self.list_user_data),
            web.get(f"{p}/servers/{{server_id}}/user_data/{{key}}", self.get_user_data),
            web.patch(f"{p}/servers/{{server_id}}/user_data/{{key}}", self.set_user_data),
            web.delete(f"{p}/servers/{{server_id}}/user_data/{{key}}", self.delete_user_data),
        ]

    def _server(self, request: web.Request) -> InstanceServer:
        return in_zone(
            self.account.servers, zone_of(request), request.match_info["server_id"], "instance_server"
        )

    def _now(self) -> str:
        return self.world.now().isoformat()

    def server_json(self, server: InstanceServer) -> dict[str, Any]:
        group = self.account.security_groups.get(server.security_group_id)
        public_ips = [self._server_ip_json(ip) for ip in self._server_ips(server)]
        allowed = [] if server.state in _TRANSIENT else _ALLOWED_ACTIONS.get(server.state, [])
        return {
            "id": server.id,
            "name": server.name,
            "arch": server.arch,
            "commercial_type": server.commercial_type,
            "boot_type": "local",
            **self.account.owner_fields(),
            "hostname": server.name,
            "image": server.image,
            "volumes": server.volumes,
            "tags": list(server.tags),
            "state": server.state,
            "protected": False,
            "state_detail": server.state_detail,
            "public_ip": public_ips[0] if public_ips else None,
            "public_ips": public_ips,
            "mac_address": "de:00:00:" + ":".join(server.id.replace("-", "")[i : i + 2] for i in (0, 2, 4)),
            "routed_ip_enabled": True,
            "ipv6": None,
            "extra_networks": [],
            "dynamic_ip_required": server.dynamic_ip_required,
            "enable_ipv6": False,
            "private_ip": None,
            "creation_date": server.created.isoformat(),
            "modification_date": server.modified.isoformat(),
            "bootscript": None,
            "security_group": {"id": group.id, "name": group.name} if group else None,
            "location": None,
            "maintenances": [],
            "allowed_actions": allowed,
            "placement_group": None,
            "private_nics": [],
            "zone": server.zone,
            "filesystems": [],
            "end_of_service": False,
        }

    def _server_ips(self, server: InstanceServer) -> list[tuple[str, str, bool]]:
        """``(id, address, dynamic)`` for each public address of ``server``, flexible ones first."""
        out = [(ip.id, ip.address, False) for i in server.flexible_ip_ids if (ip := self.account.ips.get(i))]
        if server.dynamic_ip and server.dynamic_ip_id:
            out.append((server.dynamic_ip_id, server.dynamic_ip, True))
        return out

    def _server_ip_json(self, entry: tuple[str, str, bool]) -> dict[str, Any]:
        ip_id, address, dynamic = entry
        gateway = str(ipaddress.IPv4Network(self.world.addresses.network)[1])
        return {
            "id": ip_id,
            "address": address,
            "gateway": gateway,
            "netmask": "32",
            "family": "inet",
            "dynamic": dynamic,
            "provisioning_mode": "dhcp",
            "tags": [],
            "ipam_id": ip_id,
            "state": "attached",
        }

    async def list_servers(self, request: web.Request) -> web.Response:
        zone = zone_of(request)
        check_owner_query(self.account, request)
        servers = [s for s in self.account.servers.values() if s.zone == zone]
        query = request.query
        if name := query.get("name"):
            servers = [s for s in servers if name in s.name]
        if tags := split_csv(query.get("tags")):
            servers = [s for s in servers if all(tag in s.tags for tag in tags)]
        if state := query.get("state"):
            servers = [s for s in servers if s.state == state]
        if commercial_type := query.get("commercial_type"):
            servers = [s for s in servers if s.commercial_type == commercial_type]
        if ids := split_csv(query.get("servers")):
            servers = [s for s in servers if s.id in ids]
        if with_ip := query.get("with_ip"):
            servers = [s for s in servers if any(a == with_ip for _, a, _ in self._server_ips(s))]
        if flag(request, "without_ip"):
            servers = [s for s in servers if not self._server_ips(s)]
        descending = query.get("order", "creation_date_desc") != "creation_date_asc"
        servers.sort(key=lambda s: (s.created, s.id), reverse=descending)
        return instance_list(request, "servers", [self.server_json(s) for s in servers])

    async def create_server(self, request: web.Request) -> web.Response:
        zone = zone_of(request)
        body = await read_body(request)
        self.account.check_project(body.get("project"), body.get("organization"))
        type_name = require(body, "commercial_type", str, "commercial_type is required, e.g. DEV1-S")
        spec = next((t for t in catalog.SERVER_TYPES if t.name == type_name and zone in t.zones), None)
        if spec is None:
            offered = ", ".join(t.name for t in catalog.SERVER_TYPES if zone in t.zones)
            raise invalid_argument(
                "commercial_type", f"{type_name} is not offered in {zone}; use one of {offered}"
            )
        image_ref = require(body, "image", str, "an image id or label such as debian_bookworm is required")
        image = resolve_image(zone, image_ref, spec.arch)
        name = body.get("name") or f"srv-{self.account.new_id()[:8]}"
        if not isinstance(name, str) or len(name) > 255:
            raise invalid_argument("name", "name must be a string of at most 255 characters")
        tags = tag_list(body)
        group_id = body.get("security_group")
        if group_id:
            if not isinstance(group_id, str):
                raise invalid_argument("security_group", "security_group must be a security group id")
            find_group(self.account, zone, group_id)
        else:
            group_id = default_group(self.account, zone).id
        flexible = [body["public_ip"]] if body.get("public_ip") else list(body.get("public_ips") or [])
        for ip_id in flexible:
            ip = self.account.ips.get(ip_id)
            if ip is None or ip.zone != zone:
                raise invalid_argument("public_ips", f"flexible IP {ip_id} does not exist in {zone}")
            if ip.server_id is not None:
                raise invalid_argument("public_ips", f"flexible IP {ip_id} is attached to another server")
        zone_servers = sum(1 for s in self.account.servers.values() if s.zone == zone)
        if zone_servers >= self.account.servers_per_zone:
            raise ScwApiError(
                403,
                "quotas_exceeded",
                "quota(s) exceeded for this resource",
                details=[
                    {"resource": "instances", "quota": self.account.servers_per_zone, "current": zone_servers}
                ],
            )
        if catalog.availability(zone, spec.name) == "shortage":
            raise ScwApiError(
                409, "out_of_stock", f"{spec.name} is out of stock in {zone}", resource=spec.name
            )
        now = self.world.now()
        server_id = self.account.new_id()
        dynamic = body.get("dynamic_ip_required")
        server = InstanceServer(
            id=server_id,
            zone=zone,
            name=name,
            commercial_type=spec.name,
            image=image,
            tags=list(tags),
            security_group_id=group_id,
            dynamic_ip_required=True if dynamic is None else bool(dynamic),
            created=now,
            modified=now,
            arch=spec.arch,
            volumes=self._root_volume(
                server_id=server_id, name=name, zone=zone, spec=spec, image=image, now=now.isoformat()
            ),
        )
        for ip_id in flexible:
            self.account.ips[ip_id].server_id = server_id
            server.flexible_ip_ids.append(ip_id)
        if server.dynamic_ip_required and not flexible:
            server.dynamic_ip = self.world.addresses.allocate()
            server.dynamic_ip_id = self.account.new_id()
        self.account.servers[server_id] = server
        self.account.usage.append(ServerUsage(server_id, name, spec.name, zone, now))
        headers = {"Location": f"{request.url.origin()}{request.path}/{server_id}"}
        return json_response({"server": self.server_json(server)}, status=201, headers=headers)

    def _root_volume(
        self,
        *,
        server_id: str,
        name: str,
        zone: str,
        spec: catalog.ServerTypeSpec,
        image: dict[str, Any],
        now: str,
    ) -> dict[str, Any]:
        volume: dict[str, Any] = {"boot": False, "id": self.account.new_id(), "zone": zone}
        if spec.local_ssd_gb:
            volume.update(
                name=image["name"],
                volume_type="l_ssd",
                export_uri=None,
                **self.account.owner_fields(),
                server={"id": server_id, "name": name},
                size=spec.local_ssd_gb * catalog.GB,
                state="available",
                creation_date=now,
                modification_date=now,
                tags=[],
            )
        else:
            volume["volume_type"] = "sbs_volume"
        return {"0": volume}

    async def get_server(self, request: web.Request) -> web.Response:
        return json_response({"server": self.server_json(self._server(request))})

    async def update_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        body = await read_body(request)
        if "name" in body:
            server.name = require(body, "name", str, "name must be a non-empty string")
        if "tags" in body:
            server.tags = tag_list(body)
        if "security_group" in body:
            ref = body["security_group"]
            group_id = ref.get("id") if isinstance(ref, dict) else ref
            if not isinstance(group_id, str):
                raise invalid_argument("security_group", 'security_group must be {"id": <security group id>}')
            server.security_group_id = find_group(self.account, server.zone, group_id).id
        server.modified = self.world.now()
        return json_response({"server": self.server_json(server)})

    async def delete_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        if server.state in _TRANSIENT:
            raise transient_state("instance_server", server.id, server.state)
        if server.state == "running":
            raise ScwApiError(
                400, "invalid_request_error", "instance should be powered off, or use terminate"
            )
        self._remove_server(server)
        return web.Response(status=204)

    def _remove_server(self, server: InstanceServer) -> None:
        address = self._machine_address(server)
        if address is not None:
            self.world.machine_gone(address)
        self.account.servers.pop(server.id, None)
        for usage in self.account.usage:
            if usage.server_id == server.id and usage.ended is None:
                usage.ended = self.world.now()
        if server.dynamic_ip:
            self.world.addresses.release(server.dynamic_ip)
        for ip_id in server.flexible_ip_ids:
            if (ip := self.account.ips.get(ip_id)) is not None:
                ip.server_id = None

    async def list_user_data(self, request: web.Request) -> web.Response:
        return json_response({"user_data": sorted(self._server(request).user_data)})

    def _user_data_key(self, request: web.Request) -> tuple[InstanceServer, str]:
        server = self._server(request)
        key = request.match_info["key"]
        if not key or len(key) > 100:
            raise invalid_argument("key", "a user data key is 1 to 100 characters")
        return server, key

    async def get_user_data(self, request: web.Request) -> web.Response:
        server, key = self._user_data_key(request)
        if key not in server.user_data:
            raise not_found("instance_user_data", key)
        return web.Response(body=server.user_data[key], content_type="text/plain")

    async def set_user_data(self, request: web.Request) -> web.Response:
        server, key = self._user_data_key(request)
        data = await request.read()
        if len(data) > 1_000_000:
            raise invalid_argument("content", "user data is limited to 1 MB per key")
        server.user_data[key] = data
        return web.Response(status=204)

    async def delete_user_data(self, request: web.Request) -> web.Response:
        server, key = self._user_data_key(request)
        server.user_data.pop(key, None)
        return web.Response(status=204)

    async def list_server_actions(self, request: web.Request) -> web.Response:
        server = self._server(request)
        return json_response(
            {"actions": [] if server.state in _TRANSIENT else _ALLOWED_ACTIONS[server.state]}
        )

    async def server_action(self, request: web.Request) -> web.Response:
        server = self._server(request)
        body = await read_body(request)
        action = body.get("action", "poweron")
        if server.state in _TRANSIENT:
            raise transient_state("instance_server", server.id, server.state)
        known = ("poweron", "poweroff", "stop_in_place", "reboot", "terminate")
        if action not in known:
            raise invalid_argument("action", f"action must be one of {', '.join(known)}")
        if action not in _ALLOWED_ACTIONS.get(server.state, []):
            raise ScwApiError(
                400,
                "invalid_request_error",
                f"action {action} is not allowed while the server is {server.state}",
            )
        timing = self.world.timing
        if action in ("poweron", "reboot"):
            rebooted = action == "reboot"
            self._transition(
                server, "starting", "booting kernel", timing.boot_seconds, "running", rebooted=rebooted
            )
        elif action == "poweroff":
            self._transition(server, "stopping", "", timing.action_seconds, "stopped")
        elif action == "stop_in_place":
            self._transition(server, "stopping", "", timing.action_seconds, "stopped in place")
        else:
            self._transition(server, "stopping", "terminating", timing.action_seconds, None)
        task = {
            "id": self.account.new_id(),
            "description": f"server_{action}",
            "status": "pending",
            "href_from": f"/servers/{server.id}/action",
            "href_result": f"/servers/{server.id}",
            "started_at": self._now(),
            "terminated_at": None,
            "progress": 0,
            "zone": server.zone,
        }
        return json_response({"task": task}, status=202)

    def _transition(
        self,
        server: InstanceServer,
        now_state: str,
        detail: str,
        seconds: float,
        final: str | None,
        *,
        rebooted: bool = False,
    ) -> None:
        """Move ``server`` into ``now_state`` and, ``seconds`` later, into ``final`` (None: deleted),
        then tell the world's machine listeners what became of the machine."""
        server.state = now_state
        server.state_detail = detail
        server.generation += 1
        server.modified = self.world.now()
        generation = server.generation

        async def finish() -> None:
            await self.world.sleep(seconds)
            if self.account.servers.get(server.id) is not server or server.generation != generation:
                return
            if final is None:
                self._remove_server(server)
                return
            server.state = final
            server.state_detail = "booted" if final == "running" else ""
            server.generation += 1
            server.modified = self.world.now()
            self._tell_world(server, rebooted=rebooted)

        self.world.spawn(finish())

    def _machine_address(self, server: InstanceServer) -> str | None:
        """Where the server's machine answers: its first public address (None without one)."""
        ips = self._server_ips(server)
        return ips[0][1] if ips else None

    def _tell_world(self, server: InstanceServer, *, rebooted: bool) -> None:
        """Report the machine's power to the world's listeners (the simulated nodes). Root accepts
        the project's SSH keys, as Scaleway's images install them at boot."""
        address = self._machine_address(server)
        if address is None:
            return
        if server.state != "running":
            self.world.machine_stopped(address)
        elif rebooted:
            self.world.machine_rebooted(address)
        else:
            keys = tuple(k.public_key for k in self.account.ssh_keys.values())
            self.world.machine_running(address, server.name, keys)
