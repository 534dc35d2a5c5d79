"""The sandbox link beside a state, followed by an engine that outlives it (the daemon): a link
created, rewritten or removed after the start is read again when the engine is next needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import legion_nb
from legion_nb.engine.session import SessionSettings
from legion_nb.errors import ApplyRunningError, UsageError
from legion_nb.sandbox_engine import NodeLink, SandboxLinkWatch, sandbox_link_path, write_sandbox_link


def link_on(ssh_port: int) -> NodeLink:
    """A link to nodes whose SSH port is ``ssh_port`` (the other ports follow from it)."""
    return NodeLink(
        ssh_port=ssh_port, admin_port=ssh_port + 6200, sender_port=ssh_port + 7200, step_seconds=0.01
    )


class Applied:
    """Records what the watch hands over; ``take`` says whether the change counts as followed."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int] | None] = []
        self.take = True

    async def __call__(self, settings: SessionSettings | None) -> bool:
        if settings is None:
            self.seen.append(None)
        else:
            assert settings.deployment is not None
            self.seen.append((settings.deployment.access.ssh_port, settings.terminals.ssh_port))
        return self.take


async def test_a_link_created_rewritten_and_removed_is_followed_once_each(tmp_path: Path) -> None:
    state = tmp_path / "ops.legion"
    watch = SandboxLinkWatch(state)
    applied = Applied()
    assert watch.current() is None  # the daemon starts before any sandbox is served
    await watch.follow(applied)
    assert applied.seen == [] and not watch.changed()

    write_sandbox_link(state, link_on(2201))
    assert watch.changed()
    await watch.follow(applied)
    await watch.follow(applied)  # the same link again: nothing to follow
    assert applied.seen == [(2201, 2201)]

    write_sandbox_link(state, link_on(2202))  # restarted, new ports
    await watch.follow(applied)
    assert applied.seen == [(2201, 2201), (2202, 2202)]

    sandbox_link_path(state).unlink()  # the sandbox stopped
    await watch.follow(applied)
    await watch.follow(applied)
    assert applied.seen == [(2201, 2201), (2202, 2202), None]
    assert not list(tmp_path.glob("*.partial")), "the link is renamed into place, nothing is left beside it"


async def test_a_change_not_taken_is_offered_again_at_the_next_call(tmp_path: Path) -> None:
    state = tmp_path / "ops.legion"
    watch = SandboxLinkWatch(state)
    watch.current()
    write_sandbox_link(state, link_on(2203))
    applied = Applied()
    applied.take = False  # e.g. a materialize runs on the old settings
    await watch.follow(applied)
    assert watch.changed()
    applied.take = True
    await watch.follow(applied)
    assert applied.seen == [(2203, 2203), (2203, 2203)] and not watch.changed()


async def test_a_broken_link_is_a_usage_error_naming_it_until_it_is_fixed(tmp_path: Path) -> None:
    state = tmp_path / "ops.legion"
    watch = SandboxLinkWatch(state)
    watch.current()
    sandbox_link_path(state).write_text("{not json")
    applied = Applied()
    with pytest.raises(UsageError, match=r"ops\.legion\.sandbox\.json is not a sandbox link"):
        await watch.follow(applied)
    with pytest.raises(UsageError, match="is not a sandbox link"):
        await watch.follow(applied)  # still broken: still said
    write_sandbox_link(state, link_on(2204))
    await watch.follow(applied)
    assert applied.seen == [(2204, 2204)]


async def test_an_engine_keeps_its_settings_while_a_materialize_runs() -> None:
    engine = await legion_nb.sandbox(seed=5, action_seconds=0.3, boot_seconds=0.3)
    try:
        await engine.plan_upsert_server(name="web-1", provider="hetzner")
        before = engine.settings
        events = engine.subscribe(["activity"])
        run = asyncio.ensure_future(engine.materialize(yes=True))
        async for event in events:  # the materialize has begun once it says so
            if any(item["event"] == "begin" and "materialize" in item["summary"] for item in event.data):
                break
        with pytest.raises(ApplyRunningError, match="a materialize is running"):
            await engine.use_settings(SessionSettings())
        assert engine.settings is before
        assert (await run).ok
        await events.aclose()
        await engine.use_settings(SessionSettings())  # once it ended, the settings change
        assert engine.is_unlocked and engine.settings is not before
    finally:
        await engine.aclose()
