"""Instance security groups (``/security_groups``) and their rules.

Each zone has a Project default group, created on first use. A group with
``enable_default_security`` carries non-editable rules (outbound SMTP dropped); ``PUT .../rules``
replaces only the editable ones and ignores rules sent with ``editable: false``. Rule protocols are
rendered upper-case (``TCP``), as the real API does. A group still used by a server cannot be deleted.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway.errors import ScwApiError, invalid_argument, json_response, not_found
from legion_nb.emulators.scaleway.instance.zone import (
    PREFIX,
    InstanceCollection,
    check_owner_query,
    in_zone,
    zone_of,
)
from legion_nb.emulators.scaleway.store import ScalewayAccount, SecurityGroup
from legion_nb.emulators.scaleway.wire import flag, instance_list, read_body, require, split_csv, tag_list

__all__ = ["SecurityGroupsApi", "default_group", "find_group"]

_RULE_PROTOCOLS = ("TCP", "UDP", "ICMP", "ANY")
_RULE_DIRECTIONS = ("inbound", "outbound")
_RULE_ACTIONS = ("accept", "drop")
_POLICIES = ("accept", "drop")
_SMTP_PORTS = (25, 465, 587)


def find_group(account: ScalewayAccount, zone: str, group_id: str) -> SecurityGroup:
    """The security group ``group_id`` of ``zone``; ``not_found`` when there is none."""
    return in_zone(account.security_groups, zone, group_id, "instance_security_group")


def default_group(account: ScalewayAccount, zone: str) -> SecurityGroup:
    """The Project default group of ``zone``, created on first use as the real API does."""
    for group in account.security_groups.values():
        if group.zone == zone and group.project_default:
            return group
    return _new_group(
        account,
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
    account: ScalewayAccount,
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
    now = account.world.now()
    group = SecurityGroup(
        id=account.new_id(),
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
                _rule(
                    account,
                    zone,
                    "TCP",
                    "outbound",
                    "drop",
                    "0.0.0.0/0",
                    port,
                    None,
                    position,
                    editable=False,
                )
            )
    account.security_groups[group.id] = group
    return group


def _rule(  # noqa: PLR0917 - the rule's wire fields, in wire order
    account: ScalewayAccount,
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
        "id": rule_id or account.new_id(),
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


class SecurityGroupsApi(InstanceCollection):
    """Route handlers of ``/security_groups`` and their rules over one :class:`ScalewayAccount`."""

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
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
        ]

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
        zone = zone_of(request)
        check_owner_query(self.account, request)
        default_group(self.account, zone)
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
        zone = zone_of(request)
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
            current = default_group(self.account, zone)
            current.project_default = False
        group = _new_group(
            self.account,
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
        group = find_group(self.account, zone_of(request), request.match_info["group_id"])
        return json_response({"security_group": self.group_json(group)})

    async def update_security_group(self, request: web.Request) -> web.Response:
        group = find_group(self.account, zone_of(request), request.match_info["group_id"])
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
        group = find_group(self.account, zone_of(request), request.match_info["group_id"])
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
        return _rule(
            self.account,
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
        group = find_group(self.account, zone_of(request), request.match_info["group_id"])
        return instance_list(request, "rules", sorted(group.rules, key=lambda r: r["position"]))

    async def create_rule(self, request: web.Request) -> web.Response:
        zone = zone_of(request)
        group = find_group(self.account, zone, request.match_info["group_id"])
        body = await read_body(request)
        rule = self._parse_rule(zone, body, len(group.rules) + 1)
        group.rules.append(rule)
        return json_response({"rule": rule}, status=201)

    async def set_rules(self, request: web.Request) -> web.Response:
        zone = zone_of(request)
        group = find_group(self.account, zone, request.match_info["group_id"])
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
        group = find_group(self.account, zone_of(request), request.match_info["group_id"])
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
