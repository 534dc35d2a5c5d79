"""Serving one engine to its owner's CLI and notebooks over a line-oriented connection.

The server is transport-blind: a transport (Unix socket, Windows named pipe) authenticates the
peer's account and hands each connection over as a line reader and a writer. From then on every
line is judged the same way:

1. a line that is too long, not JSON, too deep, or carries no or the wrong token gets one error
   line and the connection is closed: nothing unauthenticated is ever acted upon;
2. an authenticated request with a wrong shape, an unknown method or an engine name that is not on
   the allow-list gets an error reply and the connection stays usable;
3. engine failures travel as their :class:`~legion_nb.errors.LegionError` wire form; anything else
   is a bug and travels as a bare ``internal`` error, its type logged here and its text (which may
   quote arguments, including secrets) dropped.

Requests on one connection run concurrently (a long ``materialize`` does not block a ``status``
sent after it); replies carry the request id. Before each ``call`` the server awaits its
``before_call`` hook, if it has one: the daemon uses it to let the engine follow what changed around
it since the last call (a served sandbox linked to the state), checked when a call needs the engine
rather than by polling. ``subscribe`` turns its connection into an event stream until the client
hangs up.

A connection is *pending* until its first line with the right token arrives, *authenticated*
after. The two states have separate caps (:class:`ConnectionLimits`), so connections that never
speak cannot crowd out the ones that do: a pending connection has a deadline for its first good
line, and when too many are pending the oldest is dropped to make room for the newcomer (a real
client sends its request as soon as it connects, so it authenticates long before it is the oldest).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from legion_nb.engine.api import public_methods
from legion_nb.engine.daemon.protocol import (
    MAX_LINE_BYTES,
    DaemonBusyError,
    DaemonInternalError,
    MethodNotAllowedError,
    Request,
    check_token,
    decode_line,
    encode_line,
    error_reply,
    parse_call,
    parse_request,
    parse_topics,
)
from legion_nb.engine.daemon.streams import LineWriter
from legion_nb.engine.redaction import active
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import DaemonAuthError, DaemonProtocolError, LegionError, UsageError

__all__ = ["ConnectionLimits", "DaemonServer"]

log = logging.getLogger("legion_nb.daemon")

# Streams have their own method; offering them through ``call`` would hand back a generator.
_NOT_CALLABLE = frozenset({"subscribe"})
_IN_FLIGHT_PER_CONNECTION = 16


class ConnectionLimits:
    """How long a connection may stay pending, and how many connections each state may hold.

    ``auth_deadline`` seconds after it connects, a connection that has not sent a line with the
    right token gets one ``daemon_auth`` error line and is closed (a half-sent line counts as
    nothing sent). At most ``pending`` connections wait for their first good line: one more
    closes the oldest pending one. At most ``authenticated`` connections are served at once: the
    next to authenticate gets one ``daemon_busy`` error line and is closed.
    """

    __slots__ = ("auth_deadline", "authenticated", "pending")

    def __init__(self, *, auth_deadline: float = 5.0, pending: int = 64, authenticated: int = 256) -> None:
        if auth_deadline <= 0 or pending < 1 or authenticated < 1:
            raise ValueError("connection limits must be positive")
        self.auth_deadline = auth_deadline
        self.pending = pending
        self.authenticated = authenticated

    def __repr__(self) -> str:
        return (
            f"ConnectionLimits(auth_deadline={self.auth_deadline}, pending={self.pending}, "
            f"authenticated={self.authenticated})"
        )


class _Connection:
    """One peer: its writer, a lock so concurrent replies never interleave, its running requests."""

    def __init__(self, writer: LineWriter) -> None:
        self.writer = writer
        self.authenticated = False
        self.deadline = 0.0  # loop time by which a pending connection must have authenticated
        self.lock = asyncio.Lock()
        self.slots = asyncio.Semaphore(_IN_FLIGHT_PER_CONNECTION)
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        line = scrubbed_line(message)
        async with self.lock:
            if self.writer.is_closing():
                return
            self.writer.write(line)
            await self.writer.drain()


class DaemonServer:
    """Serves ``engine``'s public methods (less ``deny``) to connections that present ``token``."""

    def __init__(
        self,
        engine: object,
        token: str,
        *,
        info: Mapping[str, Any] | None = None,
        limits: ConnectionLimits | None = None,
        deny: frozenset[str] = frozenset(),
        before_call: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._engine = engine
        self._before_call = before_call
        self._token = token
        self._allowed = public_methods(type(engine)) - _NOT_CALLABLE - deny
        self._info = dict(info or {})
        self._limits = limits or ConnectionLimits()
        self._connections: dict[asyncio.Task[Any] | None, _Connection] = {}
        # Pending connections oldest first (dicts keep insertion order), and the count of the others.
        self._pending: dict[_Connection, None] = {}
        self._authenticated = 0
        self.stop_requested = asyncio.Event()
        self._closing = False

    def __repr__(self) -> str:
        return f"DaemonServer(engine={type(self._engine).__name__}, connections={len(self._connections)})"

    @property
    def allowed(self) -> frozenset[str]:
        """The engine methods ``call`` accepts."""
        return self._allowed

    async def handle(self, reader: asyncio.StreamReader, writer: LineWriter) -> None:
        """Serve one connection until the peer leaves, misbehaves before authenticating, or we stop."""
        task = asyncio.current_task()
        connection = _Connection(writer)
        self._connections[task] = connection
        self._admit(connection)
        finished_sending = False
        try:
            finished_sending = await self._serve(reader, connection)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the peer went away mid-line; nothing to answer
        finally:
            if connection.authenticated:
                self._authenticated -= 1
            self._pending.pop(connection, None)
            # A peer that merely finished sending (``printf ... | socat``) still gets its replies;
            # a refused peer, a broken connection or a stopping daemon does not.
            if not finished_sending or self._closing:
                for pending in connection.tasks:
                    pending.cancel()
            await asyncio.gather(*connection.tasks, return_exceptions=True)
            writer.close()
            self._connections.pop(task, None)

    async def aclose(self) -> None:
        """Drop every connection; their in-flight requests are cancelled.

        Closing the writers ends each connection's read loop with end-of-file, so the handlers
        return on their own (cancelling a transport's handler task from outside makes asyncio
        log spurious errors); only handlers that do not finish promptly are cancelled.
        """
        self._closing = True
        current = asyncio.current_task()
        handlers = [t for t in self._connections if t is not None and t is not current]
        for connection in list(self._connections.values()):
            for pending in connection.tasks:
                pending.cancel()
            connection.writer.close()
        if handlers:
            _done, stuck = await asyncio.wait(handlers, timeout=5)
            for handler in stuck:
                handler.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    # -- connection states -------------------------------------------------------------------

    def _admit(self, connection: _Connection) -> None:
        """Count a new connection as pending, dropping the oldest pending one beyond the cap."""
        self._pending[connection] = None
        while len(self._pending) > self._limits.pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            _drop(
                oldest,
                DaemonBusyError(
                    f"more than {self._limits.pending} connections waiting to authenticate: "
                    "this one was the oldest and is closed"
                ),
            )

    def _authenticate(self, connection: _Connection) -> bool:
        """Move a connection to the authenticated state; False when that state is full."""
        self._pending.pop(connection, None)
        if self._authenticated >= self._limits.authenticated:
            return False
        connection.authenticated = True
        self._authenticated += 1
        return True

    async def _first_line(self, reader: asyncio.StreamReader, connection: _Connection) -> bytes | None:
        """The next line; for a pending connection, None once its authentication deadline passed."""
        if connection.authenticated:
            return await reader.readline()
        loop = asyncio.get_running_loop()
        remaining = connection.deadline - loop.time()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                return await reader.readline()
        except TimeoutError:
            return None

    # -- one connection ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, connection: _Connection) -> bool:
        """Read and dispatch lines; True when the peer simply finished sending (end of file)."""
        connection.deadline = asyncio.get_running_loop().time() + self._limits.auth_deadline
        while True:
            try:
                line = await self._first_line(reader, connection)
            except ValueError:  # asyncio's "separator not found, limit exceeded"
                await connection.send(
                    error_reply(
                        None,
                        DaemonProtocolError(
                            f"request line longer than {MAX_LINE_BYTES} bytes: send smaller requests"
                        ),
                    )
                )
                return False
            if line is None:
                await connection.send(
                    error_reply(
                        None,
                        DaemonAuthError(
                            f"no request with a token within {self._limits.auth_deadline:g} s of connecting: "
                            "connection closed"
                        ),
                    )
                )
                return False
            if not line:
                return True
            if not line.strip():
                continue  # blank lines are harmless keep-alives
            message: dict[str, Any] | None = None
            try:
                message = decode_line(line)
                check_token(message, self._token)
            except LegionError as exc:
                await connection.send(error_reply(message.get("id") if message else None, exc))
                return False
            if not connection.authenticated and not self._authenticate(connection):
                busy = DaemonBusyError(
                    f"{self._limits.authenticated} clients are connected already: close idle ones and retry"
                )
                await connection.send(error_reply(message.get("id"), busy))
                return False
            try:
                request = parse_request(message, self._token)
                topics = parse_topics(request.params) if request.method == "subscribe" else ()
            except LegionError as exc:
                await connection.send(error_reply(message.get("id"), exc))
                continue
            if topics:
                await self._stream(request, topics, reader, connection)
                return False
            await connection.slots.acquire()
            task = asyncio.create_task(self._answer(request, connection))
            connection.tasks.add(task)
            task.add_done_callback(connection.tasks.discard)

    async def _answer(self, request: Request, connection: _Connection) -> None:
        try:
            try:
                result = await self._dispatch(request)
                reply: dict[str, Any] = {"id": request.id, "result": result}
            except LegionError as exc:
                reply = error_reply(request.id, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug: log its type, never its text (it may quote secrets)
                log.error(  # noqa: TRY400 - a traceback's text may quote secrets: the type only
                    "daemon %s request failed with %s", _label(request), type(exc).__name__
                )
                reply = error_reply(
                    request.id,
                    DaemonInternalError("internal error in the daemon: see the daemon log for its type"),
                )
            await connection.send(reply)
        except (ConnectionError, OSError):
            pass  # the peer left before its reply; nothing to deliver it to
        finally:
            connection.slots.release()

    async def _dispatch(self, request: Request) -> Any:
        if request.method == "status":
            return self._status()
        if request.method == "shutdown":
            log.info("daemon shutdown requested by a client")
            self.stop_requested.set()
            return {"stopping": True}
        name, args = parse_call(request.params)
        if name not in self._allowed:
            raise MethodNotAllowedError(
                f"{_bounded(name)} is not an engine API method: the daemon status lists the allowed ones"
            )
        method = getattr(self._engine, name)
        try:
            inspect.signature(method).bind(**args)
        except TypeError as exc:
            raise UsageError(f"bad arguments for {name}: {_bounded(str(exc), 200)}") from exc
        if self._before_call is not None:
            await self._before_call()
        result = await method(**args)
        if type(result).__name__ == "DataFrame":  # a frame's rows take a while: not on the loop
            return await asyncio.to_thread(to_jsonable, result)
        return to_jsonable(result)

    def _status(self) -> dict[str, Any]:
        unlocked = getattr(self._engine, "is_unlocked", None)
        return {
            **self._info,
            "pid": os.getpid(),
            "unlocked": bool(unlocked) if unlocked is not None else None,
            "connections": len(self._connections),
            "methods": sorted(self._allowed),
        }

    async def _stream(
        self, request: Request, topics: tuple[str, ...], reader: asyncio.StreamReader, connection: _Connection
    ) -> None:
        subscribe = getattr(self._engine, "subscribe", None)
        if subscribe is None:
            await connection.send(
                error_reply(request.id, DaemonProtocolError("this engine publishes no events"))
            )
            return
        try:
            events = subscribe(list(topics))
            if inspect.isawaitable(events):
                events = await events
        except LegionError as exc:
            await connection.send(error_reply(request.id, exc))
            return
        except Exception as exc:  # a bug: same rule as for calls, the type only
            log.error("daemon subscribe failed with %s", type(exc).__name__)  # noqa: TRY400 - type only
            await connection.send(
                error_reply(
                    request.id,
                    DaemonInternalError("internal error in the daemon: see the daemon log for its type"),
                )
            )
            return
        await connection.send({"id": request.id, "result": {"topics": list(topics)}})
        pump = asyncio.create_task(self._pump(events, connection))
        hangup = asyncio.create_task(_until_hangup(reader))
        try:
            await asyncio.wait({pump, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, hangup):
                task.cancel()
            await asyncio.gather(pump, hangup, return_exceptions=True)
            closer = getattr(events, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            log.error("daemon event stream failed with %s", type(pump.exception()).__name__)

    async def _pump(self, events: AsyncIterator[Any], connection: _Connection) -> None:
        async for event in events:
            await connection.send({"event": event.topic, "data": to_jsonable(event.data)})


def scrubbed_line(message: dict[str, Any]) -> bytes:
    """The wire line for ``message``, with any secret of the unlocked state scrubbed out.

    The encoded line is checked in one scan (it holds the JSON-escaped forms too); only a line
    that mentions a secret is rebuilt from a scrubbed copy of the message, so that the JSON
    stays valid whatever the secret's characters.
    """
    line = encode_line(message)
    redactor = active()
    if redactor and redactor.mentions(line.decode()):
        line = encode_line(redactor.redact_data(message))
    return line


def _drop(connection: _Connection, reason: LegionError) -> None:
    """Tell a connection why in one line, without waiting for it to read, and close it."""
    with contextlib.suppress(ConnectionError, OSError):
        if not connection.writer.is_closing():
            connection.writer.write(scrubbed_line(error_reply(None, reason)))
    connection.writer.close()


async def _until_hangup(reader: asyncio.StreamReader) -> None:
    """A subscribed connection only listens; any input, or its end, finishes the stream."""
    with contextlib.suppress(ValueError, ConnectionError):
        await reader.read(1)


def _label(request: Request) -> str:
    if request.method == "call":
        name = request.params.get("name")
        return f"call {_bounded(name)}" if isinstance(name, str) else "call"
    return request.method


def _bounded(text: str, limit: int = 64) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
