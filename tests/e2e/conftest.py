"""End-to-end fixtures: a sandbox cloud on loopback and engines that talk to it over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from e2ekit import PASSWORD, EngineFactory, reap_spawned

import legion_nb
from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.sandbox_engine import sandbox_policy


@pytest.fixture(autouse=True)
async def reap_legion_processes() -> AsyncIterator[None]:
    """No ``legion`` subprocess of a test outlives its event loop, even when the test fails midway."""
    yield
    await reap_spawned()


@pytest.fixture
async def cloud() -> AsyncIterator[SandboxCloud]:
    async with SandboxCloud(SandboxWorld(7, faults=FaultPlan(rate=0.0, seed=7))) as running:
        yield running


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "e2e.legion"


@pytest.fixture
async def open_engine(cloud: SandboxCloud, state_path: Path) -> AsyncIterator[EngineFactory]:
    """Open an engine on the one state (created and given the sandbox credentials the first time)."""
    opened: list[Engine] = []

    async def factory() -> Engine:
        engine = create_engine(state_path, SessionSettings(broker=sandbox_policy()))
        opened.append(engine)
        if engine.state_exists():
            await engine.unlock(PASSWORD)
        else:
            await engine.bootstrap(PASSWORD)
            for name, block in cloud.endpoints().items():
                fields = {k: v for k, v in block.items() if k != "url"}
                await engine.credentials_set(name, fields, endpoint=block["url"])
        return engine

    yield factory
    for engine in opened:
        await engine.aclose()


@pytest.fixture
async def satellite() -> AsyncIterator[Engine]:
    """An in-process sandbox with nodes and satellite ``sat1`` set up (``satellite_add`` done)."""
    engine = await legion_nb.sandbox(
        seed=41, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02
    )
    try:
        await engine.plan_upsert_server(name="sat1", provider="hetzner", role="satellite")
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)
        yield engine
    finally:
        await engine.aclose()


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, dict[str, str]]]]:
    """``legion sandbox serve --json`` in another process, and the endpoints line it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "legion_nb", "sandbox", "serve", "--json", "--seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "the sandbox printed no endpoints line"
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
