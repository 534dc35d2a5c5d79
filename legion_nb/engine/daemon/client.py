"""Reaching a running daemon: the CLI's fast path and the notebook's ``legion_nb.connect()``.

A warm CLI command is worth having only if it starts fast, so this module and everything it
imports stay light: no engine runtime, no pandas, no HTTP stack. The client finds the daemon from
the state path alone (the same derivation the daemon used), checks that the endpoint directory is
private and that the listener is its own user, and then speaks the line protocol.

:class:`RemoteEngine` implements :class:`~legion_nb.engine.surface.EngineAPI`: ``await
remote.plan_show()`` is the same call as on an in-process engine and returns the same ``Scheme``
(decoded from the method's declared type), checked against the same allow-list on the daemon's
side; ``subscribe`` yields the same :class:`~legion_nb.engine.events.Event` values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from legion_nb.engine.daemon.endpoint import (
    Endpoint,
    UnsafeRuntimeDirError,
    check_private_dir,
    endpoint_for,
)
from legion_nb.engine.daemon.metadata import pid_alive, read_metadata
from legion_nb.engine.daemon.protocol import encode_line, error_from_wire
from legion_nb.engine.daemon.remote_api import RemoteAPI
from legion_nb.engine.daemon.streams import LineWriter
from legion_nb.engine.daemon.syncclient import decode_reply, request_line, result_of
from legion_nb.engine.events import TOPICS, Event
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import DaemonNotRunningError, DaemonProtocolError, LegionError, UsageError

__all__ = ["RemoteEngine", "connect", "connect_if_alive", "open_endpoint"]

DAEMON_TOKEN_ENV = "LEGION_DAEMON_TOKEN"  # noqa: S105 - the variable's name, not a token

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, LineWriter]]]


class RemoteEngine(RemoteAPI):
    """The engine of a running daemon, with the engine API's typed methods.

    Each call is one request on a shared connection (calls may overlap); :meth:`subscribe`
    streams snapshot and activity events on a connection of its own. Close it with
    :meth:`aclose` or use it as an async context manager.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: LineWriter, *, token: str, opener: Opener
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._token = token
        self._opener = opener
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._closed = False
        self._replies = asyncio.create_task(self._read_replies())

    def __repr__(self) -> str:
        return f"RemoteEngine(pending={len(self._pending)}, closed={self._closed})"

    async def __aenter__(self) -> RemoteEngine:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, name: str, args: dict[str, Any]) -> Any:
        return await self._request("call", {"name": name, "args": to_jsonable(args)})

    async def daemon_status(self) -> dict[str, Any]:
        """The daemon's own facts: pid, version, whether its engine is unlocked, the allowed methods."""
        result = await self._request("status", {})
        if not isinstance(result, dict):
            raise DaemonProtocolError(
                "the daemon's status is not an object: upgrade client and daemon together"
            )
        return result

    async def shutdown(self) -> None:
        """Ask the daemon to stop; it answers first, then closes its endpoint and its engine."""
        await self._request("shutdown", {})

    async def subscribe(self, topics: Iterable[str] = TOPICS) -> AsyncGenerator[Event, None]:
        """Events on ``topics`` until the daemon stops or the iteration is closed."""
        try:
            reader, writer = await self._opener()
        except OSError as exc:
            raise DaemonNotRunningError("the daemon no longer answers: is it still running?") from exc
        try:
            writer.write(
                encode_line(
                    {
                        "id": 0,
                        "token": self._token,
                        "method": "subscribe",
                        "params": {"topics": list(topics)},
                    }
                )
            )
            await writer.drain()
            result_of(await _read_message(reader))
            while True:
                message = await _read_message(reader)
                topic = message.get("event")
                if topic in TOPICS:
                    yield Event(topic=topic, data=message.get("data"))
                    continue
                raise DaemonProtocolError("the daemon sent an event without a known topic")
        except DaemonNotRunningError:
            return  # the daemon went away: the stream simply ends
        finally:
            writer.close()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._replies.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._replies
        self._fail_pending(DaemonNotRunningError("the daemon connection was closed"))

    # -- the connection ----------------------------------------------------------------------

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        if self._closed or self._replies.done():
            raise DaemonNotRunningError("the daemon connection is closed: connect again")
        self._next_id += 1
        request_id = self._next_id
        line = request_line(request_id, self._token, method, params)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._writer.write(line)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._pending.pop(request_id, None)
            raise DaemonNotRunningError("the daemon closed the connection: is it still running?") from exc
        return await future

    async def _read_replies(self) -> None:
        ending: LegionError = DaemonNotRunningError("the daemon closed the connection: is it still running?")
        try:
            while True:
                message = await _read_message(self._reader)
                request_id = message.get("id")
                future = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
                if future is None:
                    if "error" in message:  # a connection-level refusal without our id
                        ending = error_from_wire(message["error"])
                    continue
                if future.done():
                    continue
                if "error" in message:
                    future.set_exception(error_from_wire(message["error"]))
                else:
                    future.set_result(message.get("result"))
        except LegionError as exc:
            if not isinstance(exc, DaemonNotRunningError):
                ending = exc
        finally:
            self._fail_pending(ending)

    def _fail_pending(self, error: LegionError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)


async def open_endpoint(endpoint: Endpoint) -> tuple[asyncio.StreamReader, LineWriter]:
    """A connection to ``endpoint``; ``OSError`` if nobody (or somebody else) listens there."""
    if endpoint.kind == "pipe":
        from legion_nb.engine.daemon.transport_windows import connect_pipe  # noqa: PLC0415

        return await connect_pipe(endpoint.address)
    from legion_nb.engine.daemon.transport_unix import connect_unix  # noqa: PLC0415

    return await connect_unix(endpoint.address)


async def connect_if_alive(state_path: Path, token: str) -> RemoteEngine | None:
    """The daemon serving ``state_path`` if one is alive, else None (the caller runs in process).

    A live daemon that refuses ``token`` raises :class:`~legion_nb.errors.DaemonAuthError` rather
    than quietly falling back: the operator asked for that daemon. A daemon directory that is not
    private raises :class:`~legion_nb.engine.daemon.endpoint.UnsafeRuntimeDirError`.
    """
    endpoint = endpoint_for(state_path)
    metadata = read_metadata(endpoint.metadata_path)
    if metadata is None or not pid_alive(metadata.pid):
        return None
    check_private_dir(endpoint.directory)

    async def opener() -> tuple[asyncio.StreamReader, LineWriter]:
        return await open_endpoint(endpoint)

    try:
        reader, writer = await opener()
    except PermissionError as exc:  # someone else's listener: never hand it the token
        raise UnsafeRuntimeDirError(f"{exc}: not sending the daemon token there") from exc
    except OSError:  # nobody answers: a stale endpoint the next daemon start will clean
        return None
    remote = RemoteEngine(reader, writer, token=token, opener=opener)
    try:
        await remote.daemon_status()  # proves the token now, not halfway through a command
    except DaemonNotRunningError:
        await remote.aclose()
        return None
    except BaseException:
        await remote.aclose()
        raise
    return remote


async def connect(state: str | os.PathLike[str] | None = None, *, token: str | None = None) -> RemoteEngine:
    """The notebook bridge: the engine of the daemon serving ``state``, through its token.

    ``token`` defaults to ``$LEGION_DAEMON_TOKEN``. Raises
    :class:`~legion_nb.errors.DaemonNotRunningError` when no daemon serves that state and
    :class:`~legion_nb.errors.DaemonAuthError` when it refuses the token.
    """
    from legion_nb.engine.paths import resolve_state_path  # noqa: PLC0415

    token = token or os.environ.get(DAEMON_TOKEN_ENV)
    if not token:
        raise UsageError(
            f"no daemon token: pass token=... or set {DAEMON_TOKEN_ENV} (printed by 'legion daemon start')"
        )
    state_path = resolve_state_path(state)
    remote = await connect_if_alive(state_path, token)
    if remote is None:
        raise DaemonNotRunningError(
            f"no daemon is running for {state_path}: "
            f"start one with 'legion --state {state_path} daemon start'"
        )
    return remote


async def _read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    try:
        line = await reader.readline()
    except (ConnectionError, OSError) as exc:
        raise DaemonNotRunningError("the daemon connection broke: is it still running?") from exc
    except ValueError as exc:
        raise DaemonProtocolError("the daemon sent a line longer than the client accepts") from exc
    if not line:
        raise DaemonNotRunningError("the daemon closed the connection: is it still running?")
    return decode_reply(line)
