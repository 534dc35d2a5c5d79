"""``legion terminal NAME`` with piped stdin, as a real subprocess against a simulated node."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import sys
import termios
from pathlib import Path

import pytest

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.deployment.security import SshKeyPair


@pytest.fixture
def key_files(tmp_path: Path, node: SimulatedNode, admin_key: SshKeyPair) -> tuple[Path, Path]:
    identity = tmp_path / "admin.key"
    identity.write_text(admin_key.private_openssh)
    identity.chmod(0o600)
    host_key = tmp_path / "t1.pub"
    host_key.write_text(node.host_public_key + "\n")
    return identity, host_key


async def _legion(*args: str, stdin: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LEGION_PASSWORD", "LEGION_DAEMON_TOKEN")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legion_nb",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate(stdin.encode())
    return proc.returncode or 0, out.decode(), err.decode()


def _args(node: SimulatedNode, identity: Path, host_key: Path | str) -> list[str]:
    return [
        "terminal",
        "t1",
        "--host",
        node.address,
        "--port",
        str(node.ssh_port),
        "--identity",
        str(identity),
        "--host-key",
        str(host_key),
    ]


async def test_piped_commands_run_on_the_node(node: SimulatedNode, key_files: tuple[Path, Path]) -> None:
    identity, host_key = key_files
    code, out, err = await _legion(*_args(node, identity, host_key), stdin="hostname\nwhoami\n")
    assert (code, out, err) == (0, "t1\nlegion-admin\n", "")


async def test_password_line_is_not_a_command(node: SimulatedNode, key_files: tuple[Path, Path]) -> None:
    identity, _ = key_files
    args = ["--password-stdin", *_args(node, identity, node.host_public_key)]
    code, out, err = await _legion(*args, stdin="secret-password\nhostname\nfalse\n")
    assert (code, out) == (1, "t1\n")
    assert "secret-password" not in out + err


async def test_changed_host_key_exits_7_with_one_line(
    node: SimulatedNode, key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    identity, _ = key_files
    wrong = tmp_path / "wrong.pub"
    wrong.write_text(SshKeyPair.generate().public_openssh)
    code, out, err = await _legion(*_args(node, identity, wrong), stdin="hostname\n")
    assert code == 7 and out == ""
    assert err.count("\n") == 1 and "legion: node t1 presented host key SHA256:" in err


async def test_unreadable_identity_is_a_usage_error(node: SimulatedNode, tmp_path: Path) -> None:
    code, _, err = await _legion(*_args(node, tmp_path / "missing", node.host_public_key), stdin="")
    assert code == 2 and err.startswith("legion: --identity") and err.count("\n") == 1


async def test_interactive_on_a_tty(node: SimulatedNode, key_files: tuple[Path, Path]) -> None:
    """On a TTY the local terminal goes raw and keystrokes reach a PTY shell on the node."""
    identity, host_key = key_files
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("LEGION_PASSWORD", "LEGION_DAEMON_TOKEN")}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legion_nb",
        *_args(node, identity, host_key),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    seen = bytearray()
    ready = asyncio.Event()

    def on_output() -> None:
        try:
            seen.extend(os.read(master, 4096))
        except OSError:  # the child closed the terminal
            loop.remove_reader(master)
        ready.set()

    async def until(marker: bytes) -> None:
        while marker not in seen:
            ready.clear()
            await ready.wait()

    loop.add_reader(master, on_output)
    try:
        await until(b"legion-admin@t1:~# ")
        os.write(master, b"stty size\r")
        await until(b"30 100")
        os.write(master, b"exit\r")
        assert await proc.wait() == 0
    finally:
        loop.remove_reader(master)
        os.close(master)
