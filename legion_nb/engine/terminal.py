"""SSH terminal sessions to managed nodes, owned by one manager (the seed's ServerTerminalManager).

Why a manager: a terminal outlives the call that opened it (a notebook panel, the CLI, a daemon
client writes keystrokes and reads output for minutes), so someone must own each session's
connection and its output pump, and end them all when the engine closes. Every session here has:

* its own pinned SSH connection (:mod:`legion_nb.engine.ssh`; a changed host key refuses to open);
* a pump task copying the remote output into a bounded queue (a slow reader slows the node down
  instead of growing memory without limit);
* ``write``, ``read``/``stream``, ``resize`` and ``close``; closing cancels the pump and ends the
  connection. :meth:`ServerTerminalManager.aclose` closes every session still open.

Sessions are either a PTY login shell (interactive, resizable; stderr arrives merged in the output)
or a plain shell for piped input (``legion terminal NAME < script``), whose stderr is kept apart.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from legion_nb.engine.ssh import SshConnection, SshOptions, SshTarget, TerminalChannel, connect
from legion_nb.errors import NodeError, UsageError

__all__ = [
    "ServerTerminalManager",
    "TerminalInfo",
    "TerminalOutput",
    "TerminalService",
    "TerminalSession",
    "UnknownTerminalError",
]

_QUEUE_CHUNKS = 256

Connector = Callable[[SshTarget, SshOptions | None], Awaitable[SshConnection]]


class UnknownTerminalError(UsageError):
    """No open terminal has that id (closed already, or never opened here)."""

    code = "unknown_terminal"


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    """What a listing shows about a session (no secrets: the target's key stays in the session)."""

    id: str
    node: str
    host: str
    pty: bool
    cols: int
    rows: int
    closed: bool


class TerminalSession:
    """One open shell on one node. Create through :meth:`ServerTerminalManager.open`."""

    def __init__(
        self,
        session_id: str,
        conn: SshConnection,
        channel: TerminalChannel,
        *,
        pty: bool,
        cols: int,
        rows: int,
    ) -> None:
        self.id = session_id
        self._conn = conn
        self._channel = channel
        self.pty = pty
        self.cols, self.rows = cols, rows
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)
        self._error: NodeError | None = None
        self._closed = False
        self.exit_status: int | None = None
        self._pump = asyncio.get_running_loop().create_task(
            self._pump_output(), name=f"terminal-{session_id}"
        )

    @property
    def node(self) -> str:
        return self._conn.node

    @property
    def closed(self) -> bool:
        return self._closed

    def info(self) -> TerminalInfo:
        target = self._conn.target
        return TerminalInfo(self.id, target.node, target.host, self.pty, self.cols, self.rows, self._closed)

    def write(self, data: bytes | str) -> None:
        """Send keystrokes (or script text) to the shell."""
        if self._closed:
            raise UnknownTerminalError(f"terminal {self.id} to {self.node} is closed; open a new one")
        self._channel.write(data.encode("utf-8") if isinstance(data, str) else data)

    def write_eof(self) -> None:
        """No more input (piped use): the shell runs what it got and exits."""
        if not self._closed:
            self._channel.write_eof()

    def resize(self, cols: int, rows: int) -> None:
        if not self.pty:
            raise UsageError(f"terminal {self.id} has no PTY to resize; open it with pty=True")
        if cols < 1 or rows < 1:
            raise UsageError(f"terminal size {cols}x{rows} is not valid; both must be at least 1")
        self._channel.resize(cols, rows)
        self.cols, self.rows = cols, rows

    async def read(self) -> bytes:
        """The next chunk of output; ``b""`` once the shell has ended (raises if it broke)."""
        chunk = await self._queue.get()
        if chunk is None:
            self._queue.put_nowait(None)  # keep the end marker for any later reader
            if self._error is not None:
                raise self._error
            return b""
        return chunk

    def drain(self) -> tuple[bytes, bool]:
        """All output queued so far, without waiting, and whether the shell has ended."""
        parts: list[bytes] = []
        while True:
            try:
                chunk = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return b"".join(parts), False
            if chunk is None:
                self._queue.put_nowait(None)
                if self._error is not None and not parts:
                    raise self._error
                return b"".join(parts), True
            parts.append(chunk)

    async def stream(self) -> AsyncIterator[bytes]:
        """Output chunks until the shell ends."""
        while chunk := await self.read():
            yield chunk

    async def read_stderr(self) -> bytes:
        """A plain (non-PTY) shell's stderr, once it has ended."""
        return await self._channel.read_stderr()

    async def wait(self) -> int:
        """Wait for the shell to exit; its exit status."""
        await asyncio.shield(self._pump)
        if self.exit_status is None:
            self.exit_status = await self._channel.wait()
        return self.exit_status

    async def aclose(self) -> None:
        """End the shell and its connection; cancels the output pump. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pump.cancel()
        await asyncio.gather(self._pump, return_exceptions=True)
        self._channel.close()
        await self._conn.aclose()

    async def _pump_output(self) -> None:
        try:
            async for chunk in self._channel.output():
                await self._queue.put(chunk)
        except NodeError as exc:
            self._error = exc
        finally:
            # The end marker must get in even if the queue is full and nobody reads any more.
            while True:
                try:
                    self._queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    self._queue.get_nowait()


class ServerTerminalManager:
    """Opens, tracks and closes terminal sessions; an async context manager."""

    def __init__(self, *, options: SshOptions | None = None, connector: Connector | None = None) -> None:
        self._options = options
        self._connector: Connector = connector or connect
        self._sessions: dict[str, TerminalSession] = {}
        self._ids = itertools.count(1)
        self._closed = False

    async def open(
        self,
        target: SshTarget,
        *,
        pty: bool = True,
        cols: int = 80,
        rows: int = 24,
        term: str = "xterm-256color",
    ) -> TerminalSession:
        """A new shell on ``target`` (pinned host key). Raises the :mod:`~legion_nb.engine.ssh` errors."""
        if self._closed:
            raise UsageError("the terminal manager is closed; the engine is shutting down")
        if cols < 1 or rows < 1:
            raise UsageError(f"terminal size {cols}x{rows} is not valid; both must be at least 1")
        conn = await self._connector(target, self._options)
        try:
            channel = await (
                conn.open_terminal(term=term, cols=cols, rows=rows) if pty else conn.open_shell()
            )
        except BaseException:
            await conn.aclose()
            raise
        session = TerminalSession(f"t{next(self._ids)}", conn, channel, pty=pty, cols=cols, rows=rows)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> TerminalSession:
        session = self._sessions.get(session_id)
        if session is None:
            raise UnknownTerminalError(
                f"no open terminal {session_id!r}; list terminals to see the open ones"
            )
        return session

    def list(self) -> list[TerminalInfo]:
        return [s.info() for s in self._sessions.values()]

    async def close(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            raise UnknownTerminalError(f"no open terminal {session_id!r}; it may be closed already")
        await session.aclose()

    async def aclose(self) -> None:
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)

    async def __aenter__(self) -> ServerTerminalManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass(frozen=True, slots=True)
class TerminalOutput:
    """One poll of a terminal through the engine API: text so far, and whether the shell ended."""

    id: str
    data: str
    closed: bool
    exit_status: int | None = None
    stderr: str = ""
    """A shell without a PTY keeps its error stream apart; it comes with the poll that sees the end."""


class TerminalService:
    """Terminals by node name with JSON-shaped calls: what the engine API, daemon and widgets use.

    ``resolve`` turns a node name into its :class:`SshTarget` (address, admin key, pinned host key
    from the encrypted state); the service never sees the state itself. Output is decoded as UTF-8
    incrementally per session, so a character split across two SSH packets is never mangled.
    """

    def __init__(
        self, manager: ServerTerminalManager, resolve: Callable[[str], Awaitable[SshTarget]]
    ) -> None:
        self._manager = manager
        self._resolve = resolve
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}

    async def open(self, name: str, *, cols: int = 80, rows: int = 24, pty: bool = True) -> TerminalInfo:
        session = await self._manager.open(await self._resolve(name), pty=pty, cols=cols, rows=rows)
        self._decoders[session.id] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return session.info()

    def write(self, session_id: str, data: str, *, eof: bool = False) -> None:
        session = self._manager.get(session_id)
        if data:
            session.write(data)
        if eof:
            session.write_eof()

    def resize(self, session_id: str, cols: int, rows: int) -> TerminalInfo:
        session = self._manager.get(session_id)
        session.resize(cols, rows)
        return session.info()

    async def read(self, session_id: str, *, wait: float = 0.0) -> TerminalOutput:
        """Output since the last read; with ``wait``, up to that many seconds for the first byte."""
        session = self._manager.get(session_id)
        decoder = self._decoders[session_id]
        data, ended = session.drain()
        if not data and not ended and wait > 0:
            first: bytes | None
            try:
                async with asyncio.timeout(wait):
                    first = await session.read()
            except TimeoutError:
                first = None  # nothing within the wait: an empty poll, not an error
            if first == b"":
                ended = True
            elif first:
                more, ended = session.drain()
                data = first + more
            if session.closed:  # closed (terminal_close, logout) while this read waited
                raise UnknownTerminalError(f"terminal {session_id} was closed while it was being read")
        text = decoder.decode(data, final=ended)
        stderr = ""
        if ended and not session.pty:  # before wait(), which would take the rest of the stream
            stderr = (await session.read_stderr()).decode("utf-8", errors="replace")
        status = await session.wait() if ended else None
        return TerminalOutput(session_id, text, ended, status, stderr)

    async def close(self, session_id: str) -> None:
        self._decoders.pop(session_id, None)
        await self._manager.close(session_id)

    def list(self) -> list[TerminalInfo]:
        return self._manager.list()
