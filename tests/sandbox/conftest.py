"""Shared fixtures for sandbox tests: an emulator served on 127.0.0.1 from a background event loop.

The official SDKs are synchronous (requests), so the emulator runs in its own thread with its own loop
and the test drives the SDK directly; sockets are real, nothing is mocked.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from legion_nb.sandbox.httpkit import ServedApp, serve_app
from legion_nb.sandbox.world import Emulator, SandboxWorld, Timing

T = TypeVar("T")


@dataclass
class ThreadedEmulator:
    """An emulator listening on 127.0.0.1, its world, and a way to run coroutines on its loop."""

    emulator: Emulator
    world: SandboxWorld
    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


def run_emulator(
    factory: Callable[[SandboxWorld], Emulator], world: SandboxWorld
) -> Iterator[ThreadedEmulator]:
    """Serve ``factory(world)`` in a thread until the generator is closed."""
    loop = asyncio.new_event_loop()
    ready: Future[tuple[Emulator, ServedApp]] = Future()
    stop = asyncio.Event()

    async def main() -> None:
        emulator = factory(world)
        served = await serve_app(emulator.app, "127.0.0.1", 0)
        ready.set_result((emulator, served))
        await stop.wait()
        await world.aclose()
        await served.aclose()

    def thread_main() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test through the future
            if not ready.done():
                ready.set_exception(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    emulator, served = ready.result(timeout=30)
    try:
        yield ThreadedEmulator(emulator, world, served.base_url(emulator.prefix), loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


@pytest.fixture
def fast_world() -> SandboxWorld:
    """A world whose actions finish in a few milliseconds, so SDK waits are quick."""
    return SandboxWorld(seed=7, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
