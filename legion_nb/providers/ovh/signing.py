"""OVHcloud request signing, byte for byte as the official clients sign.

``X-Ovh-Signature = "$1$" + sha1_hex(AS + "+" + CK + "+" + METHOD + "+" + URL + "+" + BODY + "+" + TS)``
where URL is the full URL that goes on the wire (scheme, host, ``/1.0``, path, query) and BODY the exact
bytes sent. :class:`Signer` signs the final ``httpx.Request`` (after httpx has encoded the URL and the
body), so what is hashed is what is sent; nothing is re-serialised in between.

The timestamp is the *server's* clock: OVHcloud refuses a signature whose timestamp is a few minutes
off. The signer reads ``GET /auth/time`` (unsigned) once, keeps ``server - local`` as its delta, and
applies it to every call; :meth:`Signer.forget_clock` drops the delta after the server refused a
timestamp, so the next call measures it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

import httpx

__all__ = ["AUTH_TIME_PATH", "Signer", "signature"]

AUTH_TIME_PATH = "/auth/time"


def signature(secret: str, consumer_key: str, method: str, url: str, body: bytes, timestamp: int) -> str:  # noqa: PLR0917 - the six signed fields, in wire order
    """The ``X-Ovh-Signature`` value for one request."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"{secret}+{consumer_key}+{method.upper()}+{url}+".encode())
    digest.update(body)
    digest.update(f"+{timestamp}".encode())
    return "$1$" + digest.hexdigest()


class Signer:
    """Adds OVHcloud's authentication headers to each request (an ``ApiClient`` ``prepare`` hook).

    ``server_time`` fetches ``/auth/time``; it is called at most once until :meth:`forget_clock`,
    however many requests start concurrently. ``clock`` is the local clock (a fake in tests).
    """

    def __init__(
        self,
        application_key: str,
        application_secret: str,
        consumer_key: str,
        server_time: Callable[[], Awaitable[int]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._application_key = application_key
        self._secret = application_secret
        self._consumer_key = consumer_key
        self._server_time = server_time
        self._clock = clock
        self._delta: int | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Signer(application_key={self._application_key!r}, secrets=<redacted>, delta={self._delta})"

    @property
    def clock_delta(self) -> int | None:
        """Seconds the server's clock is ahead of ours (None until measured)."""
        return self._delta

    def forget_clock(self) -> None:
        self._delta = None

    async def _ensure_delta(self) -> int:
        async with self._lock:
            if self._delta is None:
                server = await self._server_time()
                self._delta = server - int(self._clock())
            return self._delta

    async def __call__(self, request: httpx.Request) -> None:
        request.headers["X-Ovh-Application"] = self._application_key
        if request.url.path.endswith(AUTH_TIME_PATH):
            return  # the clock probe is unsigned (and signing it would need the clock)
        timestamp = int(self._clock()) + await self._ensure_delta()
        request.headers["X-Ovh-Consumer"] = self._consumer_key
        request.headers["X-Ovh-Timestamp"] = str(timestamp)
        request.headers["X-Ovh-Signature"] = signature(
            self._secret, self._consumer_key, request.method, str(request.url), request.content, timestamp
        )
