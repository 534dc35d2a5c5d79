"""A blocking, one-request-at-a-time daemon client for one-shot CLI commands.

A warm ``legion status`` is one request and one reply, yet the asyncio client makes the process
import asyncio (and with it ssl, concurrent.futures, inspect...), which costs several times the
round trip itself. This client speaks the same line protocol on a plain blocking socket from the
C ``_socket`` module (the ``socket`` module's enum tables and selectors cost more than the call;
``benchmarks/daemon.py`` prints the warm command with and without it) and imports only the light
daemon modules, so a daemon-served command pays for little more than the interpreter's start.

It makes the same checks as :func:`legion_nb.engine.daemon.client.connect_if_alive`: metadata
and a live pid before anything else, a private endpoint directory, a listener of our own uid (the
token is never sent to anyone else), and a first daemon ``status`` that proves the token. Errors
arrive as the same :class:`~legion_nb.errors.LegionError` types, and results as the same typed
values (:class:`~legion_nb.engine.daemon.remote_api.RemoteAPI`). Subscriptions stay with the
asyncio client; so does Windows, whose named pipes need overlapped I/O for the same checks.
"""

from __future__ import annotations

import _socket
import json
import os
import struct
import sys
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion_nb.engine.daemon.endpoint import UnsafeRuntimeDirError, check_private_dir, endpoint_for
from legion_nb.engine.daemon.metadata import pid_alive, read_metadata
from legion_nb.engine.daemon.protocol import MAX_REPLY_BYTES, encode_line, error_from_wire
from legion_nb.engine.daemon.remote_api import RemoteAPI
from legion_nb.errors import DaemonNotRunningError, DaemonProtocolError, LegionError, UsageError

if TYPE_CHECKING:
    from legion_nb.engine.events import Event

__all__ = ["BlockingRemote", "connect_blocking", "decode_reply", "request_line", "result_of"]

_CLOSED = "the daemon closed the connection: is it still running?"
_RECV_BYTES = 1 << 16


class BlockingRemote(RemoteAPI):
    """A daemon connection answering one request at a time, with the engine API's typed methods.

    They are coroutine functions only so that CLI handlers written for any engine
    (``await api.status()``) run unchanged; they never suspend, so such a handler completes on its
    first step without an event loop.
    """

    def __init__(self, sock: _socket.socket, *, token: str) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._token = token
        self._next_id = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"BlockingRemote(closed={self._closed})"

    async def _send(self, name: str, args: dict[str, Any]) -> Any:
        return self.request("call", {"name": name, "args": args})

    def subscribe(self, topics: Iterable[str] = ()) -> AsyncGenerator[Event, None]:
        """Not on a blocking connection: event streams need the asyncio client (``connect()``)."""
        raise UsageError("event streams need the asyncio daemon client (legion_nb.connect())")

    def daemon_status(self) -> dict[str, Any]:
        """The daemon's own facts (pid, version, unlocked, allowed methods)."""
        result = self.request("status", {})
        if not isinstance(result, dict):
            raise DaemonProtocolError(
                "the daemon's status is not an object: upgrade client and daemon together"
            )
        return result

    def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send one request and wait for its reply."""
        if self._closed:
            raise DaemonNotRunningError("the daemon connection is closed: connect again")
        self._next_id += 1
        request_id = self._next_id
        line = request_line(request_id, self._token, method, params)
        try:
            self._sock.sendall(line)
        except OSError as exc:
            raise DaemonNotRunningError(_CLOSED) from exc
        refusal: LegionError | None = None  # a connection-level error line without our id
        while True:
            message = self._read_message()
            if message is None:
                raise refusal or DaemonNotRunningError(_CLOSED)
            if message.get("id") == request_id and "event" not in message:
                return result_of(message)
            if "error" in message:
                refusal = error_from_wire(message["error"])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sock.close()

    def _read_message(self) -> dict[str, Any] | None:
        """The next line as a JSON object; None once the daemon closed the connection."""
        searched = 0
        while (end := self._buffer.find(b"\n", searched)) < 0:
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise DaemonProtocolError("the daemon sent a line longer than the client accepts")
            searched = len(self._buffer)
            try:
                chunk = self._sock.recv(_RECV_BYTES)
            except OSError as exc:
                raise DaemonNotRunningError("the daemon connection broke: is it still running?") from exc
            if not chunk:
                return None
            self._buffer += chunk
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        if len(line) > MAX_REPLY_BYTES:
            raise DaemonProtocolError("the daemon sent a line longer than the client accepts")
        return decode_reply(line)


def connect_blocking(state_path: Path, token: str) -> BlockingRemote | None:
    """The daemon serving ``state_path`` on a blocking socket if one is alive, else None.

    None also means "use the asyncio client": on Windows, and whenever no daemon answers (the
    caller then runs in process, as with the asyncio client). A live daemon that refuses
    ``token`` raises :class:`~legion_nb.errors.DaemonAuthError`; a directory or listener that is
    not ours raises :class:`~legion_nb.engine.daemon.endpoint.UnsafeRuntimeDirError`.
    """
    endpoint = endpoint_for(state_path)
    if endpoint.kind != "unix":
        return None
    metadata = read_metadata(endpoint.metadata_path)
    if metadata is None or not pid_alive(metadata.pid):
        return None
    check_private_dir(endpoint.directory)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(endpoint.address)
    except PermissionError as exc:  # someone else's listener: never hand it the token
        sock.close()
        raise UnsafeRuntimeDirError(f"{exc}: not sending the daemon token there") from exc
    except OSError:  # nobody answers: a stale endpoint the next daemon start will clean
        sock.close()
        return None
    uid = _peer_uid(sock)
    if uid is not None and uid != os.geteuid():
        sock.close()
        raise UnsafeRuntimeDirError(
            f"the socket {endpoint.address} is served by uid {uid}, not by you: "
            "not sending the daemon token there"
        )
    remote = BlockingRemote(sock, token=token)
    try:
        remote.daemon_status()  # proves the token now, not halfway through a command
    except DaemonNotRunningError:
        remote.close()
        return None
    except BaseException:
        remote.close()
        raise
    return remote


def request_line(request_id: int, token: str, method: str, params: dict[str, Any]) -> bytes:
    """One request as a wire line; arguments JSON cannot carry are the caller's mistake.

    Call arguments that are plain JSON (all a CLI command sends) go as they are; others
    (dataclasses, enums, dates, paths) are converted by :func:`~legion_nb.engine.wire.to_jsonable`
    first, imported only then.
    """
    request = {"id": request_id, "token": token, "method": method, "params": params}
    try:
        try:
            return encode_line(request)
        except TypeError:
            from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415 - rarely needed

            return encode_line({**request, "params": to_jsonable(params)})
    except (TypeError, ValueError) as exc:  # NaN, infinities, objects JSON cannot carry
        raise UsageError("arguments cannot be sent as JSON: no NaN, infinities or other objects") from exc


if sys.platform == "linux":
    _UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

    def _peer_uid(sock: _socket.socket) -> int | None:
        """The listener's uid from ``SO_PEERCRED``, read without importing the ``socket`` module."""
        try:
            raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED.size)
        except OSError:
            return None
        return int(_UCRED.unpack(raw)[1])

else:

    def _peer_uid(sock: _socket.socket) -> int | None:
        from legion_nb.engine.daemon.peercred import peer_uid  # noqa: PLC0415 - getpeereid via ctypes

        return peer_uid(sock)  # type: ignore[arg-type]  # it needs only getsockopt and fileno


def decode_reply(line: bytes) -> dict[str, Any]:
    """One reply or event line from the daemon as a JSON object, or :class:`DaemonProtocolError`."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise DaemonProtocolError("the daemon sent a line that is not JSON") from exc
    if not isinstance(message, dict):
        raise DaemonProtocolError("the daemon sent a line that is not a JSON object")
    return message


def result_of(message: dict[str, Any]) -> Any:
    """The result a reply carries, or the error it carries raised as its ``LegionError`` type."""
    if "error" in message:
        raise error_from_wire(message["error"])
    return message.get("result")
