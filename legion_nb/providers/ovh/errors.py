"""OVHcloud's error bodies, read once, into the error tree.

OVHcloud answers ``{"class": "Client::NotFound", "message": ...}`` for API errors and
``{"errorCode": "INVALID_CREDENTIAL", "httpCode": "403 Forbidden", "message": ...}`` for
authentication errors; every answer carries ``X-OVH-QUERYID``, which ``ApiClient`` quotes in the error.
The status picks the error class (``http.error_for_status``) except where the body says more:

* every authentication ``errorCode`` is a :class:`ProviderAuthError`, including the **400**
  ``INVALID_SIGNATURE`` (wrong application secret) and ``QUERY_TIME_OUT`` (clock off), which the
  status alone would call invalid input;
* a ``...AlreadyExists`` class is a :class:`UniquenessConflictError` (the name is taken: after an
  ambiguous create it proves the first attempt landed);
* ``Client::TooManyRequests`` is a rate limit whatever its status.
"""

from __future__ import annotations

import httpx

from legion_nb.errors import ProviderAuthError, ProviderError, ProviderRateLimitedError
from legion_nb.providers.contract import UniquenessConflictError
from legion_nb.providers.http import ErrorDetail

__all__ = ["CLOCK_REFUSED", "REQUEST_ID_HEADER", "parse_error"]

REQUEST_ID_HEADER = "X-OVH-QUERYID"
CLOCK_REFUSED = "QUERY_TIME_OUT"

_AUTH_ADVICE: dict[str, str] = {
    "INVALID_KEY": "check the application key",
    "INVALID_CREDENTIAL": "check the consumer key, or create a new one and validate it",
    "NOT_CREDENTIAL": "the consumer key is missing; set the OVH credentials again",
    "INVALID_SIGNATURE": "check the application secret (it must belong to the application key)",
    "QUERY_TIME_OUT": "the request timestamp was refused; the clock is measured again on the next call",
    "NOT_GRANTED_CALL": "the consumer key does not grant this call; create one allowing GET/POST/PUT/DELETE",
    "FORBIDDEN": "the account may not use this call",
}


def parse_error(response: httpx.Response) -> ErrorDetail:
    """The code (``errorCode`` or ``class``), a one-line message with advice, and the implied class."""
    body = response.json()
    message = str(body.get("message") or "")
    error_code = body.get("errorCode")
    if isinstance(error_code, str) and error_code:
        advice = _AUTH_ADVICE.get(error_code, "check the OVH credentials")
        return ErrorDetail(f"{message}; {advice}" if message else advice, error_code, ProviderAuthError)
    error_class = str(body.get("class") or "") or None
    implied: type[ProviderError] | None = None
    if error_class and error_class.endswith("AlreadyExists"):
        implied = UniquenessConflictError
    elif error_class == "Client::TooManyRequests":
        implied = ProviderRateLimitedError
    return ErrorDetail(message, error_class, implied)
