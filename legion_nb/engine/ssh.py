"""SSH to managed nodes, with the node's host key pinned: the engine's only door to asyncssh.

Why pinning and nothing else: Legion generated the node's host key itself (see
:mod:`legion_nb.engine.deployment.identity`), so it knows the one key the node may present. The
``known_hosts`` given to asyncssh holds exactly that key; ``~/.ssh/known_hosts``, agents and
config files are never consulted. A node presenting any other key is refused with
:class:`HostKeyMismatchError`, which names the node and both fingerprints, so the operator can tell
a reinstalled node (expected: update the pin) from an impostor.

* :class:`SshTarget` - where and as whom: host, port, user, client key, pinned host key.
* :class:`SshOptions` - every timeout and keepalive, in one place.
* :class:`ReconnectPolicy` - how long to keep knocking while a node reboots (a value; tests pass
  zero delays and a fake ``sleep``).
* :func:`connect` / :func:`connect_with_retry` -> :class:`SshConnection`:
  ``run(cmd) -> CommandResult``, ``open_terminal(...) -> TerminalChannel`` (a PTY shell),
  ``open_shell()`` for piped scripts.

Every asyncssh exception is translated here (:func:`_translate`); callers see only
:class:`~legion_nb.errors.NodeError` subclasses: :class:`HostKeyMismatchError`,
:class:`NodeAuthError`, :class:`NodeUnreachableError` (temporary) and :class:`NodeCommandError`.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import asyncssh

from legion_nb.errors import NodeError

__all__ = [
    "CommandResult",
    "HostKeyMismatchError",
    "NodeAuthError",
    "NodeCommandError",
    "NodeUnreachableError",
    "ReconnectPolicy",
    "SshConnection",
    "SshOptions",
    "SshTarget",
    "TerminalChannel",
    "connect",
    "connect_with_retry",
    "key_fingerprint",
    "scan_host_key",
]


class HostKeyMismatchError(NodeError):
    """The node presented a host key other than the pinned one: possibly not our node."""

    code = "host_key_mismatch"

    def __init__(self, node: str, expected: str, presented: str | None) -> None:
        self.node, self.expected, self.presented = node, expected, presented
        shown = presented or "a key of another type"
        super().__init__(
            f"node {node} presented host key {shown}, but Legion pinned {expected}; refusing to connect "
            "(if the node was reinstalled outside Legion, re-deploy it; otherwise treat it as an impostor)"
        )


class NodeAuthError(NodeError):
    """The node refused Legion's client key."""

    code = "node_auth"


class NodeUnreachableError(NodeError):
    """The node did not answer (down, rebooting, timed out); trying again later may work."""

    code = "node_unreachable"
    temporary = True


class NodeCommandError(NodeError):
    """A command on the node failed or the session broke mid-command."""

    code = "node_command"


def key_fingerprint(public_openssh: str) -> str:
    """``SHA256:...`` of a public key line, as asyncssh computes it."""
    return str(_import_public(public_openssh, "key").get_fingerprint("sha256"))


@dataclass(frozen=True, slots=True)
class SshTarget:
    """One node as an SSH endpoint; the client key is the secret and stays out of reprs."""

    node: str
    host: str
    pinned_host_key: str
    client_key: str = field(repr=False)
    port: int = 22
    username: str = "root"


@dataclass(frozen=True, slots=True)
class SshOptions:
    """Timeouts (seconds) and keepalives for node sessions; one value shared by every caller."""

    connect_timeout: float = 15.0
    """TCP connect plus key exchange and login."""
    command_timeout: float | None = 600.0
    """A single ``run``; install steps can be slow, so this is generous. ``None``: no limit."""
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    """A node silent for ``interval * count_max`` seconds is considered gone."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff for reconnecting across reboots: ``initial * factor**n``, capped."""

    attempts: int = 30
    initial_delay: float = 1.0
    max_delay: float = 10.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """The pauses between attempts (``attempts - 1`` of them)."""
        delay = self.initial_delay
        for _ in range(max(0, self.attempts - 1)):
            yield min(delay, self.max_delay)
            delay *= self.factor


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class _PinnedClient(asyncssh.SSHClient):
    """Remembers the host key a node presented when it was not the pinned one (for the error)."""

    def __init__(self) -> None:
        self.presented: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key
        return False


async def connect(target: SshTarget, options: SshOptions | None = None) -> SshConnection:
    """Open an SSH connection to ``target``, accepting only its pinned host key."""
    opts = options or SshOptions()
    pinned = _import_public(target.pinned_host_key, f"pinned host key of {target.node}")
    client_key = _import_private(target.client_key, target.node)
    client = _PinnedClient()
    try:
        conn, _ = await asyncssh.create_connection(
            lambda: client,
            target.host,
            target.port,
            username=target.username,
            client_keys=[client_key],
            known_hosts=([pinned], [], []),
            server_host_key_algs=[pinned.get_algorithm()],
            agent_path=None,
            config=[],
            password=None,
            kbdint_auth=False,
            gss_auth=False,
            connect_timeout=opts.connect_timeout,
            login_timeout=opts.connect_timeout,
            keepalive_interval=opts.keepalive_interval,
            keepalive_count_max=opts.keepalive_count_max,
        )
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        if isinstance(exc, asyncssh.HostKeyNotVerifiable) or (
            isinstance(exc, asyncssh.KeyExchangeFailed) and client.presented is None and _no_host_key_alg(exc)
        ):
            presented = client.presented.get_fingerprint("sha256") if client.presented else None
            raise HostKeyMismatchError(target.node, pinned.get_fingerprint("sha256"), presented) from exc
        raise _translate(exc, target) from exc
    return SshConnection(conn, target, opts)


async def scan_host_key(node: str, host: str, port: int = 22, options: SshOptions | None = None) -> str:
    """The host key a server presents, unverified (``ssh-keyscan``): trust on first use, made explicit.

    Only for the window before Legion's own key is installed (a fresh cloud image generated its host
    key itself); the caller records the result and pins it from then on.
    """
    opts = options or SshOptions()
    try:
        async with asyncio.timeout(opts.connect_timeout):
            key = await asyncssh.get_server_host_key(host, port, config=[])
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        target = SshTarget(node=node, host=host, pinned_host_key="", client_key="", port=port)
        raise _translate(exc, target) from exc
    if key is None:
        raise NodeCommandError(f"node {node} ({host}:{port}) presented no host key; it cannot be pinned")
    return str(key.export_public_key("openssh").decode("ascii").strip())


async def connect_with_retry(
    target: SshTarget,
    policy: ReconnectPolicy | None = None,
    options: SshOptions | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SshConnection:
    """:func:`connect`, retried on :class:`NodeUnreachableError` (a reboot) per ``policy``.

    Host key mismatches and refused keys are never retried: waiting does not fix them.
    """
    delays = (policy or ReconnectPolicy()).delays()
    while True:
        try:
            return await connect(target, options)
        except NodeUnreachableError:
            delay = next(delays, None)
            if delay is None:
                raise
            await sleep(delay)


class SshConnection:
    """A live, pinned SSH connection to one node. An async context manager; ``aclose()`` ends it."""

    def __init__(self, conn: asyncssh.SSHClientConnection, target: SshTarget, options: SshOptions) -> None:
        self._conn = conn
        self.target = target
        self._options = options

    @property
    def node(self) -> str:
        return self.target.node

    async def run(
        self, command: str, *, input: str | None = None, time_limit: float | None = None
    ) -> CommandResult:
        """Run ``command``; a non-zero exit is a result, not an error (the caller decides)."""
        limit = time_limit if time_limit is not None else self._options.command_timeout
        _raise_if_cancel_was_swallowed()
        try:
            async with asyncio.timeout(limit):  # unlike 3.11's wait_for, never eats a cancellation
                result = await self._conn.run(command, input=input, check=False)
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            raise _translate(exc, self.target, command=command) from exc
        status = result.exit_status if result.exit_status is not None else 255
        return CommandResult(status, _text(result.stdout), _text(result.stderr))

    async def check(self, command: str, *, input: str | None = None, time_limit: float | None = None) -> str:
        """Run ``command`` and return its stdout; a non-zero exit raises :class:`NodeCommandError`."""
        result = await self.run(command, input=input, time_limit=time_limit)
        if not result.ok:
            last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
            raise NodeCommandError(
                f"node {self.node}: '{_head(command)}' exited {result.exit_status}: {last}"
            )
        return result.stdout

    async def open_terminal(
        self, *, term: str = "xterm-256color", cols: int = 80, rows: int = 24
    ) -> TerminalChannel:
        """An interactive login shell on a PTY of ``cols`` x ``rows``."""
        try:
            process = await self._conn.create_process(
                term_type=term, term_size=(cols, rows), encoding=None, request_pty="force"
            )
        except (OSError, asyncssh.Error) as exc:
            raise _translate(exc, self.target) from exc
        return TerminalChannel(process, self.target)

    async def open_shell(self) -> TerminalChannel:
        """A shell without a PTY: write a script to it, close stdin, read the output (piped use)."""
        try:
            process = await self._conn.create_process(encoding=None, request_pty=False)
        except (OSError, asyncssh.Error) as exc:
            raise _translate(exc, self.target) from exc
        return TerminalChannel(process, self.target)

    async def aclose(self) -> None:
        self._conn.close()
        await self._conn.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the node ends the connection (e.g. it went down for a reboot)."""
        await self._conn.wait_closed()

    async def __aenter__(self) -> SshConnection:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class TerminalChannel:
    """One shell channel: bytes in, bytes out, resize, close. Output is a stream of chunks."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes], target: SshTarget) -> None:
        self._process = process
        self._target = target

    def write(self, data: bytes) -> None:
        try:
            self._process.stdin.write(data)
        except (OSError, asyncssh.Error, BrokenPipeError) as exc:
            raise _translate(exc, self._target) from exc

    def write_eof(self) -> None:
        self._process.stdin.write_eof()

    def resize(self, cols: int, rows: int) -> None:
        try:
            self._process.change_terminal_size(cols, rows)
        except (OSError, asyncssh.Error) as exc:
            raise _translate(exc, self._target) from exc

    async def output(self, chunk_size: int = 4096) -> AsyncIterator[bytes]:
        """Stdout (a PTY merges stderr into it) until the remote side closes."""
        while True:
            try:
                data = await self._process.stdout.read(chunk_size)
            except (OSError, asyncssh.Error) as exc:
                raise _translate(exc, self._target) from exc
            if not data:
                return
            yield data

    async def read_stderr(self) -> bytes:
        try:
            return await self._process.stderr.read()
        except (OSError, asyncssh.Error) as exc:
            raise _translate(exc, self._target) from exc

    async def wait(self) -> int:
        """Wait for the shell to end; its exit status (255 when the node gave none)."""
        try:
            result = await self._process.wait(check=False)
        except (OSError, asyncssh.Error) as exc:
            raise _translate(exc, self._target) from exc
        return result.exit_status if result.exit_status is not None else 255

    def close(self) -> None:
        self._process.close()

    async def aclose(self) -> None:
        self._process.close()
        await self._process.wait_closed()


def _raise_if_cancel_was_swallowed() -> None:
    """Refuse to start a node command in a task whose cancellation something already caught.

    On Python 3.11 ``asyncio.wait_for`` (inside libraries too) returns a result that completed
    just as its task was cancelled, dropping the cancellation; the task then runs on into the next
    command - an install of minutes after its session closed. The task still counts the request
    (:meth:`asyncio.Task.cancelling`), so the next command raises it again instead.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _translate(exc: BaseException, target: SshTarget, *, command: str | None = None) -> NodeError:
    """The one mapping from asyncssh/OS errors to Legion's node errors."""
    where = f"node {target.node} ({target.host}:{target.port})"
    if isinstance(exc, asyncssh.PermissionDenied):
        return NodeAuthError(
            f"{where} refused Legion's SSH key for user {target.username}; check the admin key"
        )
    if isinstance(exc, asyncio.TimeoutError):
        what = f"'{_head(command)}'" if command else "the SSH connection"
        return NodeUnreachableError(f"{where}: {what} timed out; the node may be busy or rebooting")
    if isinstance(exc, asyncssh.DisconnectError | ConnectionResetError | BrokenPipeError):
        if command:
            return NodeCommandError(
                f"{where} dropped the connection during '{_head(command)}'; retry the step"
            )
        return NodeUnreachableError(f"{where} closed the connection ({_reason(exc)}); retry when it is up")
    if isinstance(exc, OSError):
        if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
            return NodeUnreachableError(f"{where} is not accepting SSH ({_reason(exc)}); it may be rebooting")
        return NodeUnreachableError(f"{where} could not be reached: {_reason(exc)}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return NodeCommandError(f"{where} refused a session channel: {_reason(exc)}")
    return NodeCommandError(f"{where}: SSH failed: {type(exc).__name__}: {_reason(exc)}")


def _no_host_key_alg(exc: asyncssh.KeyExchangeFailed) -> bool:
    return "host key" in str(exc).lower()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _head(command: str | None) -> str:
    first = (command or "").strip().splitlines()[:1]
    text = first[0] if first else ""
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _import_public(text: str, what: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise NodeError(f"the {what} is not an OpenSSH public key; re-create it") from exc


def _import_private(text: str, node: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise NodeAuthError(f"Legion's SSH client key for node {node} cannot be read; re-create it") from exc
