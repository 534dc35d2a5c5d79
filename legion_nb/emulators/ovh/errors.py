"""OVHcloud's error bodies and the ``X-OVH-QUERYID`` header, as the real API renders them.

OVHcloud answers errors in two shapes, and the official SDKs branch on them:

* API errors: ``{"class": "Client::NotFound", "message": "..."}`` with the HTTP status the class
  names (python-ovh maps 400, 404, 409 and 460 to its own exception classes, the rest to ``APIError``).
* Authentication errors: ``{"errorCode": "INVALID_CREDENTIAL", "httpCode": "403 Forbidden",
  "message": "..."}``. python-ovh maps the 403 codes ``INVALID_KEY``, ``INVALID_CREDENTIAL``,
  ``NOT_CREDENTIAL``, ``NOT_GRANTED_CALL`` and ``FORBIDDEN`` to dedicated exceptions. A wrong
  signature is answered with **400** ``INVALID_SIGNATURE`` (so the SDK raises ``BadParametersError``),
  and a timestamp too far from the server's clock with 400 ``QUERY_TIME_OUT``; both are what the real
  API returns, as quoted in the SDKs' issue trackers.

Every response, success or error, carries an ``X-OVH-QUERYID`` that support can trace.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = [
    "QUERY_ID_HEADER",
    "OvhFault",
    "QueryIds",
    "auth_error",
    "error_middleware",
    "fault_body",
    "json_response",
]

QUERY_ID_HEADER = "X-OVH-QUERYID"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OvhFault(Exception):
    """Raised by a handler to answer with an OVHcloud error body (never leaves the emulator)."""

    def __init__(self, status: int, error_class: str, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_class = error_class
        self.message = message
        self.error_code = error_code

    def response(self) -> web.Response:
        if self.error_code is not None:
            return auth_error(self.status, self.error_code, self.message)
        return json_response({"class": self.error_class, "message": self.message}, status=self.status)


def json_response(body: Any, *, status: int = 200) -> web.Response:
    """OVHcloud's JSON rendering: compact, UTF-8, ``null`` for calls that return nothing."""
    return web.Response(
        status=status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        charset="utf-8",
    )


def auth_error(status: int, error_code: str, message: str) -> web.Response:
    phrase = HTTPStatus(status).phrase
    return json_response(
        {"errorCode": error_code, "httpCode": f"{status} {phrase}", "message": message}, status=status
    )


def fault_body(status: int, kind: str) -> web.Response:
    """The error body :func:`legion_nb.emulators.faults.fault_middleware` answers injected faults with."""
    if status == 429:
        return json_response(
            {"class": "Client::TooManyRequests", "message": "Too many requests, please retry later"},
            status=429,
        )
    classes = {
        500: "Server::InternalServerError",
        502: "Server::BadGateway",
        503: "Server::ServiceUnavailable",
    }
    message = "Internal server error" if kind == "server_error" else "Service unavailable"
    return json_response(
        {"class": classes.get(status, "Server::InternalServerError"), "message": message}, status=status
    )


class QueryIds:
    """Query ids shaped like OVHcloud's (``EU.ext-1.<hex time>.<counter>.<random>``)."""

    def __init__(self, random_token: Callable[[], str]) -> None:
        self._counter = itertools.count(1)
        self._random_token = random_token

    def next(self) -> str:
        return f"EU.ext-1.{int(time.time()):x}.{next(self._counter)}.{self._random_token()}"


def error_middleware(query_ids: QueryIds) -> Middleware:
    """Render :class:`OvhFault` and aiohttp's own 404/405 as OVHcloud does, and stamp a query id."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except OvhFault as fault:
            response = fault.response()
        except web.HTTPNotFound:
            response = json_response(
                {"class": "Client::NotFound", "message": "Got an invalid (or empty) URL"}, status=404
            )
        except web.HTTPMethodNotAllowed:
            response = json_response(
                {"class": "Client::MethodNotAllowed", "message": "Method not allowed on this path"},
                status=405,
            )
        response.headers[QUERY_ID_HEADER] = query_ids.next()
        return response

    return middleware
