"""Request plumbing shared by the emulated Scaleway APIs: bodies, query flags and the two paging styles.

Scaleway has two generations of list endpoints, and the official SDK relies on both:

* the Instance API pages with ``page`` (from 1) and ``per_page`` (at most 100, default 50) and puts the
  total in an ``X-Total-Count`` header (the SDK copies it into ``total_count``); a page past the end is
  an empty list, which is how the SDK's ``*_all`` helpers know to stop;
* the newer APIs (IAM, Domain, Marketplace) page with ``page`` and ``page_size`` and put
  ``total_count`` in the body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from aiohttp import web

from legion_nb.emulators.scaleway.errors import ScwApiError, invalid_argument, json_response

__all__ = ["flag", "instance_list", "page_of", "paged_list", "read_body", "require", "split_csv", "tag_list"]

T = TypeVar("T")

MAX_PAGE_SIZE = 100


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object a mutation carries; an empty body counts as ``{}`` (the SDK sends ``{}``)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ScwApiError(400, "invalid_request_error", f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ScwApiError(400, "invalid_request_error", "request body must be a JSON object")
    return body


def require(body: dict[str, Any], key: str, kind: type, help_message: str) -> Any:
    """``body[key]`` when present with the right JSON type, else the ``invalid_arguments`` answer."""
    value = body.get(key)
    if value is None or not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise invalid_argument(key, help_message, reason="required" if value is None else "constraint")
    return value


def tag_list(body: dict[str, Any], key: str = "tags") -> list[str]:
    """``body[key]`` as a list of strings (absent: empty), else the ``invalid_arguments`` answer."""
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_argument(key, f"{key} must be a list of strings")
    return list(value)


def flag(request: web.Request, key: str) -> bool | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    return raw.lower() in ("true", "1")


def split_csv(raw: str | None) -> list[str]:
    return [part for part in (raw or "").split(",") if part]


def _int_param(request: web.Request, key: str, default: int) -> int:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_argument(key, f"{key} must be a positive integer") from None
    if value < 1:
        raise invalid_argument(key, f"{key} must be a positive integer")
    return value


def page_of(request: web.Request, size_key: str, default_size: int, items: Sequence[T]) -> list[T]:
    page = _int_param(request, "page", 1)
    size = _int_param(request, size_key, default_size)
    if size > MAX_PAGE_SIZE:
        raise invalid_argument(size_key, f"{size_key} must be lower or equal to {MAX_PAGE_SIZE}")
    start = (page - 1) * size
    return list(items[start : start + size])


def instance_list(request: web.Request, key: str, items: Sequence[Any]) -> web.Response:
    """An Instance API list answer: one page of ``items`` under ``key``, total in ``X-Total-Count``."""
    page = page_of(request, "per_page", 50, items)
    return json_response({key: page}, headers={"X-Total-Count": str(len(items))})


def paged_list(request: web.Request, key: str, items: Sequence[Any], **extra: Any) -> web.Response:
    """A newer-API list answer: one page of ``items`` under ``key``, ``total_count`` and ``extra``
    keys in the body."""
    page = page_of(request, "page_size", 20, items)
    return json_response({"total_count": len(items), key: page, **extra})
