"""Helpers for the daemon tests: an engine double, a daemon running in the test's loop, raw connections.

Transport and protocol tests serve :class:`DoubleEngine`, a small class with an ``@engine_api``
surface whose failures can be chosen; tests of the real engine live in ``test_real_engine.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legion_nb.engine.api import engine_api
from legion_nb.engine.daemon.endpoint import Endpoint, endpoint_for
from legion_nb.engine.daemon.host import DaemonReady, serve
from legion_nb.engine.daemon.server import ConnectionLimits
from legion_nb.errors import ValidationError

TOKEN = "a" * 24 + "0123456789abcdef0123456789abcdef"
SECRET = "hunter2-very-secret-value"


@dataclass(frozen=True)
class DoubleEvent:
    topic: str
    data: Any


class DoubleEngine:
    """An engine-shaped object: public methods marked ``@engine_api``, and some that are not."""

    def __init__(self) -> None:
        self.is_unlocked = True
        self.release = asyncio.Event()
        self.events: asyncio.Queue[DoubleEvent | None] = asyncio.Queue()
        self.closed = False

    @engine_api
    async def status(self) -> dict[str, Any]:
        return {"servers": 0}

    @engine_api
    async def echo(self, value: Any) -> Any:
        return value

    @engine_api
    async def rename(self, name: str, *, to: str) -> dict[str, str]:
        return {"from": name, "to": to}

    @engine_api
    async def refuse(self) -> None:
        raise ValidationError("server name 'Bad_Name' is not an RFC 1123 host name")

    @engine_api
    async def explode(self, password: str) -> None:
        raise RuntimeError(f"unexpected failure while using {password}")

    @engine_api
    async def blocked(self) -> str:
        await self.release.wait()
        return "released"

    @engine_api
    async def logout(self) -> dict[str, bool]:
        self.is_unlocked = False
        return {"unlocked": False}

    @engine_api
    async def publish(self, data: Any) -> None:
        await self.events.put(DoubleEvent("snapshot", data))

    async def helper(self) -> str:
        return "not public"

    async def _store(self) -> str:
        return "private"

    async def subscribe(self, topics: list[str]) -> AsyncIterator[DoubleEvent]:
        while (event := await self.events.get()) is not None:
            if event.topic in topics:
                yield event

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Running:
    endpoint: Endpoint
    token: str
    engine: Any
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def start_daemon(
    state_path: Path, engine: Any, token: str = TOKEN, *, limits: ConnectionLimits | None = None
) -> Running:
    """Serve ``engine`` for ``state_path`` in this loop; returns once the endpoint accepts connections."""
    endpoint = endpoint_for(state_path)
    ready = asyncio.Event()
    stop = asyncio.Event()

    async def open_engine() -> Any:
        return engine

    def on_ready(_: DaemonReady) -> None:
        ready.set()

    task = asyncio.create_task(
        serve(endpoint, open_engine, token, on_ready=on_ready, stop=stop, limits=limits)
    )
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises what serve raised
    return Running(endpoint=endpoint, token=token, engine=engine, stop=stop, task=task)


class Raw:
    """A bare connection speaking lines, for tests that must send what a good client never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, endpoint: Endpoint) -> Raw:
        reader, writer = await asyncio.open_unix_connection(endpoint.address, limit=64 << 20)
        return cls(reader, writer)

    async def send(self, line: bytes | dict[str, Any]) -> None:
        data = line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n"
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        line = await asyncio.wait_for(self.reader.readline(), 30)
        return json.loads(line) if line else None

    async def ask(self, line: bytes | dict[str, Any]) -> dict[str, Any] | None:
        await self.send(line)
        return await self.receive()

    async def closed_by_peer(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 30) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):  # the daemon closed it first
            await self.writer.wait_closed()


def request(
    method: str, params: dict[str, Any] | None = None, *, token: str = TOKEN, id: Any = 1
) -> dict[str, Any]:
    return {"id": id, "token": token, "method": method, "params": params or {}}


def call(method_name: str, /, id: Any = 1, token: str = TOKEN, **args: Any) -> dict[str, Any]:
    return request("call", {"name": method_name, "args": args}, token=token, id=id)
