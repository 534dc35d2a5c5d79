"""Connections that never authenticate cannot starve the ones that do.

Each test serves the engine double with small :class:`ConnectionLimits` so that a deadline or a
cap is reached by a handful of connections; the CLI test in ``test_cli.py`` holds 2,000 silent
connections against the default limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from daemonkit import DoubleEngine, Raw, Running, request, start_daemon

from legion_nb.engine.daemon.server import ConnectionLimits


async def serving(state_path: Path, limits: ConnectionLimits) -> AsyncIterator[Running]:
    running = await start_daemon(state_path, DoubleEngine(), limits=limits)
    try:
        yield running
    finally:
        if not running.task.done():
            await running.finish()


@pytest.fixture
async def short_deadline(runtime_dir: Path, state_path: Path) -> AsyncIterator[Running]:
    async for running in serving(state_path, ConnectionLimits(auth_deadline=0.2)):
        yield running


@pytest.fixture
async def few_pending(runtime_dir: Path, state_path: Path) -> AsyncIterator[Running]:
    async for running in serving(state_path, ConnectionLimits(auth_deadline=600, pending=4)):
        yield running


@pytest.fixture
async def few_authenticated(runtime_dir: Path, state_path: Path) -> AsyncIterator[Running]:
    async for running in serving(state_path, ConnectionLimits(authenticated=2)):
        yield running


def error_code(reply: dict[str, object] | None) -> object:
    assert reply is not None
    error = reply.get("error")
    assert isinstance(error, dict), reply
    return error["code"]


async def test_a_silent_connection_is_closed_at_its_authentication_deadline(short_deadline: Running) -> None:
    silent = await Raw.open(short_deadline.endpoint)
    reply = await silent.receive()
    assert error_code(reply) == "daemon_auth"
    assert reply is not None
    assert "within 0.2 s" in reply["error"]["message"]
    assert await silent.closed_by_peer()


async def test_a_half_sent_line_does_not_extend_the_deadline(short_deadline: Running) -> None:
    slow = await Raw.open(short_deadline.endpoint)
    await slow.send(b'{"id": 1, "token": "aaaa')
    assert error_code(await slow.receive()) == "daemon_auth"
    assert await slow.closed_by_peer()


async def test_an_authenticated_connection_outlives_the_deadline(short_deadline: Running) -> None:
    client = await Raw.open(short_deadline.endpoint)
    assert (await client.ask(request("status", id=1)) or {}).get("result")
    later = await Raw.open(short_deadline.endpoint)  # opened after the client authenticated
    assert error_code(await later.receive()) == "daemon_auth"  # its deadline has passed, so has the client's
    reply = await client.ask(request("status", id=2))
    assert reply is not None
    assert reply["id"] == 2
    assert reply["result"]["unlocked"] is True
    await client.close()


async def test_beyond_the_pending_cap_the_oldest_silent_connection_is_dropped(few_pending: Running) -> None:
    silent = [await Raw.open(few_pending.endpoint) for _ in range(10)]
    for dropped in silent[:6]:
        assert error_code(await dropped.receive()) == "daemon_busy"
        assert await dropped.closed_by_peer()
    client = await Raw.open(few_pending.endpoint)  # pending too until its line: drops silent[6]
    reply = await client.ask(request("status"))
    assert reply is not None
    assert reply["result"]["unlocked"] is True
    assert reply["result"]["connections"] == 4  # silent[7:] and the client
    assert error_code(await silent[6].receive()) == "daemon_busy"
    for connection in [*silent, client]:
        await connection.close()


async def test_beyond_the_authenticated_cap_a_client_is_told_the_daemon_is_busy(
    few_authenticated: Running,
) -> None:
    served = [await Raw.open(few_authenticated.endpoint) for _ in range(2)]
    for number, connection in enumerate(served):
        assert (await connection.ask(request("status", id=number)) or {}).get("result")
    third = await Raw.open(few_authenticated.endpoint)
    reply = await third.ask(request("status", id=9))
    assert error_code(reply) == "daemon_busy"
    assert reply is not None
    assert reply["id"] == 9
    assert await third.closed_by_peer()
    for connection in served:  # the two served ones are untouched
        assert (await connection.ask(request("status", id=5)) or {}).get("result")
        await connection.close()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ConnectionLimits(pending=0)
    assert "auth_deadline=5.0" in repr(ConnectionLimits())


async def test_the_oldest_pending_connection_is_dropped_even_while_it_sends(few_pending: Running) -> None:
    """A half-sent line is still pending: it counts against the cap like a silent connection."""
    slow = await Raw.open(few_pending.endpoint)
    await slow.send(b'{"id": 1')
    others = [await Raw.open(few_pending.endpoint) for _ in range(4)]
    assert error_code(await slow.receive()) == "daemon_busy"
    await asyncio.gather(*(connection.close() for connection in [slow, *others]))
