"""Running a daemon: claim the endpoint, unlock the engine, serve, and clean up on the way out.

Exactly one daemon may serve a state file. On Unix that is an exclusive ``flock`` on
``daemon.lock`` in the private endpoint directory, held for the daemon's whole life and released
by the kernel when the process dies however it dies; whoever holds it therefore knows that any
socket or metadata it finds is stale (left by a crash) and removes them. A clean stop removes the
lock file and the directory as well (unless a log remains in it). On Windows the named
pipe's ``FILE_FLAG_FIRST_PIPE_INSTANCE`` plays the same part.

The engine is unlocked before the endpoint appears, and the metadata file is written only once
the endpoint accepts connections, so a client that sees metadata can connect at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from legion_nb.engine.daemon.endpoint import Endpoint, prepare_dirs
from legion_nb.engine.daemon.metadata import (
    DaemonMetadata,
    pid_alive,
    read_metadata,
    remove_quietly,
    write_metadata,
)
from legion_nb.engine.daemon.server import ConnectionLimits, DaemonServer
from legion_nb.engine.daemon.streams import Listener
from legion_nb.errors import DaemonError

__all__ = ["DaemonAlreadyRunningError", "DaemonReady", "serve"]

log = logging.getLogger("legion_nb.daemon")


class DaemonAlreadyRunningError(DaemonError):
    """Another daemon already serves this state file."""

    code = "daemon_running"


@dataclass(frozen=True, slots=True)
class DaemonReady:
    """What the daemon tells whoever started it once it accepts connections."""

    endpoint: str
    pid: int
    token: str = field(repr=False)


EngineOpener = Callable[[], Awaitable[Any]]


async def serve(
    endpoint: Endpoint,
    open_engine: EngineOpener,
    token: str,
    *,
    on_ready: Callable[[DaemonReady], None] | None = None,
    stop: asyncio.Event | None = None,
    limits: ConnectionLimits | None = None,
    before_call: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve the engine ``open_engine`` returns (unlocked) until shutdown or ``stop`` is set.

    ``limits`` bounds pending and authenticated connections (the defaults are documented in
    ``docs/daemon-protocol.md``); ``before_call`` is awaited before each engine call
    (:class:`~legion_nb.engine.daemon.server.DaemonServer`).

    Raises :class:`DaemonAlreadyRunningError` when another daemon holds the endpoint. The engine's
    ``aclose()`` is awaited on the way out, and the socket and metadata are removed.
    """
    prepare_dirs(endpoint)
    async with _claim(endpoint):
        engine = await open_engine()
        try:
            await _serve_engine(
                endpoint, engine, token, on_ready=on_ready, stop=stop, limits=limits, before_call=before_call
            )
        finally:
            closer = getattr(engine, "aclose", None)
            if closer is not None:
                await closer()


async def _serve_engine(
    endpoint: Endpoint,
    engine: object,
    token: str,
    *,
    on_ready: Callable[[DaemonReady], None] | None,
    stop: asyncio.Event | None,
    limits: ConnectionLimits | None,
    before_call: Callable[[], Awaitable[None]] | None,
) -> None:
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    version = _package_version()
    server = DaemonServer(
        engine,
        token,
        info={"version": version, "endpoint": endpoint.address, "created": created},
        limits=limits,
        before_call=before_call,
    )
    listener = await _listen(endpoint, server)
    try:
        write_metadata(
            endpoint.metadata_path,
            DaemonMetadata(version=version, endpoint=endpoint.address, pid=os.getpid(), created=created),
        )
        log.info("daemon %s serving %s (pid %d)", version, endpoint.address, os.getpid())
        if on_ready is not None:
            on_ready(DaemonReady(endpoint=endpoint.address, pid=os.getpid(), token=token))
        waiters = [asyncio.create_task(server.stop_requested.wait())]
        if stop is not None:
            waiters.append(asyncio.create_task(stop.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
    finally:
        remove_quietly(endpoint.metadata_path)
        await listener.aclose()
        await server.aclose()
        log.info("daemon stopped; endpoint %s removed", endpoint.address)


async def _listen(endpoint: Endpoint, server: DaemonServer) -> Listener:
    if endpoint.kind == "pipe":
        from legion_nb.engine.daemon.transport_windows import listen_pipe  # noqa: PLC0415

        return await listen_pipe(endpoint.address, server.handle)
    from legion_nb.engine.daemon.transport_unix import listen_unix  # noqa: PLC0415

    return await listen_unix(endpoint.address, server.handle)


if sys.platform == "win32":

    @contextlib.asynccontextmanager
    async def _claim(endpoint: Endpoint) -> AsyncIterator[None]:
        """The pipe's first-instance flag refuses a second daemon; metadata of a dead one is stale."""
        previous = read_metadata(endpoint.metadata_path)
        if previous is not None and previous.pid != os.getpid() and pid_alive(previous.pid):
            raise DaemonAlreadyRunningError(
                f"a daemon (pid {previous.pid}) already serves this state: stop it with 'legion daemon "
                f"stop' (if that pid is not a daemon, delete {endpoint.metadata_path})"
            )
        remove_quietly(endpoint.metadata_path)
        yield

else:
    import fcntl

    @contextlib.asynccontextmanager
    async def _claim(endpoint: Endpoint) -> AsyncIterator[None]:
        """Hold the one-daemon-per-state lock; clean what a dead predecessor left behind.

        On the way out the lock file is removed while still locked (a claimant that opened it in
        the meantime notices, see :func:`_lock_file`), and the directory too if nothing else (a
        log) remains in it.
        """
        lock = _lock_file(endpoint)
        try:
            # We hold the lock, so whoever wrote these is dead (or never finished starting).
            if remove_quietly(endpoint.metadata_path) | remove_quietly(Path(endpoint.address)):
                log.info("removed a stale daemon endpoint left by a process that died")
            yield
        finally:
            remove_quietly(endpoint.lock_path)
            lock.close()
            with contextlib.suppress(OSError):  # not empty (a log stays for the post-mortem): keep it
                endpoint.directory.rmdir()

    def _lock_file(endpoint: Endpoint) -> IO[bytes]:
        """Take the exclusive start lock, or say which daemon holds it.

        The lock counts only if the locked file is still the one at the path: a daemon that was
        stopping may have removed it between our open and our flock, and a newcomer may already
        hold a fresh file there. Then we try again on the new file.
        """
        while True:
            prepare_dirs(endpoint)  # again: a daemon that just stopped may have removed the directory
            fd = os.open(endpoint.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            handle = os.fdopen(fd, "r+b")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                handle.close()
                running = read_metadata(endpoint.metadata_path)
                who = f"pid {running.pid}" if running is not None else "another process"
                raise DaemonAlreadyRunningError(
                    f"a daemon ({who}) already serves this state: stop it with 'legion daemon stop'"
                ) from exc
            locked = os.fstat(handle.fileno())
            try:
                current = os.stat(endpoint.lock_path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
                return handle
            handle.close()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("legion-nb")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
