"""Scaleway's error body, read once, into the error tree.

Scaleway answers ``{"message", "type", ...}``; ``type`` says more than the status, so it picks the
class (the status only decides when the type is unknown, see ``http.error_for_status``):

====================== =====================================================================
type                   error
====================== =====================================================================
denied_authentication  ProviderAuthError (wrong, expired or unknown secret key)
permissions_denied     ProviderAuthError (the key's IAM policy lacks the permission)
invalid_arguments      ProviderInvalidInputError, naming each argument and its help text
quotas_exceeded        ProviderInvalidInputError, naming the quota and its use
out_of_stock           ProviderInvalidInputError (choose another type or zone)
not_found              ProviderNotFoundError, naming the resource
conflict               UniquenessConflictError when something "already exists", else
                       ProviderConflictError (e.g. a security group still in use)
transient_state        TransientStateError: temporary, retry once the resource settled
too_many_requests      ProviderRateLimitedError (by status 429)
====================== =====================================================================

The legacy ``{"message": "Validation Error", "fields": {...}}`` body is read as invalid input too.
"""

from __future__ import annotations

from typing import Any

import httpx

from legion_nb.errors import (
    ProviderAuthError,
    ProviderConflictError,
    ProviderError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
)
from legion_nb.providers.contract import UniquenessConflictError
from legion_nb.providers.http import ErrorDetail

__all__ = ["REQUEST_ID_HEADER", "TransientStateError", "parse_error"]

REQUEST_ID_HEADER = "x-request-id"


class TransientStateError(ProviderConflictError):
    """The resource is between two states (a server ``starting``): retry once it settled."""

    code = "provider_transient_state"
    temporary = True


_TYPE_CLASSES: dict[str, type[ProviderError]] = {
    "denied_authentication": ProviderAuthError,
    "authentication_error": ProviderAuthError,
    "permissions_denied": ProviderAuthError,
    "invalid_arguments": ProviderInvalidInputError,
    "quotas_exceeded": ProviderInvalidInputError,
    "out_of_stock": ProviderInvalidInputError,
    "not_found": ProviderNotFoundError,
    "transient_state": TransientStateError,
    "too_many_requests": ProviderRateLimitedError,
}

_ADVICE: dict[str, str] = {
    "denied_authentication": "check the secret key",
    "permissions_denied": "check the project_id and grant the API key's IAM policy this permission",
    "quotas_exceeded": "raise the quota or delete unused resources",
    "out_of_stock": "choose another server type or zone",
    "transient_state": "retry once the resource settled",
}


def _details(body: dict[str, Any], error_type: str) -> str:
    """The ``details``/``fields`` of the body as one short clause."""
    details = body.get("details")
    parts: list[str] = []
    if isinstance(details, list):
        for item in details:
            if not isinstance(item, dict):
                continue
            if error_type == "quotas_exceeded":
                parts.append(f"{item.get('resource')}: {item.get('current')} of {item.get('quota')} used")
            elif error_type == "permissions_denied":
                parts.append(f"{item.get('action')} on {item.get('resource')}")
            else:
                help_text = item.get("help_message") or item.get("reason") or ""
                parts.append(f"{item.get('argument_name')}: {help_text}".rstrip(": "))
    fields = body.get("fields")
    if isinstance(fields, dict):
        for name, messages in fields.items():
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            parts.append(f"{name}: {text}")
    if body.get("resource") and error_type in ("not_found", "conflict", "transient_state"):
        state = f" is {body['current_state']}" if body.get("current_state") else ""
        parts.append(f"{body['resource']} {body.get('resource_id') or ''}".strip() + state)
    elif error_type == "denied_authentication" and body.get("method"):
        parts.append(f"{body.get('method')}: {body.get('reason')}")
    return ", ".join(parts)


def parse_error(response: httpx.Response) -> ErrorDetail:
    """The type, a one-line message (with details and advice) and the class the type implies."""
    body = response.json()
    error_type = str(body.get("type") or "") or None
    message = str(body.get("message") or "")
    if message == "Validation Error" and error_type is None:
        error_type = "invalid_arguments"
    clause = _details(body, error_type or "")
    if clause:
        message = f"{message} ({clause})" if message else clause
    advice = _ADVICE.get(error_type or "")
    if advice:
        message = f"{message}; {advice}" if message else advice
    error_class = _TYPE_CLASSES.get(error_type or "")
    if error_type == "conflict":
        error_class = UniquenessConflictError if "already exist" in message else ProviderConflictError
    return ErrorDetail(message=message, code=error_type, error_class=error_class)
