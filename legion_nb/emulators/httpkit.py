"""Small aiohttp helpers every emulator needs: serving on loopback (in this loop or in a thread of its
own) and wire-format timestamps.

Serving is here (not in each emulator) so that the loopback-only rule is enforced in one place: a
host outside ``127.0.0.0/8`` or ``::1`` is refused before any socket is opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from legion_nb.emulators.world import Emulator, SandboxWorld

T = TypeVar("T")

__all__ = ["ServedApp", "ThreadedEmulator", "ensure_loopback", "isoformat", "serve_app", "serve_in_thread"]


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


async def serve_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> ServedApp:
    """Start ``app`` on ``host:port`` (port 0: ephemeral) and return once it accepts connections.

    With ``ssl_context`` it serves HTTPS (the simulated nodes' mTLS admin API).
    """
    ensure_loopback(host)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
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


@dataclass
class ThreadedEmulator:
    """An emulator served from its own event loop in a background thread (for synchronous SDKs).

    ``url`` already carries the emulator's prefix; ``call`` runs a coroutine on the emulator's loop
    (the only safe way to touch emulator state from the calling thread).
    """

    emulator: Emulator
    world: SandboxWorld
    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


@contextmanager
def serve_in_thread(
    factory: Callable[[SandboxWorld], Emulator], world: SandboxWorld, host: str = "127.0.0.1"
) -> Iterator[ThreadedEmulator]:
    """Serve ``factory(world)`` on ``host`` (ephemeral port) in a thread; stop it and the world on exit.

    The official SDKs are synchronous (``requests``); running the emulator on its own loop lets a test
    or a notebook cell drive the SDK directly over real sockets.
    """
    ensure_loopback(host)
    loop = asyncio.new_event_loop()
    ready: Future[tuple[Emulator, ServedApp]] = Future()
    stop = asyncio.Event()

    async def main() -> None:
        emulator = factory(world)
        served = await serve_app(emulator.app, host, 0)
        ready.set_result((emulator, served))
        try:
            await stop.wait()
        finally:
            await world.aclose()
            await served.aclose()

    def thread_main() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the caller through the future
            if not ready.done():
                ready.set_exception(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=thread_main, name="sandbox-emulator", daemon=True)
    thread.start()
    emulator, served = ready.result(timeout=30)
    try:
        yield ThreadedEmulator(emulator, world, served.base_url(emulator.prefix), loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
