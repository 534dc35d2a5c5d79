"""The panels through a real materialize against the sandbox cloud: operations while it runs, the
engine's operation line, and every resource settled at the end - all from the streams."""

from __future__ import annotations

from typing import Any

from widgetkit import until

import legion_nb
from legion_nb.widgets import show
from legion_nb.widgets.rows import parse_snapshot, state_counts


async def test_the_panels_follow_a_materialize_from_start_to_settled() -> None:
    engine = await legion_nb.sandbox(seed=8)
    try:
        dashboard = show(engine, min_interval=0)
        busy: list[list[dict[str, Any]]] = []
        dashboard.activity.observe(lambda change: busy.append(change["new"]), names="operations")
        for name in ("node-1", "node-2"):
            await engine.plan_upsert_server(name=name, provider="hetzner")
        await engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
        await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=["node-1", "node-2"])

        report = await engine.materialize(yes=True)
        assert report.ok
        final = parse_snapshot(await engine.snapshot())
        activity = dashboard.activity
        await until(lambda: dashboard.resources.rows == list(final.rows) and activity.running == "")
        assert activity.states == state_counts(final.rows)
        assert activity.settled == activity.total == len(final.rows)
        assert activity.running == "" and activity.last_operation.endswith("(succeeded)")
        assert activity.operations == []  # nothing left running or waiting
        # While it ran, resources showed what they were doing or waiting for.
        assert any(row["operation"] or row["waiting"] for rows in busy for row in rows)
        assert any("materialize" in line for line in activity.recent)
        assert {"node-1", "node-2", "example.org"} <= {row["name"] for row in dashboard.resources.rows}
        assert all(row["action"] == "unchanged" for row in dashboard.plan_diff.resources)
        dashboard.close()
    finally:
        await engine.aclose()
