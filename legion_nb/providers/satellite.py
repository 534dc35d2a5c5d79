"""A satellite's Sender API over plain HTTP: its health, and its stream sessions.

Why here: like the node admin API, the satellite is an outside service Legion talks HTTP to, and
httpx stays at this edge. Satellites are the simpler nodes - externally reachable, no cluster CA -
so their health is an HTTP probe and their sessions are driven over the same port:

``GET /health``; ``GET /v1/streams/{name}`` (``{name, endpoint, state, bytes, error}``, 404 when
the satellite runs no such session); ``POST /v1/streams`` with ``{name, endpoint}``;
``DELETE /v1/streams/{name}``. Failures become :class:`SatelliteError` with one actionable line.
"""

from __future__ import annotations

from typing import Any

import httpx

from legion_nb.errors import NodeError

__all__ = ["SatelliteClient", "SatelliteError", "satellite_url"]


class SatelliteError(NodeError):
    """The satellite's Sender API did not answer, or not as its contract says."""

    code = "satellite"
    temporary = True


def satellite_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class SatelliteClient:
    """One satellite's Sender API; :meth:`aclose` owns the connection pool."""

    def __init__(self, node: str, base_url: str, *, timeout: float = 2.0) -> None:
        self.node = node
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

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
            raise SatelliteError(
                f"satellite {self.node} does not answer at {self.base_url} ({type(exc).__name__}); is it up?"
            ) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise SatelliteError(f"satellite {self.node} sent {path} as non-JSON") from exc
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
