"""``create_unplanned_server``: a server made at a sandbox provider behind the engine's back, the way
a teammate in the console would, is reported as an orphan of the ownership its labels claim."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import legion_nb
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.sandbox_engine import SANDBOX_PROVIDERS, create_unplanned_server, sandbox_holdings


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = await legion_nb.sandbox(seed=11)
    try:
        yield engine
    finally:
        await engine.aclose()


async def test_unplanned_servers_at_every_provider_are_orphans_by_their_labels(engine: Engine) -> None:
    made = {}
    for provider in SANDBOX_PROVIDERS:
        copied = await create_unplanned_server(engine, f"{provider}-copy", provider=provider)
        foreign = await create_unplanned_server(
            engine, f"{provider}-foreign", provider=provider, legion_labels=False
        )
        assert (copied.provider, copied.name, foreign.name) == (
            provider,
            f"{provider}-copy",
            f"{provider}-foreign",
        )
        assert copied.ownership is not None and foreign.ownership is None
        made[provider, copied.name] = "labelled"
        made[provider, foreign.name] = "unlabelled"

    reconciliation = await engine.billing_reconciliation()
    orphans = {(r["provider"], r["resource_name"]): r["ownership"] for r in reconciliation if r["orphan"]}
    assert orphans == made
    # the engine learnt of them only by reading the providers: nothing is planned or tracked
    assert (await engine.plan_show()).clusters == {}
    assert engine.state.tracked.servers == {}


async def test_the_holdings_list_what_a_provider_holds_whoever_made_it(engine: Engine) -> None:
    for provider in SANDBOX_PROVIDERS:
        assert (await sandbox_holdings(engine, provider)).server_summary() == {}
        made = await create_unplanned_server(engine, f"{provider}-1", provider=provider)
        holdings = await sandbox_holdings(engine, provider)
        assert holdings.provider == provider
        assert [server.id for server in holdings.servers] == [made.id]
        assert list(holdings.server_summary()) == [f"{provider}-1"]
        assert holdings.record_values("example.org", "www") == []


async def test_only_a_sandbox_engine_and_its_providers_are_accepted(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no sandbox for aws: choose from hetzner, scaleway, ovh"):
        await create_unplanned_server(engine, "x", provider="aws")
    with pytest.raises(UsageError, match="no sandbox for aws: choose from hetzner, scaleway, ovh"):
        await sandbox_holdings(engine, "aws")
    plain = await legion_nb.open(tmp_path / "state.legion", password="a long enough password")
    try:
        with pytest.raises(
            UsageError, match=r"no sandbox cloud: create one with 'await legion_nb.sandbox\(\)'"
        ):
            await create_unplanned_server(plain, "x")
        with pytest.raises(UsageError, match="no sandbox cloud"):
            await sandbox_holdings(plain)
    finally:
        await plain.aclose()
