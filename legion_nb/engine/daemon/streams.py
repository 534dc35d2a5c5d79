"""The seam between the daemon's transports and its server: a line reader and a writer.

Every transport (Unix socket, Windows named pipe) hands connections to the server as an
``asyncio.StreamReader`` and something shaped like ``asyncio.StreamWriter``; the server and the
client never learn which transport they are on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["ConnectionHandler", "LineWriter", "Listener"]


class LineWriter(Protocol):
    """The writing half of a connection (``asyncio.StreamWriter`` is one)."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...
    def is_closing(self) -> bool: ...


ConnectionHandler = Callable[[asyncio.StreamReader, LineWriter], Awaitable[None]]


class Listener(Protocol):
    """A transport's listening end: its address, and a way to stop accepting."""

    address: str

    async def aclose(self) -> None: ...
