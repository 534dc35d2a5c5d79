"""``/firewalls``: rule sets applied to servers directly or through a label selector.

``set_rules`` replaces the whole rule list; ``apply_to_resources`` / ``remove_from_resources`` attach and
detach; deleting a firewall that is still applied is ``422 resource_in_use``. Applying twice is
``422 firewall_already_applied``, removing what is not applied ``422 firewall_already_removed``.
Naming a server that does not exist is ``firewall_resource_not_found``: 404 from the
``apply_to_resources`` / ``remove_from_resources`` actions, 422 from create (the spec's codes).
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

from legion_nb.emulators.hetzner.actions import Action
from legion_nb.emulators.hetzner.labels import filter_by_selector, parse_selector, validate_labels
from legion_nb.emulators.hetzner.project import FirewallRecord, HetznerProject
from legion_nb.emulators.hetzner.wire import (
    ApiError,
    Json,
    by_id,
    filter_equal,
    invalid_input,
    not_found,
    page_of,
    read_body,
    resource_routes,
    sort_items,
)
from legion_nb.emulators.httpkit import isoformat

__all__ = ["FirewallsApi", "validate_rules"]

_PORT = re.compile(r"^(any|\d{1,5}(-\d{1,5})?)$")
_PORTED = ("tcp", "udp")
_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "gre")
_MAX_RULES = 50


def _cidrs(rule: Json, key: str, index: int) -> list[str]:
    value = rule.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_input(f"rules[{index}].{key}", "must be a list of CIDRs")
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise invalid_input(f"rules[{index}].{key}", f"{item!r} is not a valid CIDR") from None
    return list(value)


def validate_rules(value: object) -> list[Json]:
    """Check a ``rules`` list and return it normalised to the wire shape (every key present)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_input("rules", "must be a list of rules")
    if len(value) > _MAX_RULES:
        raise invalid_input("rules", f"at most {_MAX_RULES} rules are allowed")
    rules: list[Json] = []
    for index, rule in enumerate(value):
        if not isinstance(rule, dict):
            raise invalid_input(f"rules[{index}]", "must be an object")
        direction = rule.get("direction")
        protocol = rule.get("protocol")
        if direction not in ("in", "out"):
            raise invalid_input(f"rules[{index}].direction", "must be 'in' or 'out'")
        if protocol not in _PROTOCOLS:
            raise invalid_input(f"rules[{index}].protocol", f"must be one of {', '.join(_PROTOCOLS)}")
        port = rule.get("port")
        if protocol in _PORTED:
            if not isinstance(port, str) or not _PORT.match(port):
                raise invalid_input(
                    f"rules[{index}].port", "is required for tcp/udp: '80', '1024-2048' or 'any'"
                )
        elif port is not None:
            raise invalid_input(f"rules[{index}].port", f"must be omitted for {protocol}")
        sources = _cidrs(rule, "source_ips", index)
        destinations = _cidrs(rule, "destination_ips", index)
        if direction == "in" and not sources:
            raise invalid_input(f"rules[{index}].source_ips", "is required for inbound rules")
        if direction == "out" and not destinations:
            raise invalid_input(f"rules[{index}].destination_ips", "is required for outbound rules")
        description = rule.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid_input(f"rules[{index}].description", "must be a string")
        rules.append(
            {
                "direction": direction,
                "protocol": protocol,
                "port": port,
                "source_ips": sources if direction == "in" else [],
                "destination_ips": destinations if direction == "out" else [],
                "description": description,
            }
        )
    return rules


class FirewallsApi:
    def __init__(self, project: HetznerProject) -> None:
        self.p = project

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return resource_routes(prefix, "firewalls", self)

    def wire(self, fw: FirewallRecord) -> Json:
        applied: list[Json] = [{"type": "server", "server": {"id": sid}} for sid in fw.servers]
        for selector in fw.selectors:
            matched = self.p.servers_matching(selector)
            applied.append(
                {
                    "type": "label_selector",
                    "label_selector": {"selector": selector},
                    "applied_to_resources": [{"type": "server", "server": {"id": sid}} for sid in matched],
                }
            )
        return {
            "id": fw.id,
            "name": fw.name,
            "labels": dict(fw.labels),
            "created": fw.created,
            "rules": [dict(r) for r in fw.rules],
            "applied_to": applied,
        }

    def _get(self, raw_id: str) -> FirewallRecord:
        return by_id(self.p.firewalls, raw_id, "firewall")

    async def index(self, request: web.Request) -> web.Response:
        items = [self.wire(f) for f in self.p.firewalls.values()]
        items = filter_equal(request, items, "name")
        items = filter_by_selector(items, request.query.get("label_selector"))
        return page_of(request, sort_items(request, items, ("id", "name", "created")), "firewalls")

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"firewall": self.wire(self._get(request.match_info["id"]))})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid_input("name", "is required")
        labels = validate_labels(body.get("labels"))
        rules = validate_rules(body.get("rules"))
        servers, selectors = self._targets(body.get("apply_to"), "apply_to", missing_status=422)
        if any(f.name == name for f in self.p.firewalls.values()):
            raise ApiError(
                409, "uniqueness_error", "firewall name is already used", {"fields": [{"name": "name"}]}
            )
        fw = FirewallRecord(self.p.new_id("firewall"), name, labels, rules, isoformat(self.p.world.now()))
        self.p.firewalls[fw.id] = fw
        actions = [self._apply(fw, servers, selectors)] if servers or selectors else []
        return web.json_response(
            {"firewall": self.wire(fw), "actions": [a.wire() for a in actions]}, status=201
        )

    async def update(self, request: web.Request) -> web.Response:
        fw = self._get(request.match_info["id"])
        body = await read_body(request)
        name = body.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise invalid_input("name", "must be a non-empty string")
            if any(f.name == name and f.id != fw.id for f in self.p.firewalls.values()):
                raise ApiError(409, "uniqueness_error", "firewall name is already used")
            fw.name = name
        if "labels" in body:
            fw.labels = validate_labels(body["labels"])
        return web.json_response({"firewall": self.wire(fw)})

    async def delete(self, request: web.Request) -> web.Response:
        fw = self._get(request.match_info["id"])
        if fw.servers or fw.selectors:
            raise ApiError(
                422, "resource_in_use", f"firewall {fw.id} is still applied; remove it from resources first"
            )
        del self.p.firewalls[fw.id]
        return web.Response(status=204)

    async def action(self, request: web.Request) -> web.Response:
        fw = self._get(request.match_info["id"])
        body = await read_body(request)
        name = request.match_info["action"]
        if name == "set_rules":
            fw.rules = validate_rules(body.get("rules"))
            resources = [("firewall", fw.id)] + [("server", sid) for sid in self._covered(fw)]
            actions = [self.p.actions.start("set_firewall_rules", resources)]
        elif name == "apply_to_resources":
            servers, selectors = self._targets(body.get("apply_to"), "apply_to")
            for sid in servers:
                if sid in fw.servers:
                    raise ApiError(
                        422, "firewall_already_applied", f"firewall {fw.id} is already applied to {sid}"
                    )
            for selector in selectors:
                if selector in fw.selectors:
                    raise ApiError(
                        422, "firewall_already_applied", f"firewall {fw.id} already uses {selector!r}"
                    )
            actions = [self._apply(fw, servers, selectors)]
        elif name == "remove_from_resources":
            servers, selectors = self._targets(body.get("remove_from"), "remove_from")
            for sid in servers:
                if sid not in fw.servers:
                    raise ApiError(
                        422, "firewall_already_removed", f"firewall {fw.id} is not applied to {sid}"
                    )
                fw.servers.remove(sid)
            for selector in selectors:
                if selector not in fw.selectors:
                    raise ApiError(
                        422, "firewall_already_removed", f"firewall {fw.id} does not use {selector!r}"
                    )
                fw.selectors.remove(selector)
            resources = [("firewall", fw.id)] + [("server", sid) for sid in servers]
            actions = [self.p.actions.start("remove_firewall", resources)]
        else:
            raise not_found("firewall action", name)
        return web.json_response({"actions": [a.wire() for a in actions]}, status=201)

    def _covered(self, fw: FirewallRecord) -> list[int]:
        covered = list(fw.servers)
        for selector in fw.selectors:
            covered += [sid for sid in self.p.servers_matching(selector) if sid not in covered]
        return covered

    def _apply(self, fw: FirewallRecord, servers: list[int], selectors: list[str]) -> Action:
        fw.servers.extend(servers)
        fw.selectors.extend(selectors)
        resources = [("firewall", fw.id)] + [("server", sid) for sid in servers]
        for selector in selectors:
            resources += [("server", sid) for sid in self.p.servers_matching(selector)]
        return self.p.actions.start("apply_firewall", resources)

    def _targets(
        self, value: object, field: str, *, missing_status: int = 404
    ) -> tuple[list[int], list[str]]:
        if value is None:
            return [], []
        if not isinstance(value, list):
            raise invalid_input(field, "must be a list of resources")
        servers: list[int] = []
        selectors: list[str] = []
        for index, item in enumerate(value):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "server":
                ref = item.get("server") if isinstance(item, dict) else None
                sid = ref.get("id") if isinstance(ref, dict) else None
                if not isinstance(sid, int) or sid not in self.p.servers:
                    raise ApiError(
                        missing_status,
                        "firewall_resource_not_found",
                        f"server {sid!r} in {field}[{index}] was not found",
                    )
                servers.append(sid)
            elif kind == "label_selector":
                ref = item.get("label_selector") if isinstance(item, dict) else None
                selector = ref.get("selector") if isinstance(ref, dict) else None
                if not isinstance(selector, str) or not selector.strip():
                    raise invalid_input(f"{field}[{index}].label_selector.selector", "is required")
                parse_selector(selector)
                selectors.append(selector)
            else:
                raise invalid_input(f"{field}[{index}].type", "must be 'server' or 'label_selector'")
        return servers, selectors
