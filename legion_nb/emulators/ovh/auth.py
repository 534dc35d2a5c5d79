"""Request signing as OVHcloud checks it: application key, consumer key, timestamp, signature.

A signed call carries ``X-Ovh-Application``, ``X-Ovh-Consumer``, ``X-Ovh-Timestamp`` and
``X-Ovh-Signature = "$1$" + sha1_hex(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TIMESTAMP)``. The URL is
the one the client used, so the emulator rebuilds it from what arrived: scheme, the ``Host`` header
(host and port as the client wrote them), and the raw path with its query, untouched by decoding. The
body is the exact text received. Any re-serialisation on either side breaks the signature, which is
the point: the sandbox must catch an adapter that signs something other than what it sends.

Only ``/auth/time`` is unsigned; everything else under ``/1.0`` must be signed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from legion_nb.emulators.ovh.errors import OvhFault

__all__ = ["MAX_CLOCK_SKEW_SECONDS", "Credentials", "expected_signature", "signature_middleware"]

MAX_CLOCK_SKEW_SECONDS = 180
"""How far a request's timestamp may be from the server clock (OVHcloud's window is a few minutes)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Credentials:
    """The application and consumer keys the emulator accepts.

    ``consumers`` maps a consumer key to whether it may write (``False``: read-only, GET only).
    """

    application_key: str
    application_secret: str = field(repr=False)
    consumers: dict[str, bool] = field(repr=False, default_factory=dict)


def expected_signature(secret: str, consumer: str, method: str, url: str, body: str, timestamp: str) -> str:  # noqa: PLR0917 - the six signed fields, in wire order
    digest = hashlib.sha1(  # noqa: S324 - SHA-1 is the wire protocol, not our choice
        "+".join((secret, consumer, method.upper(), url, body, timestamp)).encode("utf-8")
    )
    return "$1$" + digest.hexdigest()


def signature_middleware(
    credentials: Credentials, unsigned_paths: frozenset[str], now: Callable[[], float]
) -> Middleware:
    """Refuse every call that is not signed exactly as OVHcloud requires (see the module docstring).

    ``now`` is the server clock in unix seconds, the same one ``/auth/time`` reports.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in unsigned_paths:
            return await handler(request)
        await _verify(request, credentials, now())
        return await handler(request)

    return middleware


async def _verify(request: web.Request, credentials: Credentials, now: float) -> None:
    headers = request.headers
    if headers.get("X-Ovh-Application") != credentials.application_key:
        raise OvhFault(403, "Client::Forbidden", "Invalid application key", error_code="INVALID_KEY")
    consumer = headers.get("X-Ovh-Consumer")
    if not consumer:
        raise OvhFault(403, "Client::Forbidden", "You must login first", error_code="NOT_CREDENTIAL")
    can_write = credentials.consumers.get(consumer)
    if can_write is None:
        raise OvhFault(
            403, "Client::Forbidden", "This credential does not exist", error_code="INVALID_CREDENTIAL"
        )
    timestamp = headers.get("X-Ovh-Timestamp", "")
    if not timestamp.isdigit():
        raise OvhFault(400, "Client::BadRequest", "Invalid signature", error_code="INVALID_SIGNATURE")
    if abs(int(timestamp) - int(now)) > MAX_CLOCK_SKEW_SECONDS:
        raise OvhFault(400, "Client::BadRequest", "Query out of time", error_code="QUERY_TIME_OUT")
    body = (await request.read()).decode("utf-8", errors="surrogateescape")
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    expected = expected_signature(
        credentials.application_secret, consumer, request.method, url, body, timestamp
    )
    if not hmac.compare_digest(expected, headers.get("X-Ovh-Signature", "")):
        raise OvhFault(400, "Client::BadRequest", "Invalid signature", error_code="INVALID_SIGNATURE")
    if not can_write and request.method != "GET":
        raise OvhFault(
            403, "Client::Forbidden", "This call has not been granted", error_code="NOT_GRANTED_CALL"
        )
