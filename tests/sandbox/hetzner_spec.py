"""What Hetzner's published OpenAPI spec documents for the responses the sandbox tests see.

Written from the spec (Hetzner Cloud API, OpenAPI 3.1) as a compact table, not a copy of it: per
operation the success status and the body's required fields; per shape the required fields, whether
each may be null, and the nested shapes. :func:`problems` checks one response against it, so an
emulator answer that drifts from the documented shape fails the SDK test that saw it.

Field syntax in a shape: ``name`` required, ``name?`` required but may be null, ``-name`` optional
(checked when present), ``name:shape`` a nested object, ``name:[shape]`` a list of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ERROR_STATUS", "OPERATIONS", "SHAPES", "problems"]

SHAPES: dict[str, str] = {
    "action": "id command status progress started finished? resources:[resource] error?:action_error",
    "resource": "id type",
    "action_error": "code message",
    "meta": "pagination:pagination",
    "pagination": "page per_page previous_page? next_page? last_page? total_entries?",
    "error": "error:error_detail",
    "error_detail": "code message -details",
    "price": "net gross",
    "location": "id name description country city latitude longitude network_zone",
    "server_type": (
        "id name description cores memory disk deprecated prices:[location_price] storage_type cpu_type"
        " architecture locations:[type_location] -category -deprecation?"
    ),
    "location_price": (
        "location price_hourly:price price_monthly:price included_traffic price_per_tb_traffic:price"
    ),
    "type_location": "id name deprecation? recommended available",
    "image": (
        "id type status name? description image_size? disk_size created created_from? bound_to? os_flavor"
        " os_version? protection:delete_protection deprecated? deleted? labels architecture -rapid_deploy"
    ),
    "delete_protection": "delete",
    "server": (
        "id name status created public_net:public_net private_net server_type:server_type location:location"
        " image?:image iso? rescue_enabled locked backup_window? outgoing_traffic? ingoing_traffic?"
        " included_traffic? protection:server_protection labels primary_disk_size -volumes -load_balancers"
        " -placement_group?"
    ),
    "public_net": "ipv4?:ipv4 ipv6?:ipv6 floating_ips -firewalls:[server_firewall]",
    "ipv4": "ip blocked dns_ptr -id",
    "ipv6": "ip blocked dns_ptr?:[dns_ptr] -id",
    "dns_ptr": "ip dns_ptr",
    "server_firewall": "-id -status",
    "server_protection": "delete rebuild",
    "ssh_key": "id name fingerprint public_key labels created",
    "firewall": "id name created rules:[firewall_rule] applied_to:[applied_to] -labels",
    "firewall_rule": "direction source_ips destination_ips protocol port? -description?",
    "applied_to": "type -server:id_ref -label_selector:selector -applied_to_resources",
    "id_ref": "id",
    "selector": "selector",
    "floating_ip": (
        "id name description? ip type server? dns_ptr:[dns_ptr] home_location:location blocked"
        " protection:delete_protection labels created"
    ),
    "primary_ip": (
        "id name labels created blocked location:location ip dns_ptr:[dns_ptr] protection:delete_protection"
        " type auto_delete assignee_type assignee_id?"
    ),
    "zone": (
        "id name labels created status ttl record_count protection:delete_protection"
        " authoritative_nameservers:nameservers registrar mode -primary_nameservers"
    ),
    "nameservers": "assigned delegated delegation_last_check? -delegation_status",
    "rrset": "id name type ttl? labels protection:rrset_protection records:[record] zone",
    "rrset_protection": "change",
    "record": "value -comment",
    "pricing": (
        "currency vat_rate primary_ips:[ip_prices] floating_ips:[floating_ip_prices] image:per_gb"
        " volume:per_gb server_backup:backup server_types:[type_prices] load_balancer_types:[type_prices]"
        " floating_ip:monthly"
    ),
    "ip_prices": "type prices:[ip_price]",
    "ip_price": "location price_hourly:price price_monthly:price",
    "floating_ip_prices": "type prices:[monthly_at]",
    "monthly_at": "location price_monthly:price",
    "monthly": "price_monthly:price",
    "per_gb": "price_per_gb_month:price",
    "backup": "percentage",
    "type_prices": "id name prices:[location_price]",
}

_ONE_ACTION = "action:action"
_ACTIONS = "actions:[action]"


def _collection(plural: str, singular: str, shape: str) -> list[tuple[str, str, int, str]]:
    """List/get plus the action listings every resource collection has."""
    return [
        ("GET", f"/{plural}", 200, f"{plural}:[{shape}] meta:meta"),
        ("GET", f"/{plural}/{{id}}", 200, f"{singular}:{shape}"),
        ("PUT", f"/{plural}/{{id}}", 200, f"{singular}:{shape}"),
        ("GET", f"/{plural}/actions", 200, f"{_ACTIONS} meta:meta"),
        ("GET", f"/{plural}/actions/{{id}}", 200, _ONE_ACTION),
        ("GET", f"/{plural}/{{id}}/actions", 200, f"{_ACTIONS} meta:meta"),
        ("GET", f"/{plural}/{{id}}/actions/{{action_id}}", 200, _ONE_ACTION),
    ]


_SERVER_ACTIONS = [
    "poweron",
    "poweroff",
    "shutdown",
    "reboot",
    "reset",
    "change_type",
    "change_protection",
    "disable_rescue",
]
_RRSET = "/zones/{id}/rrsets/{name}/{type}"

# (method, path, success status, body) for every operation the tests call.
OPERATIONS: list[tuple[str, str, int, str]] = [
    ("GET", "/actions", 200, f"{_ACTIONS} meta:meta"),
    ("GET", "/actions/{id}", 200, _ONE_ACTION),
    ("GET", "/server_types", 200, "server_types:[server_type] meta:meta"),
    ("GET", "/server_types/{id}", 200, "server_type:server_type"),
    ("GET", "/locations", 200, "locations:[location] meta:meta"),
    ("GET", "/locations/{id}", 200, "location:location"),
    ("GET", "/images", 200, "images:[image] meta:meta"),
    ("GET", "/images/{id}", 200, "image:image"),
    ("GET", "/pricing", 200, "pricing:pricing"),
    ("GET", "/ssh_keys", 200, "ssh_keys:[ssh_key] meta:meta"),
    ("POST", "/ssh_keys", 201, "ssh_key:ssh_key"),
    ("GET", "/ssh_keys/{id}", 200, "ssh_key:ssh_key"),
    ("PUT", "/ssh_keys/{id}", 200, "ssh_key:ssh_key"),
    ("DELETE", "/ssh_keys/{id}", 204, ""),
    *_collection("servers", "server", "server"),
    ("POST", "/servers", 201, "server:server action:action next_actions:[action] root_password?"),
    ("DELETE", "/servers/{id}", 200, _ONE_ACTION),
    *[("POST", f"/servers/{{id}}/actions/{name}", 201, _ONE_ACTION) for name in _SERVER_ACTIONS],
    ("POST", "/servers/{id}/actions/rebuild", 201, "-root_password? -action:action"),
    ("POST", "/servers/{id}/actions/enable_rescue", 201, "-root_password? -action:action"),
    *_collection("firewalls", "firewall", "firewall"),
    ("POST", "/firewalls", 201, "-firewall:firewall -actions:[action]"),
    ("DELETE", "/firewalls/{id}", 204, ""),
    *[
        ("POST", f"/firewalls/{{id}}/actions/{name}", 201, _ACTIONS)
        for name in ("set_rules", "apply_to_resources", "remove_from_resources")
    ],
    *_collection("floating_ips", "floating_ip", "floating_ip"),
    ("POST", "/floating_ips", 201, "floating_ip:floating_ip -action?:action"),
    ("DELETE", "/floating_ips/{id}", 204, ""),
    *[("POST", f"/floating_ips/{{id}}/actions/{name}", 201, _ONE_ACTION) for name in ("assign", "unassign")],
    *_collection("primary_ips", "primary_ip", "primary_ip"),
    ("POST", "/primary_ips", 201, "primary_ip:primary_ip -action?:action"),
    ("DELETE", "/primary_ips/{id}", 204, ""),
    *[("POST", f"/primary_ips/{{id}}/actions/{name}", 201, _ONE_ACTION) for name in ("assign", "unassign")],
    *_collection("zones", "zone", "zone"),
    ("POST", "/zones", 201, "zone:zone action:action"),
    ("DELETE", "/zones/{id}", 201, _ONE_ACTION),
    *[
        ("POST", f"/zones/{{id}}/actions/{name}", 201, _ONE_ACTION)
        for name in ("change_ttl", "change_protection")
    ],
    ("GET", "/zones/{id}/zonefile", 200, "zonefile"),
    ("GET", "/zones/{id}/rrsets", 200, "rrsets:[rrset] meta:meta"),
    ("POST", "/zones/{id}/rrsets", 201, "rrset:rrset action:action"),
    ("GET", _RRSET, 200, "rrset:rrset"),
    ("PUT", _RRSET, 200, "rrset:rrset"),
    ("DELETE", _RRSET, 201, _ONE_ACTION),
    *[
        ("POST", f"{_RRSET}/actions/{name}", 201, _ONE_ACTION)
        for name in ("add_records", "set_records", "remove_records", "change_ttl", "change_protection")
    ],
    ("POST", f"{_RRSET}/actions/update_records", 200, _ONE_ACTION),
]

# Error codes and their statuses: the spec's general table plus the operation-specific ones the tests hit.
ERROR_STATUS: dict[str, int] = {
    "json_error": 400,
    "unauthorized": 401,
    "token_readonly": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "uniqueness_error": 409,
    "conflict": 409,
    "resource_unavailable": 412,
    "invalid_input": 422,
    "unsupported_error": 422,
    "locked": 423,
    "protected": 423,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    # operation-specific
    "server_not_stopped": 422,
    "server_has_ipv4": 422,
    "server_has_ipv6": 422,
    "must_be_unassigned": 422,
    "resource_in_use": 422,
    "firewall_already_applied": 422,
    "firewall_already_removed": 422,
    "primary_ip_assigned": 422,
    "primary_ip_version_mismatch": 412,
}
# Codes whose status depends on the operation (firewall create answers 422, its actions 404).
_ERROR_STATUS_BY_OPERATION = {("POST", "/firewalls", "firewall_resource_not_found"): 422}
_ERROR_STATUS_ELSEWHERE = {"firewall_resource_not_found": 404}
# Not in the spec's table: the emulator answers malformed query parameters (a missing ``id`` filter,
# a bad ``label_selector`` or ``sort``) with 400 ``invalid_input``, which the tests below pin.
_QUERY_ERRORS = {("invalid_input", 400)}


def _fields(spec: str) -> list[tuple[str, bool, bool, str | None, bool]]:
    """``(name, optional, nullable, shape, is_list)`` for each field token of a shape string."""
    out = []
    for token in spec.split():
        optional = token.startswith("-")
        name, _, shape = token.lstrip("-").partition(":")
        nullable = name.endswith("?")
        is_list = shape.startswith("[")
        out.append((name.rstrip("?"), optional, nullable, shape.strip("[]") or None, is_list))
    return out


def _check(value: Any, spec: str, where: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    found: list[str] = []
    for name, optional, nullable, shape, is_list in _fields(spec):
        path = f"{where}.{name}"
        if name not in value:
            if not optional:
                found.append(f"{path}: required field missing")
            continue
        item = value[name]
        if item is None:
            if not nullable:
                found.append(f"{path}: null where the spec requires a value")
            continue
        if shape is None:
            continue
        if is_list:
            if not isinstance(item, list):
                found.append(f"{path}: expected a list")
                continue
            for index, element in enumerate(item):
                found += _check(element, SHAPES[shape], f"{path}[{index}]")
        else:
            found += _check(item, SHAPES[shape], path)
    return found


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$")


_COMPILED = [(method, _pattern(path), path, status, body) for method, path, status, body in OPERATIONS]


def operation(method: str, path: str) -> tuple[str, int, str] | None:
    """The documented ``(template, status, body)`` for a request; the most literal template wins."""
    matches = [(t, s, b) for m, rx, t, s, b in _COMPILED if m == method and rx.match(path)]
    if not matches:
        return None
    return max(matches, key=lambda m: len(re.sub(r"\{[^/]+\}", "", m[0])))


def problems(method: str, path: str, status: int, body: Any, headers: Mapping[str, str]) -> list[str]:
    """Every way one response departs from the spec (an empty list when it conforms).

    An error on a path the table does not know (an unknown collection) is held to the error shape only.
    """
    found = operation(method, path)
    label = f"{method} {path} -> {status}"
    if found is None and status < 400:
        return [f"{label}: no documented operation in the table"]
    template, success, shape = found or (path, 0, "")
    if status >= 400:
        issues = _check(body, SHAPES["error"], label)
        code = body.get("error", {}).get("code") if isinstance(body, Mapping) else None
        expected = _ERROR_STATUS_BY_OPERATION.get((method, template, code or "")) or (
            ERROR_STATUS.get(code or "") or _ERROR_STATUS_ELSEWHERE.get(code or "")
        )
        if expected is None:
            issues.append(f"{label}: error code {code!r} is not documented")
        elif expected != status and (code, status) not in _QUERY_ERRORS:
            issues.append(f"{label}: error code {code!r} is documented with status {expected}")
        return issues
    if status != success:
        return [f"{label}: the spec answers {success}"]
    if success == 204:
        return [] if body in (None, b"", "") else [f"{label}: 204 must have no body"]
    issues = _check(body, shape, label)
    if "meta:meta" in shape and 'rel="last"' not in headers.get("Link", ""):
        issues.append(f"{label}: paged list without a Link header")
    return issues
