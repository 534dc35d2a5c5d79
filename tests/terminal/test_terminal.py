"""ServerTerminalManager against a real SSH server: PTY sessions, resize, piped shells, ownership."""

from __future__ import annotations

import dataclasses

import pytest

from legion_nb.engine.deployment.security import SshKeyPair
from legion_nb.engine.ssh import HostKeyMismatchError, SshTarget
from legion_nb.engine.terminal import (
    ServerTerminalManager,
    TerminalService,
    TerminalSession,
    UnknownTerminalError,
)
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


async def test_service_by_node_name_with_text_polls(target: SshTarget) -> None:
    async def resolve(name: str) -> SshTarget:
        if name != "t1":
            raise UsageError(f"no node {name!r}")
        return target

    async with ServerTerminalManager() as manager:
        service = TerminalService(manager, resolve)
        with pytest.raises(UsageError, match="no node 'x'"):
            await service.open("x")
        info = await service.open("t1", cols=90, rows=20)
        assert (info.node, info.cols, info.rows, info.pty) == ("t1", 90, 20, True)
        text = ""
        while "# " not in text:
            text += (await service.read(info.id, wait=5.0)).data
        assert (await service.read(info.id)).data == ""  # nothing new, no waiting
        service.write(info.id, "echo héllo\r")
        assert service.resize(info.id, 100, 30).cols == 100
        while "héllo\r\n" not in text:
            text += (await service.read(info.id, wait=5.0)).data
        service.write(info.id, "false\rexit\r")
        polled = await service.read(info.id, wait=5.0)
        while not polled.closed:
            polled = await service.read(info.id, wait=5.0)
        assert polled.exit_status == 1
        assert [t.id for t in service.list()] == [info.id]
        await service.close(info.id)
        assert service.list() == []
        with pytest.raises(UnknownTerminalError):
            await service.read(info.id)
