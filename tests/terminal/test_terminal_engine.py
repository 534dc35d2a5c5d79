"""The engine's terminal API: a node reached by name from what the state records, nothing else."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nodekit import node_engine, record_node

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.node_terminals import NodeTargetError
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import LegionState
from legion_nb.engine.terminal import UnknownTerminalError
from legion_nb.errors import LockedError, NotTrackedError, UsageError

PASSWORD = "terminal test password"


@pytest.fixture
async def engine(tmp_path: Path, node: SimulatedNode) -> AsyncIterator[Engine]:
    async with node_engine(tmp_path / "state.legion", node, PASSWORD) as eng:
        yield eng


async def read_until(engine: Engine, terminal: str, marker: str, seen: list[str]) -> str:
    """Poll until ``marker`` has appeared in the output; returns everything read so far."""
    while marker not in "".join(seen):
        out = await engine.terminal_read(terminal, wait=5)
        assert not out["closed"], f"terminal ended before {marker!r}: {''.join(seen)!r}"
        seen.append(out["data"])
    return "".join(seen)


async def test_open_by_name_runs_a_command_on_the_node(engine: Engine, node: SimulatedNode) -> None:
    await record_node(engine, node, "t1")
    opened = await engine.terminal_open("t1", cols=100, rows=30)
    assert (opened["node"], opened["host"], opened["cols"], opened["rows"]) == ("t1", node.address, 100, 30)
    seen: list[str] = []
    await read_until(engine, opened["id"], "legion-admin@t1:~# ", seen)
    await engine.terminal_write(opened["id"], "hostname\r")
    assert "hostname\r\nt1\r\n" in await read_until(engine, opened["id"], "t1\r\n", seen)
    resized = await engine.terminal_resize(opened["id"], 132, 43)
    assert (resized["cols"], resized["rows"]) == (132, 43)
    await engine.terminal_write(opened["id"], "stty size\r")
    await read_until(engine, opened["id"], "43 132", seen)
    assert [t["id"] for t in await engine.terminal_list()] == [opened["id"]]
    await engine.terminal_write(opened["id"], "exit\r")
    while not (out := await engine.terminal_read(opened["id"], wait=5))["closed"]:
        pass
    assert out["exit_status"] == 0
    assert await engine.terminal_close(opened["id"]) == {"id": opened["id"], "closed": True}
    assert await engine.terminal_list() == []


async def test_listing_shows_no_key(engine: Engine, node: SimulatedNode) -> None:
    security = await record_node(engine, node, "t1")
    await engine.terminal_open("t1")
    listed = repr(await engine.terminal_list())
    assert security.admin.ssh_key.private_openssh not in listed and "PRIVATE" not in listed


async def test_untracked_server_is_one_line(engine: Engine) -> None:
    # An unknown name is the operator's input, not a node fault: exit 2, as for `server reboot`.
    with pytest.raises(NotTrackedError, match=r"^server ghost is not tracked: materialize it") as info:
        await engine.terminal_open("ghost")
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(NotTrackedError) as reboot:
        await engine.server_reboot("ghost")
    assert reboot.value.exit_code == info.value.exit_code


async def test_missing_material_or_address_says_what_is_missing(engine: Engine, node: SimulatedNode) -> None:
    await record_node(engine, node, "t1")

    def strip(state: LegionState) -> tuple[LegionState, Any]:
        deployment = dataclasses.replace(state.deployment, nodes={})
        return dataclasses.replace(state, deployment=deployment), None

    await engine.assert_unlocked().mutate(strip, reason="test: drop node material")
    with pytest.raises(NodeTargetError, match=r"^server t1 has no node security material"):
        await engine.terminal_open("t1")

    def no_address(state: LegionState) -> tuple[LegionState, Any]:
        server = dataclasses.replace(state.tracked.servers["t1"], ipv4=None)
        tracked = dataclasses.replace(state.tracked, servers={"t1": server})
        return dataclasses.replace(state, tracked=tracked), None

    await engine.assert_unlocked().mutate(no_address, reason="test: no address")
    with pytest.raises(NodeTargetError, match=r"^server t1 has no address in the state yet"):
        await engine.terminal_open("t1")


async def test_bad_input_is_refused(engine: Engine, node: SimulatedNode) -> None:
    await record_node(engine, node, "t1")
    with pytest.raises(UnknownTerminalError, match="no open terminal 't9'"):
        await engine.terminal_write("t9", "ls\r")
    with pytest.raises(UsageError, match="terminal size 0x24 is not valid"):
        await engine.terminal_open("t1", cols=0, rows=24)
    opened = await engine.terminal_open("t1")
    with pytest.raises(UsageError, match="terminal read wait 99 is not valid"):
        await engine.terminal_read(opened["id"], wait=99)
    assert [t["id"] for t in await engine.terminal_list()] == [opened["id"]]


async def test_logout_closes_every_terminal(engine: Engine, node: SimulatedNode) -> None:
    await record_node(engine, node, "t1")
    opened = await engine.terminal_open("t1")
    await engine.logout()
    with pytest.raises(LockedError):
        await engine.terminal_list()
    await engine.unlock(PASSWORD)
    assert await engine.terminal_list() == []
    with pytest.raises(UnknownTerminalError):
        await engine.terminal_read(opened["id"])


async def test_closing_while_a_read_waits_ends_that_read_with_one_line(
    engine: Engine, node: SimulatedNode
) -> None:
    """A panel closing its terminal while its own poll is still waiting (over the daemon the poll
    cannot be cancelled from the client) gets a clear error, not a crash inside the engine."""
    await record_node(engine, node, "t1")
    opened = await engine.terminal_open("t1")
    seen: list[str] = []
    await read_until(engine, opened["id"], "# ", seen)
    waiting = asyncio.create_task(engine.terminal_read(opened["id"], wait=30))
    await asyncio.sleep(0)  # one step: the read parks on the session's output queue
    await engine.terminal_close(opened["id"])
    with pytest.raises(UnknownTerminalError, match=r"^terminal t\d+ was closed while it was being read$"):
        await waiting
