"""Hetzner Cloud wire conventions shared by every resource handler.

* Errors: ``{"error": {"code", "message", "details"}}`` with the status codes the real API uses;
  handlers raise :class:`ApiError` and the error middleware renders it.
* Paging: ``page`` (from 1) and ``per_page`` (default 25, capped at 50), answered with
  ``meta.pagination`` {page, per_page, previous_page, next_page, last_page, total_entries} and a
  ``Link`` header (``rel="prev"``, ``"next"``, ``"last"``, each only when it exists) whose URLs keep
  the request's other query parameters, so header-driven clients page the same way.
* Sorting: ``sort=field`` or ``field:asc|desc`` (repeatable).
* Bodies: JSON objects only; anything else is ``400 json_error``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aiohttp import web

__all__ = [
    "ApiError",
    "Json",
    "ResourceApi",
    "by_id",
    "error_response",
    "filter_equal",
    "invalid_input",
    "must_be_unassigned",
    "not_found",
    "optional_str",
    "page_of",
    "read_body",
    "resource_routes",
    "sort_items",
]

Json = dict[str, Any]
T = TypeVar("T")

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 50


class ApiError(Exception):
    """An error the emulator answers with, in Hetzner's shape."""

    def __init__(self, status: int, code: str, message: str, details: Json | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}


def error_response(status: int, code: str, message: str, details: Json | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details if details is not None else {}}}
    return web.json_response(body, status=status)


def not_found(kind: str, key: object) -> ApiError:
    return ApiError(404, "not_found", f"{kind} with ID {key} not found")


def must_be_unassigned(kind: str, resource_id: int, server_id: int) -> ApiError:
    """422 for deleting an address still assigned to a server (the real rule since May 2026)."""
    return ApiError(
        422,
        "must_be_unassigned",
        f"{kind} {resource_id} is assigned to server {server_id}; unassign it first",
    )


def invalid_input(field: str, message: str) -> ApiError:
    """422 invalid_input naming the offending field, as ``details.fields`` does on the real API."""
    return ApiError(
        422,
        "invalid_input",
        f"invalid input in field '{field}'",
        {"fields": [{"name": field, "messages": [message]}]},
    )


async def read_body(request: web.Request) -> Json:
    """The request's JSON object; an empty body counts as ``{}`` (action endpoints allow that)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "json_error", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "json_error", "request body must be a JSON object")
    return body


def optional_str(body: Json, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_input(key, "must be a string")
    return value


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_input", f"query parameter '{name}' must be an integer") from None
    if value < 1:
        raise ApiError(400, "invalid_input", f"query parameter '{name}' must be at least 1")
    return value


def page_of(request: web.Request, items: Sequence[Json], key: str) -> web.Response:
    """Render one page of ``items`` under ``key`` with ``meta.pagination``."""
    page = _int_param(request, "page", 1)
    per_page = min(_int_param(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    total = len(items)
    last_page = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last_page else None,
        "last_page": last_page,
        "total_entries": total,
    }
    response = web.json_response(
        {key: list(items[start : start + per_page]), "meta": {"pagination": pagination}}
    )
    links = [("prev", pagination["previous_page"]), ("next", pagination["next_page"]), ("last", last_page)]
    response.headers["Link"] = ", ".join(
        f'<{request.url.update_query(page=str(number), per_page=str(per_page))}>; rel="{rel}"'
        for rel, number in links
        if number is not None
    )
    return response


def sort_items(request: web.Request, items: Iterable[Json], allowed: Iterable[str]) -> list[Json]:
    """Apply ``sort`` query parameters (last one least significant, like a stable multi-key sort)."""
    result = list(items)
    fields = set(allowed)
    for spec in reversed(request.query.getall("sort", [])):
        name, _, direction = spec.partition(":")
        if name not in fields or direction not in ("", "asc", "desc"):
            raise ApiError(400, "invalid_input", f"cannot sort by '{spec}'; use one of {sorted(fields)}")

        def key(item: Json, field: str = name) -> tuple[bool, Any]:
            return (item.get(field) is None, item.get(field))

        result.sort(key=key, reverse=direction == "desc")
    return result


class ResourceApi(Protocol):
    """The handlers a plain Hetzner resource collection offers (actions are optional)."""

    async def index(self, request: web.Request) -> web.Response: ...
    async def create(self, request: web.Request) -> web.Response: ...
    async def get(self, request: web.Request) -> web.Response: ...
    async def update(self, request: web.Request) -> web.Response: ...
    async def delete(self, request: web.Request) -> web.Response: ...


def resource_routes(prefix: str, plural: str, api: ResourceApi) -> list[web.RouteDef]:
    """The routes every collection has: list, create, get, update, delete, and ``actions/{action}``."""
    base = f"{prefix}/{plural}"
    routes = [
        web.get(base, api.index),
        web.post(base, api.create),
        web.get(f"{base}/{{id}}", api.get),
        web.put(f"{base}/{{id}}", api.update),
        web.delete(f"{base}/{{id}}", api.delete),
    ]
    action = getattr(api, "action", None)
    if action is not None:
        routes.append(web.post(f"{base}/{{id}}/actions/{{action}}", action))
    return routes


def by_id(store: Mapping[int, T], raw_id: str, kind: str) -> T:
    """``store[int(raw_id)]`` or ``404 not_found`` (ids on the wire are decimal integers)."""
    item = store.get(int(raw_id)) if raw_id.isdigit() else None
    if item is None:
        raise not_found(kind, raw_id)
    return item


def filter_equal(request: web.Request, items: list[Json], *fields: str) -> list[Json]:
    """Keep items whose ``field`` equals the query parameter of the same name, for each given field."""
    for field in fields:
        wanted = request.query.get(field)
        if wanted is not None:
            items = [i for i in items if i.get(field) == wanted]
    return items
