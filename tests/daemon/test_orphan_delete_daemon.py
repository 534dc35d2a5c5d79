"""``orphan_delete`` through the daemon: the remote engine deletes a server Legion labelled but
nobody planned, its refusals arrive as the same named errors, and the diff drops it at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemonkit import TOKEN, start_daemon

import legion_nb
from legion_nb.engine.daemon.client import connect_if_alive
from legion_nb.errors import NotLegionsError, UnknownOrphanError
from legion_nb.sandbox_engine import create_unplanned_server, sandbox_holdings


async def test_orphan_delete_through_the_daemon_deletes_the_orphan_and_the_diff_drops_it(
    runtime_dir: Path,
) -> None:
    engine = await legion_nb.sandbox(seed=29, providers=("hetzner",))
    try:
        ours = await create_unplanned_server(engine, "left-behind")
        theirs = await create_unplanned_server(engine, "someone-elses", legion_labels=False)
        running = await start_daemon(engine.state_path, engine)
        remote = await connect_if_alive(engine.state_path, TOKEN)
        assert remote is not None
        try:
            refreshed = await remote.refresh()
            assert refreshed.ok, refreshed.summary
            orphans = {r.name: r.note for r in (await remote.diff()).resources if r.action == "orphan"}
            assert f"orphan_delete takes {ours.id}" in orphans[ours.name]
            with pytest.raises(UnknownOrphanError, match="hetzner lists no such server"):
                await remote.orphan_delete(provider="hetzner", resource="no-such-server")
            with pytest.raises(NotLegionsError, match="carries no Legion labels"):
                await remote.orphan_delete(provider="hetzner", resource=theirs.id)

            done = await remote.orphan_delete(provider="hetzner", resource=ours.id)
            assert done.status == "succeeded" and ours.name in done.server
            after = {(r.kind, r.name) for r in (await remote.diff()).resources if r.action == "orphan"}
            assert ("server", ours.name) not in after, "gone from the diff without a refresh"
            held = {s.id for s in (await sandbox_holdings(engine, "hetzner")).servers}
            assert ours.id not in held and theirs.id in held, "someone else's is untouched"
        finally:
            await remote.aclose()
            await running.finish()
    finally:
        await engine.aclose()
