"""Scaleway's error bodies, as the real API renders them, and the ``x-request-id`` on every answer.

Scaleway answers every error with a JSON object holding at least ``message`` and ``type``; the other
keys depend on the type (the shapes below are the ones the official SDKs decode):

=====================  ======  ==========================================================================
type                   status  extra keys
=====================  ======  ==========================================================================
denied_authentication  401     ``method`` (api_key, jwt, unknown_method), ``reason`` (invalid_argument,
                               not_found, expired)
invalid_arguments      400     ``details`` [{argument_name, reason, help_message}]
invalid_request_error  400     none (a request that makes no sense in the resource's current state)
permissions_denied     403     ``details`` [{resource, action}]
quotas_exceeded        403     ``details`` [{resource, quota, current}]
not_found              404     ``resource``, ``resource_id``
conflict               409     ``resource``, ``resource_id``
transient_state        409     ``resource``, ``resource_id``, ``current_state`` (retry later)
out_of_stock           409     ``resource`` (the commercial type)
too_many_requests      429     none
internal_error         5xx     none
=====================  ======  ==========================================================================

Handlers raise :class:`ScwApiError`; the error middleware renders it. The official Python SDK raises
``ScalewayException`` for every one of these (its ``ValidationError`` only for the legacy
``{"message": "Validation Error", "fields": ...}`` body, which the current API no longer sends).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = [
    "REQUEST_ID_HEADER",
    "ScwApiError",
    "error_middleware",
    "fault_body",
    "invalid_argument",
    "json_response",
    "not_found",
    "transient_state",
]

REQUEST_ID_HEADER = "x-request-id"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ScwApiError(Exception):
    """Raised by a handler to answer with a Scaleway error body (it never leaves the emulator)."""

    def __init__(self, status: int, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.error_type, **self.extra}


def invalid_argument(argument: str, help_message: str, reason: str = "constraint") -> ScwApiError:
    """One bad request field, the way ``invalid_arguments`` names it."""
    return ScwApiError(
        400,
        "invalid_arguments",
        "invalid argument(s)",
        details=[{"argument_name": argument, "reason": reason, "help_message": help_message}],
    )


def not_found(resource: str, resource_id: str) -> ScwApiError:
    return ScwApiError(404, "not_found", "resource is not found", resource=resource, resource_id=resource_id)


def transient_state(resource: str, resource_id: str, current_state: str) -> ScwApiError:
    return ScwApiError(
        409,
        "transient_state",
        "resource is in a transient state",
        resource=resource,
        resource_id=resource_id,
        current_state=current_state,
    )


def new_request_id() -> str:
    return str(uuid.uuid4())


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers or {}
    )


def fault_body(status: int, kind: str) -> web.Response:
    """The body an injected fault answers with (passed to the shared fault middleware)."""
    if status == 429:
        body: dict[str, Any] = {"message": "too many requests, slow down", "type": "too_many_requests"}
    else:
        body = {"message": "internal error, please retry later", "type": "internal_error"}
    return json_response(body, status=status, headers={REQUEST_ID_HEADER: new_request_id()})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every answer an ``x-request-id`` and render :class:`ScwApiError` and aiohttp's own errors
    (unknown route, wrong method) as Scaleway bodies."""
    request_id = new_request_id()
    try:
        response = await handler(request)
    except ScwApiError as err:
        response = json_response(err.body(), status=err.status)
    except web.HTTPException as exc:
        # aiohttp's own 404/405: Scaleway answers an unknown route with a plain not_found body.
        if exc.status >= 400:
            error_type = "not_found" if exc.status == 404 else "invalid_request_error"
            response = json_response({"message": exc.reason, "type": error_type}, status=exc.status)
        else:
            raise
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
