"""A satellite's Sender API over HTTPS with mutual TLS: its health, and its stream sessions.

Why here: like the node admin API, the satellite is an outside service Legion talks HTTP to, and
httpx stays at this edge. A satellite is externally reachable and starts and stops byte streams on
request, so it is protected like a node admin API: it presents a certificate from its cluster's CA
(naming its address), and answers only a client presenting Legion's operator certificate from that
CA. The caller hands in the ``ssl.SSLContext`` (``ClusterSecurity.operator_ssl_context``):

``GET /health``; ``GET /v1/streams/{name}`` (``{name, endpoint, state, bytes, error}``, 404 when
the satellite runs no such session); ``POST /v1/streams`` with ``{name, endpoint}``;
``DELETE /v1/streams/{name}``. Failures become :class:`SatelliteError` (the satellite did not
answer: retry) or :class:`SatelliteTrustError` (the TLS handshake failed, or the satellite refused
the client: retrying cannot help), each with one actionable line.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from legion_nb.errors import NodeError
from legion_nb.providers.mtls_failure import classify_mtls_failure

__all__ = ["SatelliteClient", "SatelliteError", "SatelliteTrustError", "satellite_url"]

_REFUSED = (401, 403)


class SatelliteError(NodeError):
    """The satellite's Sender API did not answer, or not as its contract says."""

    code = "satellite"
    temporary = True


class SatelliteTrustError(SatelliteError):
    """The mTLS handshake with the satellite failed, or the satellite refused Legion's certificate."""

    code = "satellite_trust"
    temporary = False


def satellite_url(host: str, port: int) -> str:
    """``https://host:port`` with an IPv6 literal bracketed."""
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


class SatelliteClient:
    """One satellite's Sender API over mTLS; :meth:`aclose` owns the connection pool."""

    def __init__(
        self, node: str, base_url: str, ssl_context: ssl.SSLContext, *, timeout: float = 2.0
    ) -> None:
        self.node = node
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, verify=ssl_context, timeout=timeout)

    def __repr__(self) -> str:
        return f"SatelliteClient({self.node!r}, {self.base_url!r})"

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def session(self, name: str) -> dict[str, Any] | None:
        """The session ``name`` as the satellite reports it; None when it runs no such session."""
        body = await self._call("GET", f"/v1/streams/{name}", accept=(200, 404))
        return None if "error" in body and "state" not in body else body

    async def start(self, name: str, endpoint: str) -> dict[str, Any]:
        body = {"name": name, "endpoint": endpoint}
        return await self._call("POST", "/v1/streams", json=body, accept=(201,))

    async def stop(self, name: str) -> None:
        await self._call("DELETE", f"/v1/streams/{name}")

    async def _call(
        self, method: str, path: str, *, json: dict[str, str] | None = None, accept: tuple[int, ...] = (200,)
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            failure = classify_mtls_failure(exc)
            if failure == "handshake":
                raise SatelliteTrustError(
                    f"satellite {self.node}'s Sender API failed the mTLS handshake at {self.base_url}: "
                    "it must present a certificate from its cluster's CA and accept Legion's operator "
                    f"certificate; run `legion server reinstall {self.node}` to set it up again"
                ) from exc
            if failure == "refused":
                raise SatelliteTrustError(
                    f"satellite {self.node} reset the TLS connection at {self.base_url} before answering: "
                    "it refuses Legion's client certificate (unless it was restarting just then); run "
                    f"`legion server reinstall {self.node}` to set it up again"
                ) from exc
            raise SatelliteError(
                f"satellite {self.node} does not answer at {self.base_url} ({type(exc).__name__}); is it up?"
            ) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise SatelliteError(f"satellite {self.node} sent {path} as non-JSON") from exc
        if response.status_code in _REFUSED:
            raise SatelliteTrustError(
                f"satellite {self.node} refused Legion's client certificate on {method} {path} "
                f"(HTTP {response.status_code}); it answers only its cluster's operator certificate"
            )
        if response.status_code not in accept:
            detail = body.get("error") if isinstance(body, dict) else None
            raise SatelliteError(
                f"satellite {self.node} answered {method} {path} with HTTP {response.status_code}"
                + (f": {detail}" if detail else "")
            )
        if isinstance(body, list):
            return {"items": body}
        if not isinstance(body, dict):
            raise SatelliteError(f"satellite {self.node} sent {path} as neither object nor list")
        return body

    async def aclose(self) -> None:
        await self._client.aclose()
