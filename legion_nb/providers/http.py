"""Shared httpx plumbing for the provider adapters: one request path, one error mapping.

Every adapter sends its requests through :class:`ApiClient`, which is the only place where httpx
exceptions and HTTP error statuses become :mod:`legion_nb.errors` types. The adapter supplies what
differs per provider:

* ``parse_error(response) -> ErrorDetail``: reads the provider's error body (Hetzner
  ``{"error": {"code", "message"}}``, Scaleway ``{"type", "message"}``, OVH ``{"class", "message"}``)
  and may force an error class where the status alone is not enough (Hetzner 403
  ``resource_limit_exceeded`` is a refusal of the request, not of the credentials);
* ``request_id_header``: quoted in every error so the operator can give it to the provider's support;
* ``prepare(request)``: an optional async hook that sees the final request (URL with query, exact
  body bytes) before it is sent, for authentication that signs the request (OVH).

Mutations (anything but GET/HEAD, unless the caller says otherwise) are sent once and never retried
here. When a mutation may have reached the provider but no answer came back (read timeout, dropped
connection, 5xx) the error is :class:`OutcomeUnknownError`: ``resilience.py`` settles it by re-reading
the provider. A failure before the request left (connection refused, connect timeout) is a plain
:class:`ProviderUnavailableError`, because nothing can have landed.
"""

from __future__ import annotations

import json as jsonlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from legion_nb.errors import (
    ProviderAuthError,
    ProviderConflictError,
    ProviderError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from legion_nb.providers.records import RateLimitInfo

__all__ = [
    "READ_RETRY",
    "ApiClient",
    "ErrorDetail",
    "ErrorParser",
    "OutcomeUnknownError",
    "Params",
    "ProviderResponseError",
    "ReadRetry",
    "error_for_status",
    "error_for_transport",
    "json_object",
    "parse_retry_after",
    "rate_limit_from_headers",
    "unsendable_request",
]

Params = Mapping[str, str | int | Sequence[str | int]] | None
"""Query parameters; a sequence value repeats the key (``id=1&id=2``)."""

READ_METHODS = frozenset({"GET", "HEAD"})

# RFC 9110 field values as h11 enforces them: visible ASCII, inner spaces and tabs, none at the ends.
_HEADER_VALUE = re.compile(rb"(?:[!-~](?:[ \t!-~]*[!-~])?)?")


@dataclass(frozen=True)
class ReadRetry:
    """How :class:`ApiClient` repeats one failed read request (5xx, unreachable, 429).

    Set for the duration of a call through :data:`READ_RETRY` by whoever owns the retry policy (the
    broker, around each adapter call), so adapters need no retry code and tests inject zero delays.
    ``delay(attempt, retry_after_hint)`` returns seconds to wait before the next attempt.
    """

    attempts: int
    delay: Callable[[int, float | None], float]
    sleep: Callable[[float], Awaitable[None]]


READ_RETRY: ContextVar[ReadRetry | None] = ContextVar("legion_read_retry", default=None)
"""The read-retry policy of the current call; None (the default) means every read is tried once."""


class OutcomeUnknownError(ProviderUnavailableError):
    """A mutation was sent and may have landed, but no answer came back.

    Internal to the provider layer: :mod:`legion_nb.providers.resilience` settles it by re-reading the
    provider and either returns the resource it finds or raises ``ProviderAmbiguousError``.
    """

    code = "provider_outcome_unknown"


class ProviderResponseError(ProviderError):
    """The provider answered with a body we cannot read (not JSON, or not the expected shape)."""

    code = "provider_bad_response"


@dataclass(frozen=True)
class ErrorDetail:
    """What an adapter's error-body parser extracted from a failed response."""

    message: str
    code: str | None = None
    error_class: type[ProviderError] | None = None


ErrorParser = Callable[[httpx.Response], ErrorDetail]
RequestHook = Callable[[httpx.Request], Awaitable[None]]


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or HTTP date) or ``RateLimit-Reset`` (unix time)."""
    now = time.time() if now is None else now
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(raw).timestamp() - now)
            except (TypeError, ValueError):  # an unreadable date: fall through to the reset header
                pass
    reset = headers.get("ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:  # not a number: the provider gave no usable hint
            return None
    return None


def rate_limit_from_headers(headers: httpx.Headers) -> RateLimitInfo | None:
    """The ``RateLimit-Limit/Remaining/Reset`` budget, or None when the response carries none."""

    def number(name: str) -> float | None:
        raw = headers.get(name)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:  # a malformed header is as good as an absent one
            return None

    limit, remaining, reset = (number(f"ratelimit-{n}") for n in ("limit", "remaining", "reset"))
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitInfo(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset=reset,
    )


_STATUS_CLASSES: dict[int, type[ProviderError]] = {
    400: ProviderInvalidInputError,
    401: ProviderAuthError,
    403: ProviderAuthError,
    404: ProviderNotFoundError,
    409: ProviderConflictError,
    412: ProviderInvalidInputError,
    422: ProviderInvalidInputError,
    423: ProviderConflictError,
}


def error_for_status(
    provider: str,
    response: httpx.Response,
    detail: ErrorDetail,
    *,
    request_id: str | None,
    mutation: bool,
) -> ProviderError:
    """The error-tree exception for a non-2xx response (status -> class, unless the parser chose)."""
    status = response.status_code
    common: dict[str, Any] = {"provider_code": detail.code, "request_id": request_id, "status": status}
    if status == 429 or detail.error_class is ProviderRateLimitedError:
        return ProviderRateLimitedError(
            provider,
            detail.message or "rate limit exceeded; retry later",
            retry_after=parse_retry_after(response.headers),
            **common,
        )
    if (
        status >= 500
        and mutation
        and (detail.error_class is None or issubclass(detail.error_class, ProviderUnavailableError))
    ):
        # Whatever the body says, a 5xx to a sent change does not prove the change did not land.
        return OutcomeUnknownError(
            provider, detail.message or f"server error {status}; outcome unknown", **common
        )
    if detail.error_class is not None:
        return detail.error_class(provider, detail.message, **common)
    if status >= 500:
        cls: type[ProviderError] = OutcomeUnknownError if mutation else ProviderUnavailableError
        return cls(provider, detail.message or f"server error {status}; retry later", **common)
    return _STATUS_CLASSES.get(status, ProviderError)(provider, detail.message, **common)


def error_for_transport(provider: str, exc: httpx.HTTPError, *, mutation: bool) -> ProviderError:
    """The error-tree exception for an httpx failure; ``OutcomeUnknownError`` when a mutation may
    have reached the provider."""
    where = _where(exc)
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
        # Nothing left this machine: the request cannot have landed.
        return ProviderUnavailableError(provider, f"cannot reach {where}: {_reason(exc)}; check the endpoint")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ProviderError(provider, f"endpoint URL {where} is not usable: {_reason(exc)}")
    if isinstance(exc, httpx.TransportError):
        if mutation:
            return OutcomeUnknownError(
                provider, f"no answer from {where} after sending a change ({_reason(exc)}); outcome unknown"
            )
        return ProviderUnavailableError(provider, f"no answer from {where}: {_reason(exc)}; retry later")
    return ProviderError(provider, f"request to {where} failed: {_reason(exc)}")


def unsendable_request(provider: str) -> ProviderAuthError:
    """The error for a request the HTTP stack refused to build or send: a header value it cannot carry.

    Headers hold credentials, so the foreign message (which quotes the offending header value in
    full) is never repeated; the request never left this machine, so retrying cannot help.
    """
    return ProviderAuthError(
        provider,
        "a credential holds a character that HTTP headers cannot carry, so nothing was sent: "
        f"run `legion credentials set {provider}` with the values exactly as the provider shows them",
    )


def _where(exc: httpx.HTTPError) -> str:
    try:
        url = exc.request.url
    except RuntimeError:  # the exception was raised before a request existed
        return "the endpoint"
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def json_object(provider: str, payload: Any, what: str) -> dict[str, Any]:
    """``payload`` as a JSON object, or a ``ProviderResponseError`` naming what was expected."""
    if not isinstance(payload, dict):
        raise ProviderResponseError(
            provider, f"expected a JSON object for {what}, got {type(payload).__name__}"
        )
    return payload


class ApiClient:
    """One provider's HTTP path: auth headers, the request hook, error mapping, rate-limit headers.

    It does not own the ``httpx.AsyncClient`` (the caller does, so that tests can hand in a
    ``MockTransport``); it never retries (the broker retries reads, resilience settles mutations).
    """

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        parse_error: ErrorParser,
        request_id_header: str,
        headers: Mapping[str, str] | None = None,
        prepare: RequestHook | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._parse_error = parse_error
        self._request_id_header = request_id_header
        self._headers = dict(headers or {})
        self._prepare = prepare
        self.rate_limit: RateLimitInfo | None = None
        self.last_request_id: str | None = None

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        text: str | None = None,
        mutation: bool | None = None,
    ) -> httpx.Response:
        """Send one request and return the 2xx response; every failure is a ``ProviderError``.

        The body is ``json`` or, for the few calls that take plain text (Scaleway user data),
        ``text``. ``mutation`` defaults to "not GET/HEAD"; pass it explicitly for a POST that only reads.
        """
        method = method.upper()
        is_mutation = method not in READ_METHODS if mutation is None else mutation
        retry = None if is_mutation else READ_RETRY.get()
        attempt = 0
        while True:
            try:
                return await self._send_once(
                    method, path, params=params, json=json, text=text, is_mutation=is_mutation
                )
            except (ProviderUnavailableError, ProviderRateLimitedError) as exc:
                # A read is safe to repeat; retrying one request here (inside the caller's lane)
                # keeps a many-request read (pages, N+1 lists) from failing as a whole.
                if retry is None or attempt + 1 >= retry.attempts:
                    raise
                hint = exc.retry_after if isinstance(exc, ProviderRateLimitedError) else None
                await retry.sleep(retry.delay(attempt, hint))
                attempt += 1

    async def _send_once(
        self, method: str, path: str, *, params: Params, json: Any, text: str | None, is_mutation: bool
    ) -> httpx.Response:
        headers = dict(self._headers)
        content: bytes | None = None
        if json is not None:
            # Compact and byte-stable: a signing hook hashes exactly these bytes.
            content = jsonlib.dumps(json, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        elif text is not None:
            content = text.encode()
            headers["Content-Type"] = "text/plain"
        try:
            request = self._client.build_request(
                method, self.url(path), params=params, content=content, headers=headers
            )
            if self._prepare is not None:
                await self._prepare(request)
            if not all(_HEADER_VALUE.fullmatch(value) for _, value in request.headers.raw):
                raise unsendable_request(self.provider)  # whatever the transport, nothing goes out
            response = await self._client.send(request)
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            # ``from None``: the foreign message quotes the header value, and a traceback shows causes.
            raise unsendable_request(self.provider) from None
        except httpx.HTTPError as exc:
            raise error_for_transport(self.provider, exc, mutation=is_mutation) from exc
        try:
            await response.aread()
        except httpx.HTTPError as exc:
            raise error_for_transport(self.provider, exc, mutation=is_mutation) from exc
        finally:
            await response.aclose()
        self.last_request_id = response.headers.get(self._request_id_header)
        limits = rate_limit_from_headers(response.headers)
        if limits is not None:
            self.rate_limit = limits
        if response.is_success:
            return response
        raise error_for_status(
            self.provider,
            response,
            self._safe_parse(response),
            request_id=self.last_request_id,
            mutation=is_mutation,
        )

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        mutation: bool | None = None,
    ) -> Any:
        """Like :meth:`request`, returning the decoded body (None for an empty body)."""
        response = await self.request(method, path, params=params, json=json, mutation=mutation)
        return self.decode(response)

    async def get_object(self, path: str, params: Params = None) -> dict[str, Any]:
        """A read whose answer must be a JSON object (``ProviderResponseError`` otherwise)."""
        return json_object(self.provider, await self.request_json("GET", path, params=params), path)

    async def send_object(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A mutation whose answer is a JSON object, or nothing at all (then ``{}``)."""
        payload = await self.request_json(method, path, json=body)
        return json_object(self.provider, payload, path) if payload is not None else {}

    def decode(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderResponseError(
                self.provider,
                f"{response.request.method} {response.request.url.path} returned a body that is not JSON",
                request_id=response.headers.get(self._request_id_header),
                status=response.status_code,
            ) from exc

    def _safe_parse(self, response: httpx.Response) -> ErrorDetail:
        """The adapter's parser, falling back to the status line when the body is unreadable."""
        fallback = ErrorDetail(message=f"HTTP {response.status_code} {response.reason_phrase}".strip())
        try:
            detail = self._parse_error(response)
        except (ValueError, KeyError, TypeError, AttributeError):  # the body is not the documented shape
            return fallback
        return detail if detail.message else ErrorDetail(fallback.message, detail.code, detail.error_class)
