"""``legion terminal NAME``: a shell on a managed node over pinned-host-key SSH.

On a TTY it is interactive: the local terminal goes raw, keystrokes go to a PTY on the node, and
window size changes follow (SIGWINCH). With stdin piped it runs the piped commands in the node's
shell, prints their output (stdout to stdout, stderr to stderr) and exits with the shell's status::

    echo hostname | legion terminal n1 --host 127.20.0.2 --port 2222 \
        --identity admin.key --host-key n1.pub

Until deployment records each node's address, admin key and pinned host key in the state, the
connection is given directly: ``--host``, ``--port``, ``--user``, ``--identity`` (the OpenSSH private
key file) and ``--host-key`` (a file holding the node's public host key line, or the line itself).
No host key, no connection: Legion never trusts a node's key on first use here.
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
    terminal.add_argument("--host", required=True, help="the node's address")
    terminal.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    terminal.add_argument("--user", default="legion-admin", help="login user (default legion-admin)")
    terminal.add_argument("--identity", required=True, metavar="FILE", help="OpenSSH private key file")
    terminal.add_argument(
        "--host-key", required=True, metavar="FILE|LINE", help="the node's pinned public host key"
    )
    terminal.set_defaults(handler=terminal_command)


def _target(args: argparse.Namespace) -> SshTarget:
    from legion_nb.engine.ssh import SshTarget  # noqa: PLC0415

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

    target = _target(args)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not ctx.password_stdin
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
