"""Small aiohttp helpers every emulator needs: serving on loopback and wire-format timestamps.

Serving is here (not in each emulator) so that the loopback-only rule is enforced in one place: a
host outside ``127.0.0.0/8`` or ``::1`` is refused before any socket is opened.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

__all__ = ["ServedApp", "ensure_loopback", "isoformat", "serve_app"]


def ensure_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback IP literal; raise ``ValueError`` with a one-line reason if not."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"host {host!r} is not an IP address; use one in 127.0.0.0/8 such as 127.0.0.1"
        ) from None
    if not address.is_loopback:
        raise ValueError(f"host {host} is outside 127.0.0.0/8; the sandbox serves on loopback only")
    return host


@dataclass
class ServedApp:
    """An application listening on a loopback port; ``aclose()`` stops it."""

    runner: web.AppRunner
    host: str
    port: int

    def base_url(self, prefix: str = "") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{prefix}"

    async def aclose(self) -> None:
        await self.runner.cleanup()


async def serve_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
    """Start ``app`` on ``host:port`` (port 0: ephemeral) and return once it accepts connections."""
    ensure_loopback(host)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
        break
    return ServedApp(runner=runner, host=host, port=bound)


def isoformat(moment: datetime) -> str:
    """RFC 3339 with an explicit offset and whole seconds, as the providers render timestamps."""
    return moment.replace(microsecond=0).isoformat()
