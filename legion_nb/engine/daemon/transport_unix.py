"""The daemon's Unix-socket transport: a 0600 socket that only the owning uid may talk to.

The socket is bound under a 0o177 umask, so it is born 0600 rather than chmodded after a window
in which it was wider (it also lives in a 0700 directory; both locks are cheap). Each accepted
connection is then asked for its peer uid and dropped without a word unless it is our own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from legion_nb.engine.daemon.metadata import remove_quietly
from legion_nb.engine.daemon.peercred import peer_uid
from legion_nb.engine.daemon.protocol import MAX_LINE_BYTES, MAX_REPLY_BYTES
from legion_nb.engine.daemon.streams import ConnectionHandler, LineWriter

__all__ = ["UnixListener", "connect_unix", "listen_unix"]

log = logging.getLogger("legion_nb.daemon")


class UnixListener:
    """A listening socket; :meth:`aclose` stops accepting and removes the socket file."""

    def __init__(self, server: asyncio.Server, path: str) -> None:
        self._server = server
        self.address = path

    async def aclose(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        remove_quietly(Path(self.address))


async def listen_unix(path: str, handler: ConnectionHandler) -> UnixListener:
    """Serve ``handler`` on a new socket at ``path`` (a stale file there is replaced)."""
    remove_quietly(Path(path))  # the caller holds the start lock: anything here is stale
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)  # belt and braces if the platform ignores umask for sockets
    except BaseException:
        sock.close()
        raise
    own_uid = os.geteuid()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(writer.get_extra_info("socket"))
        if uid != own_uid:
            log.warning("refused a connection from uid %s: this daemon serves uid %s only", uid, own_uid)
            writer.close()
            return
        await handler(reader, writer)

    server = await asyncio.start_unix_server(on_connect, sock=sock, limit=MAX_LINE_BYTES + 1)
    return UnixListener(server, path)


async def connect_unix(path: str) -> tuple[asyncio.StreamReader, LineWriter]:
    """Connect to a daemon socket and prove the listener is our own uid, as the server proves us.

    Raises ``OSError`` when nobody listens; :class:`PermissionError` when someone else does.
    """
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_REPLY_BYTES)
    uid = peer_uid(writer.get_extra_info("socket"))
    if uid is not None and uid != os.geteuid():
        writer.close()
        raise PermissionError(f"the socket {path} is served by uid {uid}, not by you")
    return reader, writer
