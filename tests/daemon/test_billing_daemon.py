"""Billing through the daemon: the rows that cross the wire rebuild the frames built in process."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
from daemonkit import TOKEN, start_daemon

import legion_nb
from legion_nb.engine.billing.frames import billing_frame
from legion_nb.engine.daemon.client import connect_if_alive


async def test_billing_frames_through_the_daemon_equal_the_in_process_ones(runtime_dir: Path) -> None:
    engine = await legion_nb.sandbox(seed=6, history_days=35, providers=("scaleway", "ovh"))
    try:
        await engine.billing_collect()
        running = await start_daemon(engine.state_path, engine)
        remote = await connect_if_alive(engine.state_path, TOKEN)
        assert remote is not None
        try:
            for method, args in (
                ("billing_ledger", {}),
                ("billing_ledger", {"by": "provider"}),
                ("billing_reconciliation", {}),
                ("billing_daily", {}),
            ):
                rows = await remote.call(method, collect=False, **args)
                local = await getattr(engine, method)(collect=False, **args)
                assert rows == local
                remote_frame, local_frame = billing_frame(rows), billing_frame(local)
                pd.testing.assert_frame_equal(remote_frame, local_frame)
            frame = await engine.billing_frame(collect=False)
            assert not frame.empty and isinstance(frame["billed_cost"].sum(), Decimal)
            pd.testing.assert_frame_equal(await remote.billing_frame(collect=False), frame)
            by_day = await remote.billing_daily_frame(collect=False)
            pd.testing.assert_frame_equal(by_day, await engine.billing_daily_frame(collect=False))
        finally:
            await remote.aclose()
            await running.finish()
    finally:
        await engine.aclose()
