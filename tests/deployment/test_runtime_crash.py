"""Crash recovery: the engine process is SIGKILLed inside every phase of an ``add`` in turn.

One node is added by a chain of engine processes (``runtime_child.py``) over one encrypted state,
against the in-process sandbox (Hetzner emulator + simulated nodes). Each process is killed with
SIGKILL while it sits inside the next phase (at its start, and for most phases again in the middle,
after the step that changes the node or the provider). Every restart must find the execution
``interrupted, retryable`` at the phase where the previous process died and resume from there; the
last process finishes the operation. Throughout, the emulator must hold exactly one server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from runtimekit import Sandbox, create_state, sandbox

from legion_nb.engine.deployment.phases import PLANS, NodeOperation

HERE = Path(__file__).parent
CHILD = HERE / "runtime_child.py"

# Mid-phase points the phase services announce (ctx.checkpoint), after their first real effect.
MIDDLE = {
    "provision": "created",
    "kexec": "kexec-sent",
    "os_install": "staged",
    "reboot": "rebooting",
    "certificates": "staged",
    "nbde_reconcile": "bound",
}
KILLS = [
    (phase.value, point)
    for phase in PLANS[NodeOperation.ADD]
    for point in ("start", MIDDLE.get(phase.value))
    if point is not None
]


class Child:
    """One engine process; its JSON events are read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, world: Sandbox, path: Path, stop: tuple[str, str]) -> Child:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            str(path),
            str(world.ssh_port),
            "n1",
            *stop,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        endpoint = world.cloud.endpoints()["hetzner"]
        assert process.stdin is not None
        process.stdin.write(
            (json.dumps({"url": endpoint["url"], "token": endpoint["token"]}) + "\n").encode()
        )
        await process.stdin.drain()
        return cls(process)

    async def event(self, name: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), 60)
            if not line:
                assert self.process.stderr is not None
                err = (await self.process.stderr.read()).decode()
                raise AssertionError(f"the engine process ended before {name!r}:\n{err[-3000:]}")
            event: dict[str, Any] = json.loads(line)
            if event["event"] == name:
                return event

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def finish(self) -> None:
        assert await asyncio.wait_for(self.process.wait(), 60) == 0


@pytest.mark.slow
async def test_killed_inside_every_phase_the_add_resumes_and_makes_one_server(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.legion"
    await create_state(path, servers=("n1",))
    async with sandbox(seed=7) as world:
        previous: tuple[str, str] | None = None
        for stop in KILLS:
            child = await Child.start(world, path, stop)
            found = await child.event("initialized")
            check_restart(found, previous)
            inside = await child.event("inside")
            assert (inside["phase"], inside["point"]) == stop
            await child.kill()
            assert len(world.hetzner_servers()) <= 1
            previous = stop

        child = await Child.start(world, path, ("-", "-"))
        check_restart(await child.event("initialized"), previous)
        done = await child.event("done")
        await child.finish()

    execution = done["execution"]
    assert (execution["operation"], execution["status"], execution["phase"]) == (
        "add",
        "succeeded",
        "nbde_reconcile",
    )
    assert done["pending"] == 0
    assert done["nbde"]["mode"] == "local"
    assert world.hetzner_servers() == ["n1"]


def check_restart(found: dict[str, Any], previous: tuple[str, str] | None) -> None:
    """After a kill in ``previous``, the restarted engine shows that phase interrupted, retryable."""
    if previous is None:
        assert found["interrupted"] == [] and found["execution"] is None
        return
    assert found["interrupted"] == ["n1"]
    execution = found["execution"]
    assert execution["status"] == "interrupted" and execution["retryable"] is True
    assert execution["phase"] == previous[0] and execution["phase_done"] is False
    assert execution["error"].startswith(f"interrupted during {previous[0]}: ")
