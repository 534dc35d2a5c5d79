"""Hetzner's error body, read once, into the error tree.

Hetzner answers ``{"error": {"code", "message", "details"}}``. The HTTP status picks the error class
(see ``http.error_for_status``) except where the code says more than the status: 409
``uniqueness_error`` proves a name is taken (resilience relies on that), 403 ``maintenance`` is a
temporary outage rather than a credential problem, 401 ``token_readonly`` is a credential problem with
its own advice, and 422 ``invalid_input`` lists the offending fields, which the message names.
"""

from __future__ import annotations

import httpx

from legion_nb.errors import (
    ProviderAuthError,
    ProviderConflictError,
    ProviderError,
    ProviderInvalidInputError,
    ProviderUnavailableError,
)
from legion_nb.providers.contract import UniquenessConflictError
from legion_nb.providers.http import ErrorDetail

__all__ = ["REQUEST_ID_HEADER", "parse_error"]

REQUEST_ID_HEADER = "X-Correlation-Id"

_CODE_CLASSES: dict[str, type[ProviderError]] = {
    "uniqueness_error": UniquenessConflictError,
    "token_readonly": ProviderAuthError,
    "maintenance": ProviderUnavailableError,
    "resource_limit_exceeded": ProviderInvalidInputError,
    "resource_unavailable": ProviderInvalidInputError,
    "resource_in_use": ProviderConflictError,
    "service_error": ProviderUnavailableError,
    "protected": ProviderConflictError,
}

_ADVICE: dict[str, str] = {
    "unauthorized": "check the API token",
    "token_readonly": "the API token is read-only; create a read & write token",
    "resource_limit_exceeded": "raise the project limit or delete unused resources",
    "rate_limit_exceeded": "slow down and retry later",
}


def parse_error(response: httpx.Response) -> ErrorDetail:
    """The code, a one-line message (with invalid field names) and the class the code implies."""
    error = response.json()["error"]
    code = str(error.get("code") or "") or None
    message = str(error.get("message") or "")
    details = error.get("details") or {}
    fields = details.get("fields") if isinstance(details, dict) else None
    if isinstance(fields, list) and fields:
        parts = []
        for item in fields:
            messages = item.get("messages") or []
            parts.append(f"{item.get('name')}: {'; '.join(str(m) for m in messages)}".rstrip(": "))
        message = f"{message} ({', '.join(parts)})" if message else ", ".join(parts)
    advice = _ADVICE.get(code or "")
    if advice and advice not in message:
        message = f"{message}; {advice}" if message else advice
    return ErrorDetail(message=message, code=code, error_class=_CODE_CLASSES.get(code or ""))
