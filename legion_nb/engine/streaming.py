"""The StreamingSupervisor: Sender stream sessions on satellites, started, stopped and watched.

A stream (satellite, name, endpoint) is planned state (``Scheme.streams``); this session service
makes the satellites match it and says how each stream is doing. Every ``probe_interval`` it walks
the planned streams: a running stream whose satellite runs no session gets one started, a stopped
one has its session stopped, and each is probed - the satellite's report of the session (bytes
delivered, its own state) over the satellite's Sender API (HTTPS with mutual TLS: Legion's operator
certificate of the satellite's cluster, the satellite's certificate from the same CA), and a TCP
connection to the endpoint
(reachability, latency). :func:`~legion_nb.engine.stream_health.classify` turns that into
``starting | live | stalled | stopped | failed`` with a reason; a change is published as one
activity item.

Satellites are reached at their tracked address on ``StreamSettings.sender_port``; a satellite not
provisioned (or never set up: its cluster has no CA) leaves its streams ``starting``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from legion_nb.engine.node_health import NodeProbe
from legion_nb.engine.redaction import redact
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.results import StreamView
from legion_nb.engine.state.model import PlannedStream, utcnow
from legion_nb.engine.stream_health import StreamProbe, StreamStatus, classify
from legion_nb.engine.tasks import ServiceTasks
from legion_nb.errors import NodeError
from legion_nb.providers.satellite import SatelliteClient

__all__ = ["StreamSettings", "StreamingSupervisor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Where satellites serve their Sender API, how often streams are probed, and the probe timeout
    (``probe_interval`` 0 turns the background probe off: :meth:`StreamingSupervisor.probe` only)."""

    sender_port: int = 8470
    probe_interval: float = 10.0
    timeout: float = 2.0


class StreamingSupervisor:
    """The session's stream sessions (module notes); an async context manager."""

    def __init__(
        self,
        state: StatePort,
        settings: StreamSettings | None = None,
        *,
        publish: Callable[[dict[str, Any]], None] | None = None,
        changed: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self.settings = settings or StreamSettings()
        self._publish = publish
        self._changed = changed
        self._clock = clock
        self._statuses: dict[str, StreamStatus] = {}
        self._clients: dict[str, tuple[tuple[str, str], SatelliteClient]] = {}
        self._retired: list[SatelliteClient] = []
        self._tasks = ServiceTasks("streaming supervisor")
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> StreamingSupervisor:
        if self.settings.probe_interval > 0:
            self._tasks.spawn(self._watch(), name="stream probes")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._tasks.aclose()
        for _, client in self._clients.values():
            await client.aclose()
        for client in self._retired:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.probe_interval)
            try:
                await self.probe()
            except NodeError as exc:  # one bad satellite is recorded per stream; this is anything else
                log.warning("stream probe failed: %s", exc.message)

    # -- what the engine API calls ---------------------------------------------------------------

    def statuses(self) -> list[StreamView]:
        """Every planned stream with its latest status (never probed: ``starting``)."""
        views: list[StreamView] = []
        for name, planned in sorted(self._state.state.scheme.streams.items()):
            status = self._statuses.get(name) or StreamStatus(
                name, planned.satellite, planned.endpoint, "starting" if planned.running else "stopped"
            )
            views.append(_view(status))
        return views

    async def probe(self) -> list[StreamView]:
        """Bring each satellite in line with the plan and probe every stream once, now."""
        async with self._lock:
            planned = dict(self._state.state.scheme.streams)
            for gone in [n for n in self._statuses if n not in planned]:
                del self._statuses[gone]
            for name, stream in sorted(planned.items()):
                previous = self._statuses.get(name)
                status = classify(previous, stream, await self._probe(stream))
                self._statuses[name] = status
                if previous is None or (previous.state, previous.reason) != (status.state, status.reason):
                    self._announce(status)
        if self._changed is not None:
            self._changed()  # the snapshot's streams section shows this probe
        return self.statuses()

    async def health_probe(self, node: str) -> NodeProbe:
        """The node observation's probe for satellites: their Sender API's ``/health`` over mTLS
        (no admin API, no metrics); a satellite not answering is a missed poll."""
        client = self._client(node)
        if client is None:
            return NodeProbe(node, self._clock(), error=f"satellite {node} has no address or CA yet")
        try:
            await client.health()
        except NodeError as exc:
            return NodeProbe(node, self._clock(), error=exc.message)
        return NodeProbe(node, self._clock(), ready=True)

    async def _probe(self, stream: PlannedStream) -> StreamProbe:
        now = self._clock()
        client = self._client(stream.satellite)
        if client is None:
            return StreamProbe(now, satellite_error=None, session=None)
        try:
            session = await client.session(stream.name)
            if not stream.running:
                if session is not None:
                    await client.stop(stream.name)
                return StreamProbe(now)
            if session is None:
                await client.start(stream.name, stream.endpoint)
        except NodeError as exc:
            return StreamProbe(now, satellite_error=exc.message)
        reachable, latency, error = await self._reach(stream.endpoint)
        return StreamProbe(now, session, None, reachable, latency, error)

    def _client(self, satellite: str) -> SatelliteClient | None:
        """The satellite's Sender API client (mTLS with its cluster's operator certificate), kept
        while its address and CA stay the same; None before it has both."""
        # Deployment (asyncssh, cryptography) loads only once a satellite is to be reached.
        from legion_nb.engine.deployment.node_reach import satellite_endpoint  # noqa: PLC0415

        found = satellite_endpoint(self._state.state, satellite, self.settings.sender_port)
        if found is None:
            return None
        url, cluster = found
        ca = cluster.authority.certificate_pem
        kept = self._clients.get(satellite)
        if kept is not None and kept[0] == (url, ca):
            return kept[1]
        if kept is not None:
            self._retired.append(kept[1])  # closed with the others: a probe may still hold it
        context = cluster.operator_ssl_context()
        client = SatelliteClient(satellite, url, context, timeout=self.settings.timeout)
        self._clients[satellite] = ((url, ca), client)
        return client

    async def _reach(self, endpoint: str) -> tuple[bool, float | None, str | None]:
        """Open and close a TCP connection to the endpoint: reachable, latency (ms), why not."""
        parts = urlsplit(endpoint)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.timeout):
                _reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:  # the endpoint's outage is the stream's reason
            return False, None, f"{host}:{port} refused or timed out ({type(exc).__name__})"
        latency = (time.perf_counter() - started) * 1000.0
        writer.close()
        with contextlib.suppress(OSError):  # the endpoint closing first is no failure of the probe
            await writer.wait_closed()
        return True, round(latency, 3), None

    def _announce(self, status: StreamStatus) -> None:
        if self._publish is None:
            return
        summary = f"stream {status.name} on {status.satellite}: {status.state}"
        if status.reason:
            summary += f" - {status.reason}"
        self._publish(
            {
                "event": "stream",
                "operation": None,
                "time": utcnow().isoformat(),
                "summary": redact(summary),  # a sender's error may quote its endpoint's credentials
                "resource": {"kind": "stream", "identity": status.name, "state": status.state},
            }
        )


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def _view(status: StreamStatus) -> StreamView:
    return {
        "name": status.name,
        "satellite": status.satellite,
        "endpoint": status.endpoint,
        "state": status.state,
        "reason": status.reason,
        "bytes": status.bytes,
        "reachable": status.reachable,
        "latency_ms": status.latency_ms,
        "checked_at": _iso(status.checked_at),
        "progressed_at": _iso(status.progressed_at),
    }
