"""``/servers``: create, read, label filters, delete and power/rebuild actions.

Lifecycle: create answers 201 with the server ``initializing``, a ``create_server`` action and a
``start_server`` next action. When ``create_server`` succeeds the server is ``starting`` (or ``off``
without ``start_after_create``); ``start_server`` ends ``timing.boot_seconds`` later with the server
``running``. Delete is an action too; the server's primary IPs go with it (``auto_delete``) or stay
unassigned. A second action while one is running answers ``423 locked``; clients are expected to wait
and retry.

Addresses: ``public_net.enable_ipv6`` (default true) gives the server an IPv6 ``/64`` primary IP (see
:mod:`legion_nb.emulators.hetzner.project` for why its block lies in ``2001:db8::/32``); every server
has an IPv4 primary IP, because its loopback IPv4 address is how the simulated machine is reached.
``public_net.ipv4`` / ``ipv6`` name an existing unassigned primary IP to use instead of a new one.

Rescue: ``enable_rescue`` sets ``rescue_enabled`` and answers a root password; the next boot
(``poweron``, ``reboot``, ``reset``) consumes it, as on the real platform. The simulated machine itself
keeps running its own system: the sandbox has no rescue image.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from legion_nb.emulators.hetzner.actions import Action
from legion_nb.emulators.hetzner.catalog import Location
from legion_nb.emulators.hetzner.labels import filter_by_selector, validate_labels
from legion_nb.emulators.hetzner.project import HetznerProject, PrimaryIpRecord, ServerRecord, ipv6_block_for
from legion_nb.emulators.hetzner.wire import (
    ApiError,
    Json,
    filter_equal,
    invalid_input,
    not_found,
    optional_str,
    page_of,
    read_body,
    resource_routes,
    sort_items,
)
from legion_nb.emulators.httpkit import isoformat

__all__ = ["ServersApi"]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_USER_DATA_LIMIT = 32 * 1024
_STATUSES = {
    "initializing",
    "starting",
    "running",
    "stopping",
    "off",
    "deleting",
    "rebuilding",
    "migrating",
    "unknown",
}


class ServersApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return resource_routes(prefix, "servers", self)

    async def index(self, request: web.Request) -> web.Response:
        items = [self.p.server_wire(s) for s in self.p.servers.values()]
        items = filter_equal(request, items, "name")
        statuses = request.query.getall("status", [])
        unknown = set(statuses) - _STATUSES
        if unknown:
            raise ApiError(400, "invalid_input", f"unknown server status filter {sorted(unknown)}")
        if statuses:
            items = [i for i in items if i["status"] in statuses]
        items = filter_by_selector(items, request.query.get("label_selector"))
        items = sort_items(request, items, ("id", "name", "created"))
        return page_of(request, items, "servers")

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"server": self.p.server_wire(self.p.get_server(request.match_info["id"]))})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not _HOSTNAME.match(name):
            raise invalid_input("name", "must be a valid hostname (letters, digits, '-' and '.')")
        if body.get("server_type") is None:
            raise invalid_input("server_type", "is required")
        if body.get("image") is None:
            raise invalid_input("image", "is required")
        server_type = self.p.server_type(body["server_type"])
        location = self._location(body, server_type.locations)
        image = self.p.image(body["image"], server_type.architecture)
        labels = validate_labels(body.get("labels"))
        ssh_keys = body.get("ssh_keys") or []
        if not isinstance(ssh_keys, list):
            raise invalid_input("ssh_keys", "must be a list of SSH key IDs or names")
        key_ids = [self.p.ssh_key_by_ref(k).id for k in ssh_keys]
        user_data = optional_str(body, "user_data")
        if user_data is not None and len(user_data.encode()) > _USER_DATA_LIMIT:
            raise invalid_input("user_data", "must be at most 32 KiB")
        firewall_ids = self._firewall_refs(body.get("firewalls"))
        start = body.get("start_after_create", True)
        if not isinstance(start, bool):
            raise invalid_input("start_after_create", "must be a boolean")
        if any(s.name == name for s in self.p.servers.values()):
            raise ApiError(
                409, "uniqueness_error", "server name is already used", {"fields": [{"name": "name"}]}
            )
        public_net = body.get("public_net") or {}
        if not isinstance(public_net, dict):
            raise invalid_input("public_net", "must be an object")
        given_v4 = self._given_primary(public_net, "ipv4", location)
        given_v6 = self._given_primary(public_net, "ipv6", location)
        if given_v4 is None and public_net.get("enable_ipv4", True) is False:
            raise invalid_input(
                "public_net.enable_ipv4",
                "the sandbox needs an IPv4 address per server (simulated machines live on 127.0.0.0/8)",
            )

        sid = self.p.new_id("server")
        v4 = given_v4 or self.p.add_primary_ip("ipv4", location, auto_delete=True)
        v4.assignee_id = sid
        v6 = given_v6
        if v6 is None and public_net.get("enable_ipv6", True) is not False:
            v6 = self.p.add_primary_ip("ipv6", location, ip=ipv6_block_for(v4.ip), auto_delete=True)
        if v6 is not None:
            v6.assignee_id = sid
        server = ServerRecord(
            id=sid,
            name=name,
            status="initializing",
            created=isoformat(self.p.world.now()),
            server_type=server_type,
            location=location,
            image=image,
            ipv4=v4.ip,
            ipv4_id=v4.id,
            labels=labels,
            ssh_keys=key_ids,
            ipv6_id=v6.id if v6 is not None else None,
            user_data=user_data,
        )
        self.p.servers[server.id] = server
        for fid in firewall_ids:
            self.p.firewalls[fid].servers.append(server.id)
        timing = self.p.world.timing
        create = self.p.actions.start(
            "create_server",
            [("server", server.id)],
            on_success=self._transition(server, "initializing", "starting" if start else "off"),
        )
        next_actions = []
        if start:
            boot = self.p.actions.start(
                "start_server",
                [("server", server.id)],
                seconds=timing.action_seconds + timing.boot_seconds,
                on_success=self._transition(server, "starting", "running"),
            )
            next_actions.append(boot.wire())
        root_password = None if key_ids else self.p.world.new_secret(12)
        return web.json_response(
            {
                "server": self.p.server_wire(server),
                "action": create.wire(),
                "next_actions": next_actions,
                "root_password": root_password,
            },
            status=201,
        )

    async def update(self, request: web.Request) -> web.Response:
        server = self.p.get_server(request.match_info["id"])
        body = await read_body(request)
        name = body.get("name")
        if name is not None:
            if not isinstance(name, str) or not _HOSTNAME.match(name):
                raise invalid_input("name", "must be a valid hostname")
            if any(s.name == name and s.id != server.id for s in self.p.servers.values()):
                raise ApiError(
                    409, "uniqueness_error", "server name is already used", {"fields": [{"name": "name"}]}
                )
            server.name = name
        if "labels" in body:
            server.labels = validate_labels(body["labels"])
        return web.json_response({"server": self.p.server_wire(server)})

    async def delete(self, request: web.Request) -> web.Response:
        server = self.p.get_server(request.match_info["id"])
        if server.protection["delete"]:
            raise ApiError(423, "protected", f"server {server.id} is protected against deletion")
        server.status = "deleting"
        action = self.p.actions.start(
            "delete_server", [("server", server.id)], on_success=self._forget(server)
        )
        return web.json_response({"action": action.wire()})

    async def action(self, request: web.Request) -> web.Response:
        server = self.p.get_server(request.match_info["id"])
        name = request.match_info["action"]
        body = await read_body(request)
        handler = {
            "poweron": self._poweron,
            "poweroff": self._poweroff,
            "shutdown": self._poweroff,
            "reboot": self._reboot,
            "reset": self._reboot,
            "rebuild": self._rebuild,
            "change_type": self._change_type,
            "change_protection": self._change_protection,
            "enable_rescue": self._enable_rescue,
            "disable_rescue": self._disable_rescue,
        }.get(name)
        if handler is None:
            raise not_found("server action", name)
        if server.status == "deleting":
            raise ApiError(423, "locked", f"server {server.id} is being deleted")
        if name != "change_protection":
            self.p.ensure_unlocked("server", server.id)
        return web.json_response(handler(server, name, body), status=201)

    # -- actions ------------------------------------------------------------------------------

    def _poweron(self, server: ServerRecord, name: str, body: Json) -> Json:
        if server.status == "off":
            server.status = "starting"
        server.rescue_enabled = False
        return {"action": self._act("start_server", server, "starting", "running").wire()}

    def _poweroff(self, server: ServerRecord, name: str, body: Json) -> Json:
        if server.status == "running":
            server.status = "stopping"
        command = "shutdown_server" if name == "shutdown" else "stop_server"
        return {"action": self._act(command, server, "stopping", "off").wire()}

    def _reboot(self, server: ServerRecord, name: str, body: Json) -> Json:
        command = "reboot_server" if name == "reboot" else "reset_server"
        server.rescue_enabled = False
        return {"action": self._act(command, server, "running", "running").wire()}

    def _rebuild(self, server: ServerRecord, name: str, body: Json) -> Json:
        if body.get("image") is None:
            raise invalid_input("image", "is required")
        server.image = self.p.image(body["image"], server.server_type.architecture)
        server.status = "rebuilding"
        action = self._act("rebuild_server", server, "rebuilding", "running")
        root_password = None if server.ssh_keys else self.p.world.new_secret(12)
        return {"action": action.wire(), "root_password": root_password}

    def _change_type(self, server: ServerRecord, name: str, body: Json) -> Json:
        if server.status != "off":
            raise ApiError(422, "server_not_stopped", f"server {server.id} must be off to change its type")
        new_type = self.p.server_type(body.get("server_type"))
        if server.location.name not in new_type.locations:
            raise invalid_input("server_type", f"{new_type.name} is not available in {server.location.name}")
        if new_type.architecture != server.server_type.architecture:
            raise invalid_input("server_type", "cannot change the CPU architecture of a server")

        def apply() -> None:
            server.server_type = new_type

        action = self.p.actions.start("change_server_type", [("server", server.id)], on_success=apply)
        return {"action": action.wire()}

    def _enable_rescue(self, server: ServerRecord, name: str, body: Json) -> Json:
        if body.get("type") not in (None, "linux64"):
            raise invalid_input("type", "must be 'linux64'")
        keys = body.get("ssh_keys")
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, int) for k in keys)):
            raise invalid_input("ssh_keys", "must be a list of SSH key IDs")
        for key in keys or []:
            if key not in self.p.ssh_keys:
                raise invalid_input("ssh_keys", f"SSH key {key} not found")

        def enable() -> None:
            server.rescue_enabled = True

        action = self.p.actions.start("enable_rescue", [("server", server.id)], on_success=enable)
        return {"action": action.wire(), "root_password": self.p.world.new_secret(12)}

    def _disable_rescue(self, server: ServerRecord, name: str, body: Json) -> Json:
        def disable() -> None:
            server.rescue_enabled = False

        action = self.p.actions.start("disable_rescue", [("server", server.id)], on_success=disable)
        return {"action": action.wire()}

    def _change_protection(self, server: ServerRecord, name: str, body: Json) -> Json:
        for key in ("delete", "rebuild"):
            if key in body:
                if not isinstance(body[key], bool):
                    raise invalid_input(key, "must be a boolean")
                server.protection[key] = body[key]
        return {"action": self.p.actions.finished("change_protection", [("server", server.id)]).wire()}

    # -- helpers ------------------------------------------------------------------------------

    def _act(self, command: str, server: ServerRecord, during: str, after: str) -> Action:
        return self.p.actions.start(
            command, [("server", server.id)], on_success=self._transition(server, during, after)
        )

    def _transition(self, server: ServerRecord, expected: str, new: str) -> Callable[[], None]:
        """Move ``server`` to ``new`` only if nothing else (a delete, a later action) moved it meanwhile."""

        def apply() -> None:
            if self.p.servers.get(server.id) is server and server.status == expected:
                server.status = new
                self._tell_world(server, expected, new)

        return apply

    def _tell_world(self, server: ServerRecord, before: str, after: str) -> None:
        """Report the machine's life to the world's listeners (the simulated nodes)."""
        world = self.p.world
        keys = tuple(self.p.ssh_keys[k].public_key for k in server.ssh_keys if k in self.p.ssh_keys)
        if after == "off":
            world.machine_stopped(server.ipv4)
        elif after == "running" and before == "rebuilding":
            world.machine_rebuilt(server.ipv4, server.name, keys)
        elif after == "running" and before == "running":
            world.machine_rebooted(server.ipv4)
        elif after == "running":
            world.machine_running(server.ipv4, server.name, keys)

    def _forget(self, server: ServerRecord) -> Callable[[], None]:
        def apply() -> None:
            if self.p.servers.pop(server.id, None) is None:
                return
            self.p.world.machine_gone(server.ipv4)
            self.p.release_primary_ips(server)
            for fw in self.p.firewalls.values():
                if server.id in fw.servers:
                    fw.servers.remove(server.id)
            for fip in self.p.floating_ips.values():
                if fip.server == server.id:
                    fip.server = None

        return apply

    def _location(self, body: Json, available: tuple[str, ...]) -> Location:
        raw = body.get("location")
        if raw is None and isinstance(body.get("datacenter"), str):
            raw = str(body["datacenter"]).split("-", 1)[0]
        if raw is None:
            raw = available[0]
        location = self.p.location(raw)
        if location.name not in available:
            raise invalid_input("location", f"server type is not available in {location.name}")
        return location

    def _given_primary(self, public_net: Json, kind: str, location: Location) -> PrimaryIpRecord | None:
        """The unassigned primary IP ``public_net.<kind>`` names for the new server, if any."""
        ref = public_net.get(kind)
        if ref is None:
            return None
        record = self.p.primary_ips.get(ref) if isinstance(ref, int) else None
        if record is None:
            raise invalid_input(f"public_net.{kind}", f"primary IP {ref!r} not found")
        if record.type != kind:
            raise ApiError(
                412, "primary_ip_version_mismatch", f"primary IP {ref} is {record.type}, not {kind}"
            )
        if record.assignee_id is not None:
            raise ApiError(
                422, "primary_ip_assigned", f"primary IP {ref} is assigned to {record.assignee_id}"
            )
        if record.location.name != location.name:
            raise ApiError(
                422,
                "primary_ip_datacenter_mismatch",
                f"primary IP {ref} is in {record.location.name}, not {location.name}",
            )
        return record

    def _firewall_refs(self, value: object) -> list[int]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid_input("firewalls", 'must be a list of {"firewall": id}')
        ids: list[int] = []
        for item in value:
            fid = item.get("firewall") if isinstance(item, dict) else None
            if not isinstance(fid, int) or fid not in self.p.firewalls:
                raise invalid_input("firewalls", f"firewall {fid!r} not found")
            ids.append(fid)
        return ids
