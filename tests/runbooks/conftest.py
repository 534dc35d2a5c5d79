"""Fixtures for the runbook tests: an isolated Jupyter setup for the kernels, and sandbox clusters."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The isolated Jupyter environment lives with the notebook harness, the in-loop daemon with the
# daemon tests: share them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
from nbkit import patched_jupyter_env

import legion_nb
from legion_nb.emulators.nodes.streams import SenderSession
from legion_nb.engine.runtime import Engine
from legion_nb.sandbox_engine import sandbox_cloud

NODES = ("web-1", "web-2")


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Runbook kernels start as this virtualenv's ``python3`` (see nbkit), for this module only."""
    with patched_jupyter_env(tmp_path_factory.mktemp("jupyter")) as env:
        yield env


@pytest.fixture
async def cluster(jupyter_env: dict[str, str]) -> AsyncIterator[Engine]:
    """An unlocked sandbox engine with a deployed two-node Hetzner cluster."""
    engine = await legion_nb.sandbox(
        seed=5, nodes=True, providers=("hetzner",), action_seconds=0.02, boot_seconds=0.02, history_days=3
    )
    try:
        for name in NODES:
            await engine.plan_upsert_server(name=name, provider="hetzner", cluster="alpha")
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, report.errors
        yield engine
    finally:
        await engine.aclose()


@pytest.fixture
async def sender(cluster: Engine) -> SenderSession:
    """Satellite ``sat1`` deployed on ``cluster`` with stream ``feed`` to the sandbox's receiver
    started: the satellite's sender session, which a test may stall or fail."""
    await cluster.plan_upsert_server(name="sat1", provider="hetzner", role="satellite")
    report = await cluster.materialize(settle_seconds=120)
    assert report.ok, report.errors
    fleet = sandbox_cloud(cluster).nodes
    assert fleet is not None and fleet.receiver is not None
    await cluster.stream_start("sat1", "feed", fleet.receiver.url())
    return fleet.by_hostname("sat1").senders.session("feed")
