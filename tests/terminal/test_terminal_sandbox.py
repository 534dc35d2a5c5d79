"""A terminal on a node that materialize deployed: no seeding, the state is what deployment wrote.

``legion_nb.sandbox(nodes=True)`` boots a simulated node per running Hetzner server and wires node
deployment and terminals on the nodes' SSH port; ``terminal_open`` then needs only the name.
"""

from __future__ import annotations

import asyncio

import pytest

import legion_nb
from legion_nb.widgets.terminal import TerminalPanel

pytestmark = pytest.mark.slow


async def test_a_materialized_node_answers_in_a_terminal_panel() -> None:
    engine = await legion_nb.sandbox(
        seed=5, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        await engine.plan_upsert_server(name="web-1", provider="hetzner")
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)
        panel = TerminalPanel(engine, "web-1", min_interval=0)
        changed = asyncio.Event()
        panel.observe(lambda _: changed.set(), names=["produced", "status"])
        try:
            await panel.wait_open()
            assert [t["node"] for t in await engine.terminal_list()] == ["web-1"]
            panel.send("hostname\r")
            while "hostname\r\nweb-1\r\n" not in panel.output:
                assert panel.status == "open", panel.status
                await asyncio.wait_for(changed.wait(), 30)
                changed.clear()
        finally:
            await panel.aclose()
        assert await engine.terminal_list() == []
    finally:
        await engine.aclose()
