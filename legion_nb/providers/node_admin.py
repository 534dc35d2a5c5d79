"""A managed node's admin API, over HTTPS with mutual TLS: a small typed client.

Why here: the node admin API is an outside service Legion talks HTTP to, like a provider API, and
the project keeps its HTTP client (httpx) at this edge. The caller hands in the ``ssl.SSLContext``
(Legion's operator certificate and the cluster CA it pins, see
``ClusterSecurity.operator_ssl_context``): this module only speaks the protocol and translates
failures into :class:`~legion_nb.errors.NodeError` kinds with one actionable line each: a failed
handshake (:class:`NodeAdminTrustError`), a node refusing Legion's certificate after a TLS 1.3
handshake (:class:`NodeAdminRefusedError`), and a node that does not answer at all
(:class:`NodeAdminUnreachableError`), told apart as the satellite client tells them apart
(:mod:`legion_nb.providers.mtls_failure`).

Endpoints (JSON): ``/v1/health``, ``/v1/readiness`` (HTTP 503 while not ready, still a report),
``/v1/metrics``, ``/v1/logs?since=&limit=``, and the Tang advertisement ``/tang/adv``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from legion_nb.errors import NodeError
from legion_nb.providers.mtls_failure import classify_mtls_failure

__all__ = [
    "NodeAdminClient",
    "NodeAdminProtocolError",
    "NodeAdminRefusedError",
    "NodeAdminTrustError",
    "NodeAdminUnreachableError",
    "Readiness",
    "admin_url",
]


class NodeAdminUnreachableError(NodeError):
    """The admin API did not answer (node down, rebooting, API not started yet)."""

    code = "node_admin_unreachable"
    temporary = True


class NodeAdminTrustError(NodeError):
    """The TLS handshake failed: the node's certificate does not chain to the pinned cluster CA (or
    does not name its address), or the node refused Legion's operator certificate."""

    code = "node_admin_trust"


class NodeAdminRefusedError(NodeAdminTrustError):
    """The node reset the connection after the handshake and before answering: with TLS 1.3 that is
    how its admin API refuses Legion's operator certificate. An admin API restarting at that moment
    looks the same, so a retry may help; a refusal that persists needs the node's certificates
    issued again."""

    code = "node_admin_refused"
    temporary = True


class NodeAdminProtocolError(NodeError):
    """The admin API answered, but not as the managed-node contract says."""

    code = "node_admin_protocol"


@dataclass(frozen=True, slots=True)
class Readiness:
    """The node's own readiness report: ``ready`` and each named check."""

    ready: bool
    checks: Mapping[str, bool] = field(default_factory=dict)

    def failing(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, ok in self.checks.items() if not ok))


def admin_url(host: str, port: int) -> str:
    """``https://host:port`` with an IPv6 literal bracketed."""
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


class NodeAdminClient:
    """One node's admin API; an async context manager (or :meth:`aclose`) owns the connection pool."""

    def __init__(
        self,
        node: str,
        base_url: str,
        ssl_context: ssl.SSLContext,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.node = node
        self.base_url = base_url
        self._client = httpx.AsyncClient(
            base_url=base_url, verify=ssl_context, timeout=httpx.Timeout(timeout), transport=transport
        )

    def __repr__(self) -> str:
        return f"NodeAdminClient({self.node!r}, {self.base_url!r})"

    async def health(self) -> dict[str, Any]:
        return await self._json("/v1/health")

    async def readiness(self) -> Readiness:
        report = await self._json("/v1/readiness", accept=(200, 503))
        checks = report.get("checks") or {}
        if not isinstance(checks, dict):
            raise NodeAdminProtocolError(f"node {self.node} sent a readiness report without a checks map")
        return Readiness(ready=bool(report.get("ready")), checks={str(k): bool(v) for k, v in checks.items()})

    async def metrics(self) -> dict[str, Any]:
        return await self._json("/v1/metrics")

    async def logs(self, *, since: int = 0, limit: int = 200) -> dict[str, Any]:
        """Journal entries after the cursor ``since`` (a sequence number), oldest first."""
        return await self._json("/v1/logs", params={"since": since, "limit": limit})

    async def telemetry(self, *, after: int | None = None, limit: int = 20_000) -> dict[str, Any]:
        """Metric samples taken after the time cursor ``after`` (ms since the epoch; from the start
        of the node's history when None), columnar, at most ``limit``."""
        params: dict[str, int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return await self._json("/v1/telemetry", params=params)

    async def tang_advertisement(self) -> dict[str, Any]:
        """The node's Tang advertisement (a JWS); it must at least carry a payload and signatures."""
        adv = await self._json("/tang/adv")
        if "payload" not in adv or not adv.get("signatures"):
            raise NodeAdminProtocolError(
                f"node {self.node} served a Tang advertisement without a signed payload"
            )
        return adv

    async def tang_serving(self) -> bool:
        """Whether the node's Tang server answers with an advertisement now (False when unreachable)."""
        try:
            await self.tang_advertisement()
        except (NodeAdminUnreachableError, NodeAdminRefusedError, NodeAdminProtocolError):
            return False
        return True

    async def _json(
        self, path: str, *, accept: tuple[int, ...] = (200,), params: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._client.get(path, params=dict(params or {}))
        except httpx.HTTPError as exc:
            raise self._failure(exc) from exc
        if response.status_code not in accept:
            raise NodeAdminProtocolError(
                f"node {self.node}'s admin API answered {path} with HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise NodeAdminProtocolError(f"node {self.node}'s admin API sent {path} as non-JSON") from exc
        if not isinstance(body, dict):
            raise NodeAdminProtocolError(f"node {self.node}'s admin API sent {path} as a non-object")
        return body

    def _failure(self, exc: httpx.HTTPError) -> NodeError:
        """The one-line error for a call that got no response (see :mod:`.mtls_failure`)."""
        failure = classify_mtls_failure(exc)
        if failure == "handshake":
            return NodeAdminTrustError(
                f"node {self.node}'s admin API failed the mTLS handshake at {self.base_url}; "
                "its certificate must chain to the cluster CA: reinstall the node's certificates"
            )
        if failure == "refused":
            return NodeAdminRefusedError(
                f"node {self.node} reset the TLS connection at {self.base_url} before answering: its "
                "admin API refuses Legion's operator certificate (unless it was restarting just then); "
                f"run `legion server reinstall {self.node}` to issue it the cluster's certificates again"
            )
        if isinstance(exc, httpx.ConnectError):
            return NodeAdminUnreachableError(
                f"node {self.node}'s admin API does not answer at {self.base_url}; is the node up?"
            )
        if isinstance(exc, httpx.TimeoutException):
            return NodeAdminUnreachableError(
                f"node {self.node}'s admin API timed out at {self.base_url}; retry once it settles"
            )
        return NodeAdminUnreachableError(
            f"node {self.node}'s admin API broke off ({type(exc).__name__}) at {self.base_url}; retry"
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> NodeAdminClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
