"""The emulated Instance API: ``/instance/v1/zones/{zone}/...``.

Behaviour that clients must handle, reproduced on purpose:

* a created server is ``stopped``; ``POST .../action {"action": "poweron"}`` starts it (``starting``,
  then ``running`` after ``timing.boot_seconds``) and answers with a ``task``, not with the server;
* names are not unique, tags are free-form strings and ``?tags=a,b`` lists servers holding all of them;
* a server in ``starting``/``stopping`` refuses actions and deletion with ``transient_state``; a running
  server cannot be deleted (use the ``terminate`` action);
* ``dynamic_ip_required`` (default true) gives the server a public address from the world's loopback
  pool, released again when the server is deleted;
* security groups carry non-editable default rules when ``enable_default_security`` is set, and
  ``PUT .../rules`` replaces only the editable ones (rules sent with ``editable: false`` are ignored);
  rule protocols are rendered upper-case (``TCP``), as the real API does.
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
from legion_nb.emulators.scaleway.store import (
    FlexibleIp,
    InstanceServer,
    ScalewayAccount,
    SecurityGroup,
    ServerUsage,
)
from legion_nb.emulators.scaleway.wire import (
    flag,
    instance_list,
    page_of,
    read_body,
    require,
    split_csv,
    tag_list,
)

__all__ = ["InstanceApi"]

PUBLIC_IMAGES_ORGANIZATION = "51b656e3-4865-41e8-adbc-0c45bdd780db"
PREFIX = "/instance/v1/zones/{zone}"

_TRANSIENT = ("starting", "stopping")
_ALLOWED_ACTIONS = {
    "stopped": ["poweron"],
    "stopped in place": ["poweron", "poweroff", "terminate"],
    "running": ["poweroff", "terminate", "reboot", "stop_in_place"],
}
_RULE_PROTOCOLS = ("TCP", "UDP", "ICMP", "ANY")
_RULE_DIRECTIONS = ("inbound", "outbound")
_RULE_ACTIONS = ("accept", "drop")
_POLICIES = ("accept", "drop")
_SMTP_PORTS = (25, 465, 587)


class InstanceApi:
    """Route handlers of the Instance API over one :class:`ScalewayAccount`."""

    def __init__(self, account: ScalewayAccount) -> None:
        self.account = account
        self.world = account.world

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/products/servers", self.list_server_types),
            web.get(f"{p}/products/servers/availability", self.server_types_availability),
            web.get(f"{p}/images", self.list_images),
            web.get(f"{p}/images/{{image_id}}", self.get_image),
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
            web.get(f"{p}/security_groups", self.list_security_groups),
            web.post(f"{p}/security_groups", self.create_security_group),
            web.get(f"{p}/security_groups/{{group_id}}", self.get_security_group),
            web.patch(f"{p}/security_groups/{{group_id}}", self.update_security_group),
            web.delete(f"{p}/security_groups/{{group_id}}", self.delete_security_group),
            web.get(f"{p}/security_groups/{{group_id}}/rules", self.list_rules),
            web.post(f"{p}/security_groups/{{group_id}}/rules", self.create_rule),
            web.put(f"{p}/security_groups/{{group_id}}/rules", self.set_rules),
            web.get(f"{p}/security_groups/{{group_id}}/rules/{{rule_id}}", self.get_rule),
            web.delete(f"{p}/security_groups/{{group_id}}/rules/{{rule_id}}", self.delete_rule),
            web.get(f"{p}/ips", self.list_ips),
            web.post(f"{p}/ips", self.create_ip),
            web.get(f"{p}/ips/{{ip_id}}", self.get_ip),
            web.patch(f"{p}/ips/{{ip_id}}", self.update_ip),
            web.delete(f"{p}/ips/{{ip_id}}", self.delete_ip),
        ]

    # ---------------------------------------------------------------------------------------- helpers

    @staticmethod
    def _zone(request: web.Request) -> str:
        zone = request.match_info["zone"]
        if zone not in catalog.ZONES:
            raise invalid_argument("zone", f"unknown zone {zone}; use one of {', '.join(catalog.ZONES)}")
        return zone

    def _now(self) -> str:
        return self.world.now().isoformat()

    def _server(self, request: web.Request) -> InstanceServer:
        zone = self._zone(request)
        server_id = request.match_info["server_id"]
        server = self.account.servers.get(server_id)
        if server is None or server.zone != zone:
            raise not_found("instance_server", server_id)
        return server

    def _group(self, zone: str, group_id: str) -> SecurityGroup:
        group = self.account.security_groups.get(group_id)
        if group is None or group.zone != zone:
            raise not_found("instance_security_group", group_id)
        return group

    def _ip(self, request: web.Request) -> FlexibleIp:
        zone = self._zone(request)
        ip_id = request.match_info["ip_id"]
        ip = self.account.ips.get(ip_id)
        if ip is None or ip.zone != zone:
            raise not_found("instance_ip", ip_id)
        return ip

    def _check_owner_query(self, request: web.Request) -> None:
        self.account.check_project(request.query.get("project"), request.query.get("organization"))

    # ---------------------------------------------------------------------------------------- catalog

    async def list_server_types(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        types = [t for t in catalog.SERVER_TYPES if zone in t.zones]
        page = page_of(request, "per_page", 50, types)
        return json_response(
            {"servers": {t.name: t.json() for t in page}},
            headers={"X-Total-Count": str(len(types))},
        )

    async def server_types_availability(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        types = [t for t in catalog.SERVER_TYPES if zone in t.zones]
        page = page_of(request, "per_page", 50, types)
        body = {
            "servers": {t.name: {"availability": catalog.availability(zone, t.name)} for t in page},
            "total_count": len(types),
        }
        return json_response(body, headers={"X-Total-Count": str(len(types))})

    def image_json(self, zone: str, template: catalog.ImageTemplate) -> dict[str, Any]:
        image_id = catalog.image_id(zone, template.label, template.arch)
        created = "2026-06-01T09:00:00.000000+00:00"
        return {
            "id": image_id,
            "name": template.name,
            "arch": template.arch,
            "creation_date": created,
            "modification_date": created,
            "default_bootscript": None,
            "extra_volumes": {},
            "from_server": "",
            "organization": PUBLIC_IMAGES_ORGANIZATION,
            "project": PUBLIC_IMAGES_ORGANIZATION,
            "public": True,
            "root_volume": {
                "id": catalog.image_id(zone, template.label + ":snapshot", template.arch),
                "name": f"{template.label}_{template.arch}",
                "volume_type": "sbs_snapshot",
                "size": template.root_size_gb * catalog.GB,
            },
            "state": "available",
            "tags": [template.label],
            "zone": zone,
        }

    def zone_images(self, zone: str) -> list[dict[str, Any]]:
        return [self.image_json(zone, template) for template in catalog.IMAGES]

    async def list_images(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        images = self.zone_images(zone)
        name = request.query.get("name")
        arch = request.query.get("arch")
        public = flag(request, "public")
        if name:
            images = [i for i in images if name.lower() in i["name"].lower()]
        if arch:
            images = [i for i in images if i["arch"] == arch]
        if public is False:
            images = []
        return instance_list(request, "images", images)

    async def get_image(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        image_id = request.match_info["image_id"]
        for image in self.zone_images(zone):
            if image["id"] == image_id:
                return json_response({"image": image})
        raise not_found("instance_image", image_id)

    def _resolve_image(self, zone: str, ref: str, arch: str) -> dict[str, Any]:
        for template in catalog.IMAGES:
            image = self.image_json(zone, template)
            if ref == image["id"]:
                if template.arch != arch:
                    raise invalid_argument("image", f"image {ref} is {template.arch}; this type needs {arch}")
                return image
            if ref == template.label and template.arch == arch:
                return image
        raise invalid_argument("image", f"image {ref} does not exist in {zone} for {arch}")

    # ---------------------------------------------------------------------------------------- servers

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
        zone = self._zone(request)
        self._check_owner_query(request)
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
        zone = self._zone(request)
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
        image = self._resolve_image(zone, image_ref, spec.arch)
        name = body.get("name") or f"srv-{self.account.new_id()[:8]}"
        if not isinstance(name, str) or len(name) > 255:
            raise invalid_argument("name", "name must be a string of at most 255 characters")
        tags = tag_list(body)
        group_id = body.get("security_group")
        if group_id:
            if not isinstance(group_id, str):
                raise invalid_argument("security_group", "security_group must be a security group id")
            self._group(zone, group_id)
        else:
            group_id = self._default_group(zone).id
        flexible = [body["public_ip"]] if body.get("public_ip") else list(body.get("public_ips") or [])
        for ip_id in flexible:
            ip = self.account.ips.get(ip_id)
            if ip is None or ip.zone != zone:
                raise invalid_argument("public_ips", f"flexible IP {ip_id} does not exist in {zone}")
            if ip.server_id is not None:
                raise invalid_argument("public_ips", f"flexible IP {ip_id} is attached to another server")
        in_zone = sum(1 for s in self.account.servers.values() if s.zone == zone)
        if in_zone >= self.account.servers_per_zone:
            raise ScwApiError(
                403,
                "quotas_exceeded",
                "quota(s) exceeded for this resource",
                details=[
                    {"resource": "instances", "quota": self.account.servers_per_zone, "current": in_zone}
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
            server.security_group_id = self._group(server.zone, group_id).id
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
            self._transition(server, "starting", "booting kernel", timing.boot_seconds, "running")
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
        self, server: InstanceServer, now_state: str, detail: str, seconds: float, final: str | None
    ) -> None:
        """Move ``server`` into ``now_state`` and, ``seconds`` later, into ``final`` (None: deleted)."""
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

        self.world.spawn(finish())

    # -------------------------------------------------------------------------------- security groups

    def _default_group(self, zone: str) -> SecurityGroup:
        for group in self.account.security_groups.values():
            if group.zone == zone and group.project_default:
                return group
        return self._new_group(
            zone,
            name="Default security group",
            description="Auto generated security group.",
            tags=[],
            stateful=True,
            inbound="accept",
            outbound="accept",
            default_security=True,
            project_default=True,
        )

    def _new_group(
        self,
        zone: str,
        *,
        name: str,
        description: str,
        tags: list[str],
        stateful: bool,
        inbound: str,
        outbound: str,
        default_security: bool,
        project_default: bool,
    ) -> SecurityGroup:
        now = self.world.now()
        group = SecurityGroup(
            id=self.account.new_id(),
            zone=zone,
            name=name,
            description=description,
            tags=tags,
            stateful=stateful,
            inbound_default_policy=inbound,
            outbound_default_policy=outbound,
            enable_default_security=default_security,
            project_default=project_default,
            created=now,
            modified=now,
        )
        if default_security:
            for position, port in enumerate(_SMTP_PORTS, start=1):
                group.rules.append(
                    self._rule(
                        zone, "TCP", "outbound", "drop", "0.0.0.0/0", port, None, position, editable=False
                    )
                )
        self.account.security_groups[group.id] = group
        return group

    def _rule(  # noqa: PLR0917 - the rule's wire fields, in wire order
        self,
        zone: str,
        protocol: str,
        direction: str,
        action: str,
        ip_range: str,
        port_from: int | None,
        port_to: int | None,
        position: int,
        *,
        editable: bool,
        rule_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": rule_id or self.account.new_id(),
            "protocol": protocol,
            "direction": direction,
            "ip_range": ip_range,
            "dest_port_from": port_from,
            "dest_port_to": port_to,
            "position": position,
            "editable": editable,
            "action": action,
            "zone": zone,
        }

    def group_json(self, group: SecurityGroup) -> dict[str, Any]:
        servers = [
            {"id": s.id, "name": s.name}
            for s in self.account.servers.values()
            if s.security_group_id == group.id
        ]
        return {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "enable_default_security": group.enable_default_security,
            "inbound_default_policy": group.inbound_default_policy,
            "outbound_default_policy": group.outbound_default_policy,
            **self.account.owner_fields(),
            "organization_default": False,
            "project_default": group.project_default,
            "creation_date": group.created.isoformat(),
            "modification_date": group.modified.isoformat(),
            "servers": servers,
            "stateful": group.stateful,
            "state": "available",
            "tags": list(group.tags),
            "zone": group.zone,
        }

    async def list_security_groups(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        self._check_owner_query(request)
        self._default_group(zone)
        groups = [g for g in self.account.security_groups.values() if g.zone == zone]
        if name := request.query.get("name"):
            groups = [g for g in groups if name in g.name]
        if tags := split_csv(request.query.get("tags")):
            groups = [g for g in groups if all(tag in g.tags for tag in tags)]
        project_default = flag(request, "project_default")
        if project_default is not None:
            groups = [g for g in groups if g.project_default is project_default]
        return instance_list(request, "security_groups", [self.group_json(g) for g in groups])

    async def create_security_group(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        body = await read_body(request)
        self.account.check_project(body.get("project"), body.get("organization"))
        tags = tag_list(body)
        policies = {}
        for key in ("inbound_default_policy", "outbound_default_policy"):
            value = str(body.get(key) or "accept").lower()
            if value not in _POLICIES:
                raise invalid_argument(key, f"{key} must be accept or drop")
            policies[key] = value
        if body.get("project_default"):
            current = self._default_group(zone)
            current.project_default = False
        group = self._new_group(
            zone,
            name=str(body.get("name") or f"sg-{self.account.new_id()[:8]}"),
            description=str(body.get("description") or ""),
            tags=list(tags),
            stateful=bool(body.get("stateful", True)),
            inbound=policies["inbound_default_policy"],
            outbound=policies["outbound_default_policy"],
            default_security=bool(body.get("enable_default_security", True)),
            project_default=bool(body.get("project_default", False)),
        )
        return json_response({"security_group": self.group_json(group)}, status=201)

    async def get_security_group(self, request: web.Request) -> web.Response:
        group = self._group(self._zone(request), request.match_info["group_id"])
        return json_response({"security_group": self.group_json(group)})

    async def update_security_group(self, request: web.Request) -> web.Response:
        group = self._group(self._zone(request), request.match_info["group_id"])
        body = await read_body(request)
        for key in ("name", "description"):
            if key in body:
                setattr(group, key, require(body, key, str, f"{key} must be a non-empty string"))
        if "tags" in body:
            group.tags = tag_list(body)
        for key in ("inbound_default_policy", "outbound_default_policy"):
            if key in body:
                value = str(body[key]).lower()
                if value not in _POLICIES:
                    raise invalid_argument(key, f"{key} must be accept or drop")
                setattr(group, key, value)
        if "stateful" in body:
            group.stateful = bool(body["stateful"])
        group.modified = self.world.now()
        return json_response({"security_group": self.group_json(group)})

    async def delete_security_group(self, request: web.Request) -> web.Response:
        group = self._group(self._zone(request), request.match_info["group_id"])
        if any(s.security_group_id == group.id for s in self.account.servers.values()):
            raise ScwApiError(
                409,
                "conflict",
                "group is in use, you can't delete it",
                resource="instance_security_group",
                resource_id=group.id,
            )
        if group.project_default:
            raise ScwApiError(
                400, "invalid_request_error", "the project default security group cannot be deleted"
            )
        del self.account.security_groups[group.id]
        return web.Response(status=204)

    def _parse_rule(
        self, zone: str, raw: object, position: int, rule_id: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise invalid_argument("rules", "each rule must be an object")
        protocol = str(raw.get("protocol") or "").upper()
        direction = str(raw.get("direction") or "").lower()
        action = str(raw.get("action") or "").lower()
        if protocol not in _RULE_PROTOCOLS:
            raise invalid_argument("protocol", f"protocol must be one of {', '.join(_RULE_PROTOCOLS)}")
        if direction not in _RULE_DIRECTIONS:
            raise invalid_argument("direction", "direction must be inbound or outbound")
        if action not in _RULE_ACTIONS:
            raise invalid_argument("action", "action must be accept or drop")
        ip_range = str(raw.get("ip_range") or "")
        try:
            ip_range = str(ipaddress.ip_network(ip_range, strict=False))
        except ValueError:
            raise invalid_argument(
                "ip_range", f"ip_range {ip_range!r} is not a CIDR such as 0.0.0.0/0"
            ) from None
        port_from, port_to = raw.get("dest_port_from"), raw.get("dest_port_to")
        if protocol in ("ICMP", "ANY"):
            port_from = port_to = None
        else:
            for key, value in (("dest_port_from", port_from), ("dest_port_to", port_to)):
                if value is not None and (not isinstance(value, int) or not 0 <= value <= 65535):
                    raise invalid_argument(key, f"{key} must be a port between 1 and 65535")
            if port_from == 0:
                port_from = None
            if port_to in (0, port_from):
                port_to = None
            if port_from is not None and port_to is not None and port_to < port_from:
                raise invalid_argument("dest_port_to", "dest_port_to must not be lower than dest_port_from")
        pos = raw.get("position")
        return self._rule(
            zone,
            protocol,
            direction,
            action,
            ip_range,
            port_from,
            port_to,
            pos if isinstance(pos, int) and pos > 0 else position,
            editable=True,
            rule_id=rule_id,
        )

    async def list_rules(self, request: web.Request) -> web.Response:
        group = self._group(self._zone(request), request.match_info["group_id"])
        return instance_list(request, "rules", sorted(group.rules, key=lambda r: r["position"]))

    async def create_rule(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        group = self._group(zone, request.match_info["group_id"])
        body = await read_body(request)
        rule = self._parse_rule(zone, body, len(group.rules) + 1)
        group.rules.append(rule)
        return json_response({"rule": rule}, status=201)

    async def set_rules(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
        group = self._group(zone, request.match_info["group_id"])
        body = await read_body(request)
        raw_rules = body.get("rules") or []
        if not isinstance(raw_rules, list):
            raise invalid_argument("rules", "rules must be a list")
        fixed = [r for r in group.rules if not r["editable"]]
        editable_ids = {r["id"] for r in group.rules if r["editable"]}
        new_rules = []
        for index, raw in enumerate(raw_rules, start=len(fixed) + 1):
            if isinstance(raw, dict) and raw.get("editable") is False:
                continue  # documented: rules sent as non-editable are ignored
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if rule_id is not None and rule_id not in editable_ids:
                raise not_found("instance_security_group_rule", str(rule_id))
            new_rules.append(self._parse_rule(zone, raw, index, rule_id=rule_id))
        group.rules = fixed + new_rules
        group.modified = self.world.now()
        return json_response({"rules": sorted(group.rules, key=lambda r: r["position"])})

    def _find_rule(self, request: web.Request) -> tuple[SecurityGroup, dict[str, Any]]:
        group = self._group(self._zone(request), request.match_info["group_id"])
        rule_id = request.match_info["rule_id"]
        for rule in group.rules:
            if rule["id"] == rule_id:
                return group, rule
        raise not_found("instance_security_group_rule", rule_id)

    async def get_rule(self, request: web.Request) -> web.Response:
        _, rule = self._find_rule(request)
        return json_response({"rule": rule})

    async def delete_rule(self, request: web.Request) -> web.Response:
        group, rule = self._find_rule(request)
        if not rule["editable"]:
            raise ScwApiError(400, "invalid_request_error", "this rule is not editable")
        group.rules.remove(rule)
        return web.Response(status=204)

    # ----------------------------------------------------------------------------------- flexible IPs

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
        zone = self._zone(request)
        self._check_owner_query(request)
        ips = [ip for ip in self.account.ips.values() if ip.zone == zone]
        if tags := split_csv(request.query.get("tags")):
            ips = [ip for ip in ips if all(tag in ip.tags for tag in tags)]
        if ip_type := request.query.get("type"):
            ips = [ip for ip in ips if ip.ip_type == ip_type]
        return instance_list(request, "ips", [self.ip_json(ip) for ip in ips])

    async def create_ip(self, request: web.Request) -> web.Response:
        zone = self._zone(request)
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
            server = self.account.servers.get(server_id)
            if server is None or server.zone != zone:
                raise not_found("instance_server", str(server_id))
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
                server = self.account.servers.get(str(server_id))
                if server is None or server.zone != ip.zone:
                    raise not_found("instance_server", str(server_id))
            self._attach(ip, server)
        return json_response({"ip": self.ip_json(ip)})

    async def delete_ip(self, request: web.Request) -> web.Response:
        ip = self._ip(request)
        self._attach(ip, None)
        del self.account.ips[ip.id]
        self.world.addresses.release(ip.address)
        return web.Response(status=204)
