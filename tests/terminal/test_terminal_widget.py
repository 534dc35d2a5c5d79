"""The notebook terminal panel against a real simulated node, driven as the page drives it.

Keystrokes enter through the widget's own message handler (the anywidget custom messages xterm.js
sends), output leaves through the synced ``scrollback``/``produced`` traits the page draws from.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nodekit import node_engine, record_node

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.daemon.client import connect
from legion_nb.engine.daemon.endpoint import endpoint_for
from legion_nb.engine.daemon.host import serve
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.widgets.terminal import SCROLLBACK_CHARS, TerminalPanel, _trimmed, terminal_esm

PASSWORD = "terminal widget password"


@pytest.fixture
async def engine(tmp_path: Path, node: SimulatedNode) -> AsyncIterator[Engine]:
    async with node_engine(tmp_path / "state.legion", node, PASSWORD) as eng:
        await record_node(eng, node, "t1")
        yield eng


def from_page(panel: TerminalPanel, content: Any) -> None:
    """Deliver ``content`` as the page's custom message (what ``model.send`` in terminal.js does)."""
    panel._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds; each round waits on the engine's own reads."""
    for _ in range(4000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


async def test_typed_command_runs_on_the_node_and_shows(engine: Engine, node: SimulatedNode) -> None:
    panel = TerminalPanel(engine, "t1", cols=100, rows=30, min_interval=0)
    try:
        terminal = await panel.wait_open()
        assert (panel.status, terminal) == ("open", (await engine.terminal_list())[0]["id"])
        await until(lambda: "legion-admin@t1:~# " in panel.output)
        for key in "hostname\r":  # one message per keystroke, as xterm.js sends them
            from_page(panel, {"type": "input", "data": key})
        await until(lambda: "hostname\r\nt1\r\n" in panel.output)
        assert node.hostname == "t1"
        assert panel.produced == len(panel.output)

        from_page(panel, {"type": "resize", "cols": 120, "rows": 40})
        from_page(panel, {"type": "input", "data": "stty size\r"})
        await until(lambda: "40 120" in panel.output)
        assert (panel.cols, panel.rows) == (120, 40)

        from_page(panel, {"type": "resize", "cols": 0, "rows": 40})  # ignored, logged
        from_page(panel, ["not", "an", "object"])
        from_page(panel, {"type": "input", "data": "exit\r"})
        await until(lambda: panel.status.startswith("closed"))
        assert panel.status == "closed (exit 0)"
    finally:
        await panel.aclose()
    assert await engine.terminal_list() == []


async def test_closing_the_panel_ends_the_shell(engine: Engine) -> None:
    panel = TerminalPanel(engine, "t1")
    await panel.wait_open()
    assert len(await engine.terminal_list()) == 1
    await panel.aclose()
    assert await engine.terminal_list() == []


async def test_unknown_node_shows_why_on_the_panel(engine: Engine) -> None:
    panel = TerminalPanel(engine, "ghost")
    with pytest.raises(UsageError, match=r"^terminal to ghost failed: server ghost is not tracked"):
        await panel.wait_open()
    assert panel.status.startswith("failed: server ghost is not tracked") and "\n" not in panel.status
    await panel.aclose()


def test_outside_an_event_loop_is_a_usage_error(engine: Engine) -> None:
    with pytest.raises(UsageError, match="needs a running event loop"):
        TerminalPanel(engine, "t1")


def test_scrollback_is_bounded_and_starts_at_a_line() -> None:
    text = "".join(f"line {i}\r\n" for i in range(20_000))
    kept = _trimmed(text)
    assert len(kept) <= SCROLLBACK_CHARS and text.endswith(kept) and kept.startswith("line ")


def test_xterm_is_bundled_not_fetched() -> None:
    esm = terminal_esm()
    assert "const XTERM_SOURCE =" in esm and "export default { render }" in esm
    assert "https://" not in esm.split("const FIT_SOURCE")[0].split("XTERM_SOURCE =")[0]
    assert "cdn" not in esm.lower().split("xterm_source =")[0]


async def test_the_panel_works_over_the_daemon(engine: Engine) -> None:
    """Through RemoteEngine: every terminal call is a named call on the daemon's socket."""
    token = secrets.token_hex(32)
    stop = asyncio.Event()
    ready = asyncio.Event()

    async def open_engine() -> Engine:
        return engine

    task = asyncio.create_task(
        serve(endpoint_for(engine.state_path), open_engine, token, on_ready=lambda _: ready.set(), stop=stop)
    )
    await until(lambda: ready.is_set() or task.done())
    remote = await connect(engine.state_path, token=token)
    try:
        panel = TerminalPanel(remote, "t1", min_interval=0)
        await panel.wait_open()
        from_page(panel, {"type": "resize", "cols": 90, "rows": 20})
        from_page(panel, {"type": "input", "data": "hostname\r"})
        from_page(panel, {"type": "input", "data": "stty size\r"})
        await until(lambda: "hostname\r\nt1\r\n" in panel.output and "stty size\r\n20 90\r\n" in panel.output)
        await panel.aclose()
        assert await remote.terminal_list() == []
    finally:
        await remote.aclose()
        stop.set()
        await task
