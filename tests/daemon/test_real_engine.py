"""The daemon in front of the real engine: its allow-list, its events, its lifecycle, its errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from daemonkit import TOKEN, Running, start_daemon

from legion_nb.engine.api import public_methods
from legion_nb.engine.daemon.client import RemoteEngine, connect_if_alive
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.state.model import Scheme
from legion_nb.errors import DaemonProtocolError, LockedError, ValidationError, WrongPasswordError

PASSWORD = "correct horse battery staple"
PROVIDER_SECRET = "hz-secret-token-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One encrypted state for the module: Argon2id makes every unlock cost real time."""
    path = tmp_path_factory.mktemp("real") / "state.legion"

    async def bootstrap() -> None:
        engine = create_engine(path)
        await engine.bootstrap(PASSWORD)
        await engine.aclose()

    asyncio.run(bootstrap())
    return path


@pytest.fixture
async def served(runtime_dir: Path, bootstrapped: Path) -> AsyncIterator[tuple[Running, RemoteEngine]]:
    engine = create_engine(bootstrapped)
    await engine.unlock(PASSWORD)
    running = await start_daemon(bootstrapped, engine)
    remote = await connect_if_alive(bootstrapped, TOKEN)
    assert remote is not None
    try:
        yield running, remote
    finally:
        await remote.aclose()
        if not running.task.done():
            await running.finish()


async def test_call_offers_exactly_the_engine_api(served: tuple[Running, RemoteEngine]) -> None:
    _, remote = served
    methods = (await remote.daemon_status())["methods"]
    assert set(methods) == public_methods(Engine) - {"subscribe"}
    assert {"status", "plan_show", "diff", "unlock", "logout"} <= set(methods)
    for name in (
        "assert_unlocked",
        "add_service",
        "state_exists",
        "_open",
        "_persistence",
        "aclose",
        "state",
        "events",
        "subscribe",
        "__class__",
    ):
        with pytest.raises(DaemonProtocolError, match="not an engine API method"):
            await remote.call(name)


async def test_a_subscription_streams_snapshots_after_a_plan_change(
    served: tuple[Running, RemoteEngine],
) -> None:
    _, remote = served
    stream = remote.subscribe(["snapshot"])
    first = await asyncio.wait_for(anext(stream), 30)  # a new subscriber gets the latest snapshot
    assert first.topic == "snapshot"
    assert first.data["locked"] is False

    await remote.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
    # Actor reports and the observation status publish too: the first snapshot of a newer state
    # revision is the one the plan change made.
    changed = await asyncio.wait_for(anext(stream), 30)
    while changed.data["revision"] == first.data["revision"]:
        changed = await asyncio.wait_for(anext(stream), 30)
    rows = {(row["kind"], row["name"]) for row in changed.data["rows"]}
    assert any(name == "example.org" for _, name in rows)
    assert changed.data["revision"] > first.data["revision"]

    await remote.plan_remove_dns_zone(zone="example.org")
    # Actor reports publish too (coalesced): read on until a snapshot no longer shows the zone.
    removed = await asyncio.wait_for(anext(stream), 30)
    while any(row["name"] == "example.org" for row in removed.data["rows"]):
        removed = await asyncio.wait_for(anext(stream), 30)
    assert removed.data["revision"] > changed.data["revision"]
    await stream.aclose()


async def test_engine_errors_arrive_as_the_same_types(served: tuple[Running, RemoteEngine]) -> None:
    _, remote = served
    with pytest.raises(ValidationError):
        await remote.plan_upsert_dns_zone(zone="not a zone!", provider="hetzner")
    with pytest.raises(ValidationError):
        await remote.plan_upsert_dns_zone(zone="example.net", provider="aws")
    with pytest.raises(WrongPasswordError):
        await remote.unlock(password="not the password")


async def test_logout_through_the_daemon_locks_it_for_every_client(
    served: tuple[Running, RemoteEngine], bootstrapped: Path
) -> None:
    _, remote = served
    await remote.logout()
    other = await connect_if_alive(bootstrapped, TOKEN)
    assert other is not None
    async with other:
        assert (await other.daemon_status())["unlocked"] is False
        with pytest.raises(LockedError, match="locked") as caught:
            await other.plan_show()
        assert caught.value.exit_code == 3
        await other.unlock(password=PASSWORD)
    assert isinstance(await remote.plan_show(), Scheme)  # the same typed result as in process


async def test_a_wrong_password_through_the_daemon_locks_nobody_out(
    served: tuple[Running, RemoteEngine],
) -> None:
    # Before: unlock logged the engine out first, so one mistyped password locked every client out.
    _, remote = served
    with pytest.raises(WrongPasswordError):
        await remote.unlock(password="not the password")
    assert (await remote.daemon_status())["unlocked"] is True
    assert isinstance(await remote.plan_show(), Scheme)


async def test_secrets_sent_through_the_daemon_stay_out_of_replies_and_logs(
    served: tuple[Running, RemoteEngine], caplog: pytest.LogCaptureFixture
) -> None:
    _, remote = served
    caplog.set_level(logging.DEBUG)
    result: Any = await remote.credentials_set(
        provider="hetzner", secrets={"token": PROVIDER_SECRET}, endpoint="http://127.0.0.1:9/v1"
    )
    shown = await remote.credentials_show()
    assert PROVIDER_SECRET not in repr(result)
    assert PROVIDER_SECRET not in repr(shown)
    assert PROVIDER_SECRET not in caplog.text
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_served_engine_runs_its_observation_scheduler(served: tuple[Running, RemoteEngine]) -> None:
    """The daemon's engine is made like `legion daemon start` makes it (default session settings):
    its scheduler runs, and a client reads its status and runs a concern through the daemon."""
    _, remote = served
    section = await remote.call("observation")
    assert section["running"] is True
    assert {c["concern"] for c in section["concerns"]} >= {
        "providers",
        "catalogs",
        "nodes",
        "telemetry",
        "logs",
    }
    assert all(c["next_run"] for c in section["concerns"])
    result = await remote.call("observe_once", only=["nodes"])
    assert result["nodes"]["ok"] is True and result["nodes"]["items"] == 0


async def test_credentials_set_and_delete_through_the_daemon_reach_the_providers_before_returning(
    served: tuple[Running, RemoteEngine],
) -> None:
    """The daemon answers only once the engine's provider service holds (or has dropped) the
    provider, so the snapshot read right after shows it (or not)."""
    _, remote = served
    await remote.credentials_set(
        provider="hetzner", secrets={"token": "t0ken"}, endpoint="http://127.0.0.1:9/v1"
    )
    assert [row["provider"] for row in (await remote.snapshot())["providers"]] == ["hetzner"]
    assert await remote.credentials_delete("hetzner") == {"removed": "credentials", "name": "hetzner"}
    assert (await remote.snapshot())["providers"] == []
    assert await remote.credentials_show() == []
