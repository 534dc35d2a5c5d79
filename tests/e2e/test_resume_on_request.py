"""A node operation left unfinished waits for the operator: opening a session resumes nothing.

One sandbox cloud with simulated nodes runs in this process; engines open and close on one state
file, which is linked to the nodes (as ``legion sandbox serve`` links it) so ``legion`` processes
reach the same nodes. Every SSH command a node runs is on its journal (unit ``sshd``), so "no
install step ran" is read off the node itself, and the durable execution record shows that no
phase started (its ``updated`` stamp and error stay those the unlock wrote).

* A CLI ``legion materialize`` SIGKILLed inside the OS install leaves the execution running; the
  next ``legion status`` marks it ``interrupted, retryable``, and neither it nor later ``legion
  status`` / ``legion --json snapshot`` runs start anything on the node. The snapshot shows the
  phase and the command that continues it; ``legion materialize`` or ``legion server resume``
  then finishes the same operation from that phase (the kexec is not run again).
* In process: an engine closed inside the install (or one whose install failed) is reopened; the
  node rests ``deploy_interrupted`` (``deploy_failed``) with nothing run until ``node_resume`` (a
  materialize wave) continues it. ``node_resume`` while a wave's install runs follows it to its
  end; while a reinstall runs it is refused in one line.
* Two processes: a ``legion --json snapshot`` and a ``legion server resume`` beside a live ``legion
  materialize`` inside the install leave its execution ``running`` (the materialize holds the
  node's lock) and refuse to touch it; only a process found gone (SIGKILL above) is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from e2ekit import LinkedSandbox, durable_state, finished, legion_process, linked_engines, linked_sandbox

from legion_nb.emulators.nodes.fleet import NodeFleet
from legion_nb.emulators.nodes.shell import NodeShell
from legion_nb.engine.deployment.phases import execution_of
from legion_nb.engine.deployment.runtime import DeploymentBusyError
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import LegionState, NodeExecution

pytestmark = pytest.mark.slow

PASSWORD = "resume on request password"
NODE = "n1"
STEP = 0.02
Opener = Callable[[], Awaitable[Engine]]


@pytest.fixture
async def sandbox() -> AsyncIterator[LinkedSandbox]:
    async with linked_sandbox(31, STEP) as linked:
        yield linked


@pytest.fixture
async def opener(sandbox: LinkedSandbox, tmp_path: Path) -> AsyncIterator[Opener]:
    """Engines on the one state; the first call also plans the node (nothing is materialized)."""

    async def plan_node(engine: Engine) -> None:
        await engine.plan_upsert_server(name=NODE, provider="hetzner", cluster="alpha")

    async with linked_engines(sandbox, tmp_path / "resume.legion", PASSWORD, plan_node) as opened:
        yield opened


# -- what the node and the state say ------------------------------------------------------------


def commands_after(fleet: NodeFleet, mark: int) -> list[str]:
    """The SSH commands the node ran after journal sequence ``mark`` (``root: legion-node``)."""
    journal = fleet.by_hostname(NODE).system.journal
    return [e.message for e in journal if e.seq > mark and e.unit == "sshd"]


def steps_after(fleet: NodeFleet, mark: int) -> list[str]:
    """The ``legion-node`` steps that ended after ``mark`` (``kexec exit 0``, ``install exit 0``)."""
    journal = fleet.by_hostname(NODE).system.journal
    return [e.message for e in journal if e.seq > mark and e.unit == "legion-node"]


def journal_mark(fleet: NodeFleet) -> int:
    journal = fleet.by_hostname(NODE).system.journal
    return max((e.seq for e in journal), default=0)


async def durable(path: Path) -> LegionState:
    return await durable_state(path, PASSWORD)


async def durable_execution(path: Path) -> NodeExecution | None:
    return execution_of(await durable(path), NODE)


async def legion(state: Path, *args: str) -> asyncio.subprocess.Process:
    return await legion_process(state, PASSWORD, *args)


def node_row(snapshot: Any) -> dict[str, Any]:
    rows = snapshot["rows"] if isinstance(snapshot, dict) else snapshot
    (row,) = [r for r in rows if r["kind"] == "server" and r["name"] == NODE]
    return dict(row)


async def kill_inside_the_install(path: Path, fleet: NodeFleet) -> NodeExecution:
    """Run ``legion materialize`` until the node's OS install step runs, SIGKILL it there; the
    execution the killed process left on disk."""
    fleet.timing.install = 60.0  # the install step now outlasts the kill
    process = await legion(path, "--json", "materialize", "--yes")
    try:
        while True:
            execution = await durable_execution(path)
            at = None if execution is None else (execution.phase, execution.status)
            if at == ("os_install", "running") and fleet.by_hostname(NODE).system.phase == "installer":
                break
            assert process.returncode is None, "legion materialize ended before the OS install"
            await asyncio.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL
    fleet.timing.install = STEP
    left = await durable_execution(path)
    assert left is not None and (left.operation, left.phase, left.status) == ("add", "os_install", "running")
    return left


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("retry", ["materialize", "server resume"])
async def test_read_only_commands_after_a_killed_materialize_start_nothing_on_the_node(
    sandbox: LinkedSandbox, opener: Opener, retry: str
) -> None:
    engine = await opener()
    path = engine.state_path
    await engine.aclose()
    fleet = sandbox.fleet
    left = await kill_inside_the_install(path, fleet)
    mark = journal_mark(fleet)

    await finished(await legion(path, "status"))  # the first unlock marks the execution interrupted
    interrupted = await durable_execution(path)
    assert interrupted is not None
    assert (interrupted.operation, interrupted.phase, interrupted.status, interrupted.retryable) == (
        "add",
        "os_install",
        "interrupted",
        True,
    )
    assert interrupted.started == left.started and not interrupted.phase_done

    for command in (("--json", "snapshot"), ("status",), ("snapshot",), ("--json", "snapshot"), ("status",)):
        out = await finished(await legion(path, *command))
        # No phase started (it would have rewritten the record) and the node ran no command.
        assert await durable_execution(path) == interrupted, command
        assert commands_after(fleet, mark) == [], command
        if command == ("snapshot",):  # the table's waiting column leads with the command
            (line,) = [line for line in out.splitlines() if " n1 " in line]
            assert "legion server resume n1" in line, out
        elif command[-1] == "snapshot":
            row = node_row(json.loads(out))
            assert (row["system"], row["substage"], row["operation"], row["error"]) == (
                "deploy_interrupted",
                "os_install",
                "",
                "",
            ), row
            assert "legion server resume n1" in row["waiting"] and "os_install" in row["waiting"], row

    if retry == "materialize":
        await finished(await legion(path, "materialize", "--yes"))
    else:
        resumed = json.loads(await finished(await legion(path, "--json", "server", "resume", NODE)))
        assert (resumed["server"], resumed["command"], resumed["status"]) == (NODE, "resume", "succeeded")
    done = await durable_execution(path)
    assert done is not None and (done.operation, done.status) == ("add", "succeeded")
    assert done.started == left.started  # the same operation, resumed
    ran = steps_after(fleet, mark)
    assert "install exit 0" in ran and not [s for s in ran if s.startswith("kexec")], ran  # from os_install
    assert len((await durable(path)).tracked.servers) == 1


@pytest.mark.parametrize("stop", ["closed", "failed"])
async def test_a_reopened_engine_runs_nothing_until_the_operator_resumes(
    sandbox: LinkedSandbox, opener: Opener, stop: str
) -> None:
    fleet = sandbox.fleet
    engine = await opener()
    path = engine.state_path
    if stop == "closed":
        fleet.timing.install = 60.0
        applying = asyncio.create_task(engine.materialize(settle_seconds=120))
        while not (
            (execution := engine.state.tracked.servers.get(NODE)) is not None
            and execution.execution is not None
            and (execution.execution.phase, execution.execution.status) == ("os_install", "running")
            and fleet.by_hostname(NODE).system.phase == "installer"
        ):
            assert not applying.done(), applying
            await asyncio.sleep(0.02)
        await engine.aclose()  # cancels the install: the runtime records it interrupted
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await applying
        fleet.timing.install = STEP
    else:

        async def break_the_install() -> None:
            while not fleet.addresses():
                await asyncio.sleep(0.002)
            fleet.node(fleet.addresses()[0]).faults.fail("install", "disk /dev/sda not found")

        breaker = asyncio.create_task(break_the_install())
        report = await engine.materialize(settle_seconds=120)
        await breaker
        assert not report.ok
        await engine.aclose()
    stopped = await durable_execution(path)
    assert stopped is not None and (stopped.operation, stopped.phase) == ("add", "os_install")
    assert stopped.status == ("interrupted" if stop == "closed" else "failed") and stopped.retryable, stopped
    mark = journal_mark(fleet)

    engine = await opener()
    core = engine.core
    assert core.deployment is not None
    await core.resources.wait_settled()
    for _ in range(3):  # whatever the loop still had queued runs; nothing may start
        await asyncio.sleep(0)
    assert engine.state.tracked.servers[NODE].execution == stopped
    assert commands_after(fleet, mark) == []
    assert core.deployment.runtime.metrics.runs == {} and core.deployment.runtime.active() == {}
    row = node_row(await engine.snapshot())
    want = "deploy_interrupted" if stop == "closed" else "deploy_failed"
    assert (row["system"], row["substage"], row["settled"]) == (want, "os_install", True), row
    assert "legion server resume n1" in row["waiting"], row
    if stop == "failed":
        assert row["error"] == (
            "add failed in os_install: node n1: 'legion-node install' failed (exit 1): "
            "legion-node install: disk /dev/sda not found"
        ), row
    at_work = [r for r in (await engine.activity())["current"] if r["name"] == NODE]
    assert [(r["substage"], r["waiting"]) for r in at_work] == [("os_install", row["waiting"])]

    result = await engine.node_resume(NODE)
    assert result.status == "succeeded"
    done = engine.state.tracked.servers[NODE].execution
    assert done is not None and (done.operation, done.status) == ("add", "succeeded")
    assert done.started == stopped.started  # the same operation, resumed
    ran = {phase.value for phase in core.deployment.runtime.metrics.runs}
    assert {"os_install", "reboot"} <= ran and "kexec" not in ran, ran
    row = node_row(await engine.snapshot())
    assert (row["system"], row["substage"], row["waiting"], row["error"]) == ("deployed", "", "", ""), row
    assert not [s for s in steps_after(fleet, mark) if s.startswith("kexec")]


async def test_server_resume_follows_the_install_a_wave_runs_and_refuses_another_operation(
    sandbox: LinkedSandbox, opener: Opener
) -> None:
    fleet = sandbox.fleet
    engine = await opener()
    fleet.timing.install = 1.0  # the wave's install is still running when the operator resumes
    applying = asyncio.create_task(engine.materialize(settle_seconds=120))
    while (row := node_row(await engine.snapshot()))["system"] != "deploying":
        assert not applying.done(), applying
        await asyncio.sleep(0.02)
    followed = await engine.node_resume(NODE)  # follows the wave's install to its end
    assert (followed.status, followed.command) == ("succeeded", "resume")
    report = await applying
    assert report.ok, (report.summary, report.errors)
    done = engine.state.tracked.servers[NODE].execution
    assert done is not None and (done.operation, done.status) == ("add", "succeeded")
    assert [s for s in steps_after(fleet, 0) if s.startswith("install")] == ["install exit 0"]  # ran once

    reinstalling = asyncio.create_task(engine.node_reinstall(NODE))
    while not (running := engine.state.tracked.servers[NODE].execution) or running.operation != "reinstall":
        assert not reinstalling.done(), reinstalling
        await asyncio.sleep(0.02)
    with pytest.raises(DeploymentBusyError) as busy:
        await engine.node_resume(NODE)
    assert busy.value.message == "node n1 is already running reinstall; wait for it", busy.value.message
    assert (await reinstalling).status == "succeeded"
    row = node_row(await engine.snapshot())
    assert (row["system"], row["waiting"], row["error"]) == ("deployed", "", ""), row


async def test_a_second_process_leaves_the_install_a_live_materialize_runs_alone(
    sandbox: LinkedSandbox, opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``legion`` processes on one state, no daemon: a ``legion --json snapshot`` and a ``legion
    server resume`` opened while another shell's ``legion materialize`` is inside the node's OS
    install find it ``running`` in another Legion process, mark nothing interrupted and run nothing;
    the materialize then finishes its install (the step runs once)."""
    engine = await opener()
    path = engine.state_path
    await engine.aclose()
    fleet = sandbox.fleet
    release = asyncio.Event()
    install = NodeShell._install

    async def held_install(shell: NodeShell, args: list[str], stdin: str) -> Any:
        await release.wait()  # the step is held, not slowed: the test lets it go
        return await install(shell, args, stdin)

    monkeypatch.setattr(NodeShell, "_install", held_install)
    applying = await legion(path, "--json", "materialize", "--yes")
    try:
        while not (
            (execution := await durable_execution(path)) is not None
            and (execution.phase, execution.status) == ("os_install", "running")
            and fleet.by_hostname(NODE).system.phase == "installer"
        ):
            assert applying.returncode is None, "legion materialize ended before the OS install"
            await asyncio.sleep(0.1)
        mark = journal_mark(fleet)

        row = node_row(json.loads(await finished(await legion(path, "--json", "snapshot"))))
        assert await durable_execution(path) == execution  # not marked interrupted, not touched
        assert (row["system"], row["operation"], row["substage"]) == ("reachable", "add", "os_install"), row
        assert row["waiting"] == "another Legion process to finish add (os_install)", row
        locks = path.parent / f"{path.stem}.operations"  # beside the state, private to its owner
        assert locks.stat().st_mode & 0o777 == 0o700
        assert (locks / f"{NODE}.lock").stat().st_mode & 0o077 == 0

        resume = await legion(path, "server", "resume", NODE)
        out, err = await asyncio.wait_for(resume.communicate(), 120)
        assert resume.returncode != 0, (out.decode(), err.decode())
        (line,) = err.decode().strip().splitlines()
        assert "node n1 is running add (in os_install) in another Legion process; wait for it" in line, line
        assert await durable_execution(path) == execution
        assert commands_after(fleet, mark) == []  # neither process ran anything on the node
    finally:
        release.set()
    report = json.loads((await finished(applying)).splitlines()[-1])
    assert (report["event"], report["ok"]) == ("report", True), report
    done = await durable_execution(path)
    assert done is not None and (done.operation, done.status) == ("add", "succeeded")
    assert done.started == execution.started  # the same operation, never interrupted
    assert [s for s in steps_after(fleet, 0) if s.startswith("install")] == ["install exit 0"]
