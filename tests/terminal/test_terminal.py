"""ServerTerminalManager against a real SSH server: PTY sessions, resize, piped shells, ownership."""

from __future__ import annotations

import dataclasses

import pytest

from legion_nb.engine.deployment.security import SshKeyPair
from legion_nb.engine.ssh import HostKeyMismatchError, SshTarget
from legion_nb.engine.terminal import ServerTerminalManager, TerminalSession, UnknownTerminalError
from legion_nb.errors import UsageError


class _Screen:
    """What a terminal has shown so far, consumed marker by marker."""

    def __init__(self, session: TerminalSession) -> None:
        self.session = session
        self.seen = bytearray()
        self._pos = 0

    async def until(self, marker: bytes) -> None:
        while (found := self.seen.find(marker, self._pos)) < 0:
            chunk = await self.session.read()
            assert chunk, f"session ended before {marker!r}; got {bytes(self.seen)!r}"
            self.seen += chunk
        self._pos = found + len(marker)


async def test_pty_session_with_resize(target: SshTarget) -> None:
    async with ServerTerminalManager() as manager:
        session = await manager.open(target, cols=80, rows=24)
        screen = _Screen(session)
        await screen.until(b"Welcome to t1")
        await screen.until(b"legion-admin@t1:~# ")
        session.write("stty size\r")
        await screen.until(b"24 80\r\n")
        await screen.until(b"# ")
        session.resize(132, 43)
        assert manager.list()[0].cols == 132
        session.write(b"stty size\r")
        await screen.until(b"43 132\r\n")
        session.write("hostname\r")
        await screen.until(b"t1\r\n")
        session.write("exit\r")
        async for chunk in session.stream():
            screen.seen += chunk
        assert await session.wait() == 0


async def test_piped_shell_keeps_stderr_apart(target: SshTarget) -> None:
    async with ServerTerminalManager() as manager:
        session = await manager.open(target, pty=False)
        session.write("hostname\nnope\necho done\n")
        session.write_eof()
        out = b"".join([chunk async for chunk in session.stream()])
        assert out == b"t1\ndone\n"
        assert await session.read_stderr() == b"sh: nope: command not found\n"
        assert await session.wait() == 0
        with pytest.raises(UsageError, match="no PTY to resize"):
            session.resize(100, 30)


async def test_sessions_are_owned_and_closed(target: SshTarget) -> None:
    manager = ServerTerminalManager()
    first = await manager.open(target)
    second = await manager.open(target, pty=False)
    assert [info.id for info in manager.list()] == [first.id, second.id]
    assert "PRIVATE" not in repr(manager.list())
    await manager.close(first.id)
    assert first.closed and [info.id for info in manager.list()] == [second.id]
    with pytest.raises(UnknownTerminalError, match=f"terminal {first.id} to t1 is closed"):
        first.write("hostname\n")
    with pytest.raises(UnknownTerminalError, match="no open terminal 't1'"):
        manager.get("t1")
    await manager.aclose()
    assert second.closed and manager.list() == []
    with pytest.raises(UsageError, match="terminal manager is closed"):
        await manager.open(target)


async def test_open_refuses_a_changed_host_key(target: SshTarget) -> None:
    async with ServerTerminalManager() as manager:
        with pytest.raises(HostKeyMismatchError, match="node t1 presented host key"):
            await manager.open(
                dataclasses.replace(target, pinned_host_key=SshKeyPair.generate().public_openssh)
            )
        assert manager.list() == []


async def test_bad_sizes_are_usage_errors(target: SshTarget) -> None:
    async with ServerTerminalManager() as manager:
        with pytest.raises(UsageError, match="terminal size 0x24 is not valid"):
            await manager.open(target, cols=0)
        session = await manager.open(target)
        with pytest.raises(UsageError, match="terminal size 10x0 is not valid"):
            session.resize(10, 0)


async def test_session_ends_when_the_node_reboots(target: SshTarget) -> None:
    async with ServerTerminalManager() as manager:
        session = await manager.open(target, pty=False)
        session.write("reboot\n")
        out = b"".join([chunk async for chunk in session.stream()])
        assert out == b""
