"""The private channel a runbook's kernel reaches the operator's engine through.

The kernel is a child process that must drive the operator's unlocked engine without ever holding
the state password. Each run opens its own channel: the engine's public methods served (by the
daemon's :class:`~legion_nb.engine.daemon.server.DaemonServer`) on a fresh Unix socket in a new
private directory (0700), behind a fresh random token that is good for this run only. The token
is written to a file beside the socket (0600); the kernel's environment carries only the
directory's path (:data:`CHANNEL_ENV`). :func:`connect_channel` (what ``legion_nb.connect()`` does
inside a runbook) reads the token file and removes it, so the token never enters the kernel's argv,
environment, the notebook or its outputs, and the channel with its token is gone when the run ends.
The channel refuses the methods that would let a runbook unlock, relock, re-key the state or start
another runbook.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from legion_nb.errors import DaemonNotRunningError

if TYPE_CHECKING:
    import asyncio

    from legion_nb.engine.daemon.client import RemoteEngine
    from legion_nb.engine.daemon.server import DaemonServer
    from legion_nb.engine.daemon.streams import LineWriter
    from legion_nb.engine.daemon.transport_unix import UnixListener

__all__ = ["CHANNEL_ENV", "DENIED", "RunChannel", "connect_channel"]

CHANNEL_ENV = "LEGION_RUNBOOK_CHANNEL"
DENIED = frozenset(
    {
        "bootstrap",
        "unlock",
        "logout",
        "change_password",
        "run_runbook",
        "runbook_list",
        "runbook_runs",
        "runbook_show",
        "runbook_verify",
    }
)
_SOCKET = "engine.sock"
_TOKEN_FILE = "token"  # noqa: S105 - a file name, not a token


class RunChannel:
    """One run's channel to ``engine``: ``async with RunChannel(engine) as channel: channel.env``."""

    def __init__(self, engine: object) -> None:
        self._engine = engine
        self._directory: Path | None = None
        self._server: DaemonServer | None = None
        self._listener: UnixListener | None = None

    def __repr__(self) -> str:
        return f"RunChannel(open={self._listener is not None})"

    @property
    def env(self) -> dict[str, str]:
        """What the kernel's environment gets: the channel directory, never the token."""
        assert self._directory is not None, "the channel is not open"
        return {CHANNEL_ENV: str(self._directory)}

    async def __aenter__(self) -> RunChannel:
        from legion_nb.engine.daemon.server import DaemonServer  # noqa: PLC0415
        from legion_nb.engine.daemon.transport_unix import listen_unix  # noqa: PLC0415

        directory = _private_directory()
        self._directory = directory
        token = secrets.token_hex(32)
        self._server = DaemonServer(self._engine, token, deny=DENIED, info={"channel": "runbook"})
        try:
            self._listener = await listen_unix(str(directory / _SOCKET), self._server.handle)
            fd = os.open(directory / _TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(token)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Drop the kernel's connections, stop listening and remove the directory (token included)."""
        server, self._server = self._server, None
        listener, self._listener = self._listener, None
        if server is not None:
            await server.aclose()
        if listener is not None:
            await listener.aclose()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def _private_directory() -> Path:
    """A new 0700 directory under a short base: Unix socket paths are limited to about 104 bytes."""
    base = "/tmp" if os.path.isdir("/tmp") else None  # noqa: S108 - mkdtemp makes it private
    directory = Path(tempfile.mkdtemp(prefix="legion-run-", dir=base))
    os.chmod(directory, 0o700)
    return directory


async def connect_channel(directory: str) -> RemoteEngine:
    """The engine behind the run channel at ``directory``; consumes the channel's token file.

    Raises :class:`~legion_nb.errors.DaemonNotRunningError` when the channel is gone (the run has
    ended, or its token was already taken).
    """
    from legion_nb.engine.daemon.client import RemoteEngine  # noqa: PLC0415
    from legion_nb.engine.daemon.transport_unix import connect_unix  # noqa: PLC0415

    base = Path(directory)
    token_path = base / _TOKEN_FILE
    try:
        token = token_path.read_text(encoding="ascii").strip()
        token_path.unlink()
    except OSError as exc:
        raise DaemonNotRunningError(
            f"the runbook channel at {base} is closed or its token was already taken: "
            "a runbook connects once, with legion_nb.connect()"
        ) from exc
    socket_path = str(base / _SOCKET)

    async def opener() -> tuple[asyncio.StreamReader, LineWriter]:
        return await connect_unix(socket_path)

    try:
        reader, writer = await opener()
    except OSError as exc:
        raise DaemonNotRunningError(f"the runbook channel at {base} does not answer: {exc.strerror}") from exc
    remote = RemoteEngine(reader, writer, token=token, opener=opener)
    try:
        await remote.daemon_status()  # learns the allowed methods
    except BaseException:
        await remote.aclose()
        raise
    return remote
