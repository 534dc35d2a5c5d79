"""A node's Tribes peer-sync listener: mutual TLS against the cluster CA plus the peer allow-list.

It enforces what ``docs/sync-mtls-handoff.md`` asks of a node, so the handoff can be tested for
real: the TLS handshake requires a client certificate issued by the cluster CA (anything else fails
the handshake), and a connection from an address outside the handoff's ``allow`` list is closed
before a byte is read, even with a valid certificate.

The protocol is a token greeting, enough to prove who talked to whom::

    peer -> node   HELLO <peer name>\\n
    node -> peer   WELCOME <node name> <cluster>\\n

The listener binds ``address:port`` (port 0: ephemeral, kept across reboots, like the other ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Sequence

from legion_nb.emulators.nodes.system import NodeSystem

__all__ = ["SyncListener"]

_LINE_LIMIT = 256


class SyncListener:
    """Serves peer sync for one node until :meth:`aclose`."""

    def __init__(self, system: NodeSystem, address: str, port: int, context: ssl.SSLContext) -> None:
        self._system = system
        self._address = address
        self._context = context
        self.port = port
        self._server: asyncio.Server | None = None
        self._allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def allow(self, cidrs: Sequence[str]) -> None:
        """Replace the allow-list (the handoff's ``allow`` field)."""
        self._allow = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._address, self.port, ssl=self._context, limit=_LINE_LIMIT
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _allowed(self, host: str) -> bool:
        peer = ipaddress.ip_address(host)
        return any(peer in network for network in self._allow)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = str(writer.get_extra_info("peername")[0])
        try:
            if not self._allowed(host):
                self._system.log("tribes-sync", f"refused {host}: not in the peer allow-list")
                return
            line = await reader.readline()
            words = line.decode("utf-8", "replace").split()
            if len(words) != 2 or words[0] != "HELLO":
                self._system.log("tribes-sync", f"refused {host}: bad greeting")
                return
            cluster = str((self._system.tribes_config or {}).get("cluster", ""))
            writer.write(f"WELCOME {self._system.hostname} {cluster}\n".encode())
            await writer.drain()
            self._system.log("tribes-sync", f"peer {words[1]} from {host} synced")
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
            self._system.log("tribes-sync", f"peer {host} dropped the connection")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
