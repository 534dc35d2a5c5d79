"""A satellite's Sender: real byte streams pushed over TCP to a receiver on loopback.

A Sender stream session sends a header line ``STREAM <name>\\n`` and then a chunk of bytes every
``period`` seconds to its endpoint (``tcp://host:port``, loopback only), counting what the socket
accepted. The satellite reports each session over HTTPS with mutual TLS: a client must present a
certificate from the CA the satellite was set up with (else the handshake fails), and one whose
name the setup listed (Legion's operator certificate; a peer's node certificate from the same CA is
answered 403):

* ``GET /health`` - the satellite answers;
* ``GET /v1/streams`` and ``GET /v1/streams/{name}`` - ``{name, endpoint, state, bytes, error}``;
* ``POST /v1/streams`` with ``{name, endpoint}`` - start (idempotent for the same endpoint);
* ``DELETE /v1/streams/{name}`` - stop.

Faults for tests and runbooks: :meth:`SenderSession.stall` keeps the connection open and sends
nothing until :meth:`SenderSession.resume`; :meth:`SenderSession.fail` drops it with an error.
A power-off drops every session's connection and the API's port; at the next boot the Sender
restarts the sessions that were sending (:meth:`SatelliteSenders.power_off`, :meth:`~SatelliteSenders.boot`).

:class:`StreamReceiver` is the other end the sandbox runs: a TCP server on a loopback address that
counts the bytes each stream delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web

from legion_nb.emulators.nodes.admin_api import peer_common_name

__all__ = ["SatelliteSenders", "SenderSession", "StreamReceiver", "create_sender_app", "parse_endpoint"]

SenderState = Literal["running", "stalled", "failed", "stopped"]

_CHUNK = b"\x5a" * 4096


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` as ``(host, port)``; ``ValueError`` for another scheme, no port, or a
    host outside 127.0.0.0/8 (the sandbox never sends off loopback)."""
    parts = urlsplit(endpoint)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ValueError(f"stream endpoint {endpoint!r} is not tcp://HOST:PORT")
    if not ipaddress.ip_address(parts.hostname).is_loopback:
        raise ValueError(f"stream endpoint {endpoint!r} is outside 127.0.0.0/8")
    return parts.hostname, parts.port


class SenderSession:
    """One running stream: a task that writes to its endpoint until stopped or failed."""

    def __init__(self, name: str, endpoint: str, *, period: float = 0.02) -> None:
        self.name = name
        self.endpoint = endpoint
        self.period = period
        self.state: SenderState = "running"
        self.bytes = 0
        self.error: str | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send(), name=f"sender {self.name}")

    async def _send(self) -> None:
        host, port = parse_endpoint(self.endpoint)
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            self.state, self.error = "failed", f"cannot connect to {self.endpoint}: {exc.strerror or exc}"
            return
        try:
            writer.write(f"STREAM {self.name}\n".encode())
            while True:
                await self._flowing.wait()
                writer.write(_CHUNK)
                await writer.drain()
                self.bytes += len(_CHUNK)
                await asyncio.sleep(self.period)
        except (ConnectionError, OSError) as exc:  # the receiver went away: the session failed
            self.state, self.error = "failed", f"connection to {self.endpoint} lost: {exc}"
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def stall(self) -> None:
        """A fault: keep the connection, send nothing."""
        self._flowing.clear()
        self.state = "stalled"

    def resume(self) -> None:
        self._flowing.set()
        if self.state == "stalled":
            self.state = "running"

    async def fail(self, message: str = "encoder crashed") -> None:
        """A fault: the session dies with ``message``."""
        await self.stop()
        self.state, self.error = "failed", message

    async def stop(self) -> None:
        await self.halt()
        self.state = "stopped"

    async def halt(self) -> None:
        """The machine lost power: the connection drops mid-stream; state and count stay as they
        were, for :meth:`restart` at the next boot."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def restart(self) -> None:
        """The Sender service starts again at boot: a session that was sending (stalled ones too,
        the hang did not survive the power cycle) opens a new connection and goes on counting."""
        if self.state not in ("running", "stalled"):
            return
        self._flowing.set()
        self.state = "running"
        self.start()

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "state": self.state,
            "bytes": self.bytes,
            "error": self.error,
        }


class SatelliteSenders:
    """The sessions of one satellite, by name."""

    def __init__(self, *, period: float = 0.02) -> None:
        self.period = period
        self.sessions: dict[str, SenderSession] = {}

    def session(self, name: str) -> SenderSession:
        """The session ``name``; ``KeyError`` names it when there is none."""
        try:
            return self.sessions[name]
        except KeyError:
            raise KeyError(f"no stream session {name}") from None

    async def start(self, name: str, endpoint: str) -> SenderSession:
        parse_endpoint(endpoint)
        current = self.sessions.get(name)
        if current is not None and current.endpoint == endpoint and current.state in ("running", "stalled"):
            return current
        if current is not None:
            await current.stop()
        session = SenderSession(name, endpoint, period=self.period)
        session.start()
        self.sessions[name] = session
        return session

    async def stop(self, name: str) -> None:
        session = self.sessions.pop(name, None)
        if session is not None:
            await session.stop()

    async def power_off(self) -> None:
        """Every session's connection drops with the machine; the sessions stay configured."""
        for session in self.sessions.values():
            await session.halt()

    def boot(self) -> None:
        """Restart the sessions that were sending when the power went (see :meth:`SenderSession.restart`)."""
        for session in self.sessions.values():
            session.restart()

    async def aclose(self) -> None:
        for name in list(self.sessions):
            await self.stop(name)


def create_sender_app(
    senders: SatelliteSenders, hostname: str, clients: frozenset[str] = frozenset()
) -> web.Application:
    """The Sender API (module notes), answering only client certificates named in ``clients``."""

    @web.middleware
    async def only_clients(request: web.Request, handler: Any) -> web.StreamResponse:
        name = peer_common_name(request)
        if name not in clients:
            shown = "no client certificate" if name is None else f"client certificate {name!r}"
            return web.json_response({"error": f"{shown} may not drive this satellite"}, status=403)
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[only_clients])

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": hostname, "streams": len(senders.sessions)})

    async def listing(_request: web.Request) -> web.Response:
        return web.json_response([s.report() for _, s in sorted(senders.sessions.items())])

    async def one(request: web.Request) -> web.Response:
        session = senders.sessions.get(request.match_info["name"])
        if session is None:
            return web.json_response({"error": "no such stream"}, status=404)
        return web.json_response(session.report())

    async def start(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return web.json_response({"error": "expected {name, endpoint}"}, status=400)
        try:
            session = await senders.start(body["name"], str(body.get("endpoint", "")))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(session.report(), status=201)

    async def stop(request: web.Request) -> web.Response:
        await senders.stop(request.match_info["name"])
        return web.json_response({}, status=200)

    app.router.add_get("/health", health)
    app.router.add_get("/v1/streams", listing)
    app.router.add_post("/v1/streams", start)
    app.router.add_get("/v1/streams/{name}", one)
    app.router.add_delete("/v1/streams/{name}", stop)
    return app


class StreamReceiver:
    """A TCP receiver on a loopback address counting the bytes each stream delivered."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"receiver address {address} is outside 127.0.0.0/8")
        self.address = address
        self.port = port
        self.received: dict[str, int] = {}
        self._server: asyncio.Server | None = None

    def url(self) -> str:
        return f"tcp://{self.address}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.address, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readline()
            name = header.decode(errors="replace").removeprefix("STREAM ").strip() or "?"
            self.received.setdefault(name, 0)
            while chunk := await reader.read(65536):
                self.received[name] = self.received.get(name, 0) + len(chunk)
        except (ConnectionError, OSError):  # a sender dropping its connection ends its count
            pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> StreamReceiver:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
