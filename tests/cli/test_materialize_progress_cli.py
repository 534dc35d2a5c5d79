"""What ``legion materialize`` prints while it runs, against a sandbox with simulated nodes.

The README's session, in process: the sandbox (three providers' APIs and the nodes, linked beside
the state as ``legion sandbox serve --store-credentials`` links them) runs on the test's loop while
each ``legion`` command runs on a thread of its own. A person reads one line when a resource starts
changing, one per deployment phase of a node (its start), one when it settles, and every error;
never the same line twice in a row for one resource, never anything about a resource after it was
deleted. ``--json`` still carries every item, the phases' ends and the operations' successes too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.engine.deployment.phases import PLANS, NodeOperation
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.sandbox_engine import node_fleet, write_sandbox_link

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py; it returns its Result

SERVERS = ("web-1", "web-2", "web-3")
_MOST_SERVER_LINES = 8  # creating, provisioning, running, deploying, running, promoting, running (+1)


@pytest.fixture
async def served(tmp_path: Path, password: str) -> AsyncIterator[str]:
    """A state with the sandbox's Hetzner credentials and the link to its nodes stored."""
    state = tmp_path / "progress.legion"
    fleet, link = node_fleet(0.0, seed=5, history_hours=0)
    world = SandboxWorld(5, timing=Timing(action_seconds=0.02, boot_seconds=0.02))
    async with SandboxCloud(world, nodes=fleet) as cloud:
        block = cloud.endpoints()["hetzner"]
        engine = create_engine(state)
        await engine.bootstrap(password)
        try:
            secrets = {k: v for k, v in block.items() if k != "url"}
            await engine.credentials_set("hetzner", secrets, endpoint=block["url"])
        finally:
            await engine.aclose()
        write_sandbox_link(state, link)
        yield str(state)


async def _plan(state: str, password: str, edit: Callable[[Engine], Awaitable[object]]) -> None:
    """Edit the plan as ``legion plan ...`` does, with one unlock for several edits."""
    engine = create_engine(Path(state))
    await engine.unlock(password)
    try:
        await edit(engine)
    finally:
        await engine.aclose()


async def _ok(legion: Legion, state: str, *args: str) -> Any:
    result = await asyncio.to_thread(legion, "--state", state, *args)
    assert result.code == 0, (args, result.out, result.err)
    return result


def _subject(line: str) -> str:
    """Whom a progress line is about: ``server web-1``, ``node web-1``, ``materialize``."""
    return line.split(":", 1)[0].removesuffix(" started")


def _assert_readable(lines: list[str]) -> None:
    """No resource says the same thing twice in a row, and nothing follows its deletion."""
    last: dict[str, str] = {}
    for line in lines:
        subject = _subject(line)
        assert last.get(subject) != line, f"{line!r} twice in a row:\n" + "\n".join(lines)
        assert not last.get(subject, "").endswith(": deleted"), f"{line!r} after the deletion"
        last[subject] = line


async def test_materialize_prints_one_line_per_change_and_json_carries_every_item(
    served: str, legion: Legion, password: str
) -> None:
    state = served

    async def add(engine: Engine) -> None:
        await engine.plan_upsert_dns_zone("example.org", "hetzner")
        for name in SERVERS:
            await engine.plan_upsert_server(name=name, provider="hetzner")

    await _plan(state, password, add)

    out = (await _ok(legion, state, "materialize", "--yes")).out.splitlines()
    lines = [line for line in out if not line.startswith("warning: ")]
    assert lines[0] == "materialize started" and lines[-1] == "materialize done: 5 resources settled"
    _assert_readable(lines)
    add, promote = PLANS[NodeOperation.ADD], PLANS[NodeOperation.NBDE_PROMOTE]
    for name in SERVERS:
        said = [line for line in lines if _subject(line) == f"server {name}"]
        assert said[0] == f"server {name}: creating (create)" and said[-1] == f"server {name}: running"
        assert len(said) <= _MOST_SERVER_LINES, said
        phases = [line for line in lines if line.startswith(f"node {name}: ") and "disk unlock" not in line]
        # One line per phase, at its start: its end is the next one's start, or the server's
        # "running" line; the operation's success is that line too.
        assert phases[: len(add)] == [f"node {name}: add {phase} started" for phase in add]
        # After the add, the cluster's disk unlock follows it: a promotion, or a one-phase reconcile
        # when the node's add finished after its peers had already moved the cluster on.
        later = {f"node {name}: nbde_promote {phase} started" for phase in promote}
        assert set(phases[len(add) :]) <= later | {f"node {name}: nbde_reconcile started"}
        assert len(phases) == len(set(phases))
    # Bounded by the resources: begin and end, the zone's and the firewall's few lines, and per
    # server its own lines, one per phase and the disk unlock bindings (local, then quorum).
    per_server = _MOST_SERVER_LINES + len(add) + len(promote) + 2
    assert len(lines) <= 2 + 2 + (len(SERVERS) + 3) + len(SERVERS) * per_server, lines

    # --json: every item, each phase's end and each operation's success among them.
    await _ok(legion, state, "plan", "server", "add", "web-4", "--provider", "hetzner")
    out = (await _ok(legion, state, "--json", "materialize", "--yes")).out.splitlines()
    items = [json.loads(line) for line in out]
    assert items[-1]["event"] == "report" and items[-1]["ok"] is True
    assert [i["event"] for i in items if i["event"] in ("begin", "end")] == ["begin", "end"]
    phases = [
        (i["operation"], i["phase"], i["status"])
        for i in items
        if i["event"] == "phase" and i["node"] == "web-4"
    ]
    ran = [(op, phase) for op, phase, status in phases if status == "started"]
    assert ran[: len(add)] == [("add", phase) for phase in add]
    assert [(op, phase) for op, phase, status in phases if status == "ended"] == ran
    assert ("add", add[-1], "succeeded") in phases
    details = [i for i in items if i.get("detail") is True]
    assert {i["status"] for i in details} == {"ended", "succeeded"}
    assert all(i["event"] == "phase" for i in details)

    # Teardown of the whole cluster: "deleted" is each resource's last line (its actor's
    # retirement says nothing).
    async def remove(engine: Engine) -> None:
        for name in (*SERVERS, "web-4"):
            await engine.plan_remove_server(name)
        await engine.plan_remove_dns_zone("example.org")

    await _plan(state, password, remove)
    lines = (await _ok(legion, state, "materialize", "--yes")).out.splitlines()
    _assert_readable(lines)
    assert not [line for line in lines if line.endswith(": stopped")], lines
    for subject in (*(f"server {n}" for n in (*SERVERS, "web-4")), "dns zone example.org"):
        said = [line for line in lines if _subject(line) == subject]
        assert said == [f"{subject}: deleting (delete)", f"{subject}: deleted"], said
    # The cluster's firewall leaves with its servers; while the provider still holds it in use,
    # it may say what it waits for (and then that it deletes again) between the two.
    subject = "firewall legion-default-hetzner"
    said = [line for line in lines if _subject(line) == subject]
    assert said[0] == f"{subject}: deleting (delete)" and said[-1] == f"{subject}: deleted", said
    assert all(line.startswith(f"{subject}: deleting (delete)") for line in said[1:-1]), said
