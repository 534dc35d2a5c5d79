"""Stored credentials are usable by the very next call: once ``credentials_set`` returns, a refresh
and a live catalog read reach that provider, with nothing awaited in between (before, the adapter
was registered by a task the change spawned, so the first call after it skipped the provider).
Once ``credentials_delete`` returns, the next refresh leaves that provider out.

In process, against the embedded sandbox of all three providers, one provider at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.errors import UsageError
from legion_nb.sandbox_engine import sandbox_policy

PASSWORD = "credentials take effect"


@pytest.fixture
async def cloud() -> AsyncIterator[SandboxCloud]:
    async with SandboxCloud(SandboxWorld(3, faults=FaultPlan(rate=0.0, seed=3))) as running:
        yield running


async def test_the_call_right_after_credentials_set_reaches_that_provider(
    cloud: SandboxCloud, tmp_path: Path
) -> None:
    engine = create_engine(tmp_path / "s.legion", SessionSettings(broker=sandbox_policy()))
    await engine.bootstrap(PASSWORD)
    try:
        endpoints = cloud.endpoints()
        assert sorted(endpoints) == ["hetzner", "ovh", "scaleway"]
        stored: list[str] = []
        for name, block in endpoints.items():
            fields = {key: value for key, value in block.items() if key != "url"}
            await engine.credentials_set(name, fields, endpoint=block["url"])
            stored.append(name)
            result = await engine.refresh()
            assert result.ok, result.summary
            assert sorted(report.provider for report in result.providers) == sorted(stored)
            assert all(report.error is None for report in result.providers)
            assert (await engine.catalog(name))["source"] == "live"
        for name in list(stored):
            await engine.credentials_delete(name)
            stored.remove(name)
            if stored:
                result = await engine.refresh()
                assert sorted(report.provider for report in result.providers) == sorted(stored)
            assert (await engine.catalog(name))["source"] == "embedded"
        with pytest.raises(UsageError, match="no provider credentials stored"):
            await engine.refresh()
    finally:
        await engine.aclose()
