"""``legion terminal NAME``: a shell on a managed node over pinned-host-key SSH.

On a TTY it is interactive: the local terminal goes raw, keystrokes go to a PTY on the node, and
window size changes follow (SIGWINCH). With stdin piped it runs the piped commands in the node's
shell, prints their output (stdout to stdout, stderr to stderr) and exits with the shell's status::

    echo hostname | legion terminal web-1

By name, the node is reached through the engine API (in process, or through the daemon with its
token): its tracked address, the admin key and the pinned host key deployment stored in the state,
none of which ever reaches this process when a daemon serves it. The connection can also be given
directly, overriding the state: ``--host``, ``--port``, ``--user``, ``--identity`` (the OpenSSH
private key file) and ``--host-key`` (a file holding the node's public host key line, or the line
itself). No host key, no connection: Legion never trusts a node's key on first use here.
With ``--password-stdin`` the first stdin line is the password and the rest is the piped script.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext
from legion_nb.errors import UsageError

if TYPE_CHECKING:
    from legion_nb.engine.ssh import SshTarget
    from legion_nb.engine.terminal import TerminalSession

__all__ = ["register"]


def register(sub: Any) -> None:
    terminal = sub.add_parser("terminal", help="SSH shell on a node: interactive on a TTY, piped otherwise")
    terminal.add_argument("name", metavar="NAME", help="the node (server) name")
    terminal.add_argument("--host", help="override: the node's address (then --identity, --host-key)")
    terminal.add_argument("--port", type=int, default=22, help="with --host: SSH port (default 22)")
    terminal.add_argument(
        "--user", default="legion-admin", help="with --host: login user (default legion-admin)"
    )
    terminal.add_argument("--identity", metavar="FILE", help="with --host: OpenSSH private key file")
    terminal.add_argument(
        "--host-key", metavar="FILE|LINE", help="with --host: the node's pinned public host key"
    )
    terminal.set_defaults(handler=terminal_command)


def _target(args: argparse.Namespace) -> SshTarget:
    from legion_nb.engine.ssh import SshTarget  # noqa: PLC0415

    if args.identity is None or args.host_key is None:
        raise UsageError("--host needs --identity and --host-key too; or give only the node's name")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port; use 1-65535")
    try:
        client_key = Path(args.identity).read_text()
    except OSError as exc:
        raise UsageError(
            f"--identity {args.identity}: {exc.strerror or exc}; name a readable key file"
        ) from exc
    host_key = args.host_key.strip()
    if not host_key.startswith(("ssh-", "ecdsa-")):
        try:
            host_key = Path(host_key).read_text().strip()
        except OSError as exc:
            raise UsageError(
                f"--host-key {args.host_key}: not a key line and not a readable file ({exc.strerror or exc})"
            ) from exc
    return SshTarget(
        node=args.name,
        host=args.host,
        port=args.port,
        username=args.user,
        pinned_host_key=host_key,
        client_key=client_key,
    )


async def terminal_command(ctx: CliContext, args: argparse.Namespace) -> int:
    import shutil  # noqa: PLC0415 - kept off the start-up path of every other command

    from legion_nb.engine.terminal import ServerTerminalManager  # noqa: PLC0415

    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not ctx.password_stdin
    if args.host is None:
        return await _by_name(ctx, args.name, interactive)
    target = _target(args)
    if ctx.password_stdin:
        ctx.password()  # the first line is the password; what follows is the script
    script = "" if interactive else ctx.stdin_rest()
    async with ServerTerminalManager() as manager:
        if interactive:
            cols, rows = shutil.get_terminal_size()
            session = await manager.open(target, pty=True, cols=cols, rows=rows)
            return await _interactive(session)
        session = await manager.open(target, pty=False)
        return await _piped(session, script)


async def _piped(session: TerminalSession, script: str) -> int:
    if script:
        session.write(script if script.endswith("\n") else script + "\n")
    session.write_eof()
    async for chunk in session.stream():
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    status = await session.wait()
    err = await session.read_stderr()
    if err:
        sys.stderr.buffer.write(err)
        sys.stderr.flush()
    return min(max(status, 0), 255)


async def _interactive(session: TerminalSession) -> int:
    """Raw local TTY <-> remote PTY until the remote shell exits."""
    import asyncio  # noqa: PLC0415 - kept off the start-up path of every other command
    import shutil  # noqa: PLC0415
    import termios  # noqa: PLC0415 - POSIX only, needed only here
    import tty  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)

    def on_input() -> None:
        data = os.read(fd, 4096)
        if data:
            session.write(data)
        else:
            loop.remove_reader(fd)
            session.write_eof()

    def on_resize() -> None:
        cols, rows = shutil.get_terminal_size()
        session.resize(cols, rows)

    tty.setraw(fd)
    loop.add_reader(fd, on_input)
    loop.add_signal_handler(signal.SIGWINCH, on_resize)
    try:
        async for chunk in session.stream():
            os.write(sys.stdout.fileno(), chunk)
        return min(max(await session.wait(), 0), 255)
    finally:
        loop.remove_reader(fd)
        loop.remove_signal_handler(signal.SIGWINCH)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _by_name(ctx: CliContext, name: str, interactive: bool) -> int:
    """A shell on node ``name`` through the engine API: where it is and its keys come from the state."""
    import shutil  # noqa: PLC0415

    async with ctx.api() as api:  # reads the password line first, so the rest of stdin is the script
        script = "" if interactive else ctx.stdin_rest()
        if not interactive:
            opened = await api.terminal_open(name, pty=False)
            try:
                await api.terminal_write(
                    opened["id"], script if not script or script.endswith("\n") else script + "\n", eof=True
                )
                return await _drain(api, opened["id"])
            finally:
                await _close_quietly(api, opened["id"])
        cols, rows = shutil.get_terminal_size()
        opened = await api.terminal_open(name, cols=cols, rows=rows)
        try:
            return await _interactive_api(api, opened["id"])
        finally:
            await _close_quietly(api, opened["id"])


async def _drain(api: Any, terminal_id: str) -> int:
    """Copy the node's output to stdout until its shell ends; its exit status."""
    while True:
        out = await api.terminal_read(terminal_id, wait=1.0)
        if out["data"]:
            sys.stdout.write(out["data"])
            sys.stdout.flush()
        if out["closed"]:
            if out.get("stderr"):
                sys.stderr.write(out["stderr"])
                sys.stderr.flush()
            status = out["exit_status"]
            return 255 if status is None else min(max(status, 0), 255)


async def _close_quietly(api: Any, terminal_id: str) -> None:
    import contextlib  # noqa: PLC0415

    from legion_nb.errors import LegionError  # noqa: PLC0415

    with contextlib.suppress(LegionError):  # already ended with its shell: nothing left to close
        await api.terminal_close(terminal_id)


async def _interactive_api(api: Any, terminal_id: str) -> int:
    """Raw local TTY <-> a PTY on the node, through the engine API, until the remote shell exits."""
    import asyncio  # noqa: PLC0415
    import codecs  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import termios  # noqa: PLC0415 - POSIX only, needed only here
    import tty  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    keys: asyncio.Queue[bytes] = asyncio.Queue()

    def on_input() -> None:
        data = os.read(fd, 4096)
        keys.put_nowait(data)
        if not data:
            loop.remove_reader(fd)

    async def forward() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            data = await keys.get()
            await api.terminal_write(terminal_id, decoder.decode(data, final=not data), eof=not data)
            if not data:
                return

    resizes: set[asyncio.Task[Any]] = set()

    def on_resize() -> None:
        cols, rows = shutil.get_terminal_size()
        task = loop.create_task(api.terminal_resize(terminal_id, cols, rows))
        resizes.add(task)
        task.add_done_callback(resizes.discard)

    tty.setraw(fd)
    loop.add_reader(fd, on_input)
    loop.add_signal_handler(signal.SIGWINCH, on_resize)
    sender = asyncio.ensure_future(forward())
    try:
        while True:
            out = await api.terminal_read(terminal_id, wait=0.5)
            if out["data"]:
                os.write(sys.stdout.fileno(), out["data"].encode())
            if out["closed"]:
                status = out["exit_status"]
                return 255 if status is None else min(max(status, 0), 255)
    finally:
        sender.cancel()
        loop.remove_reader(fd)
        loop.remove_signal_handler(signal.SIGWINCH)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
