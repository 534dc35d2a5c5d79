"""An orphan public IP a refresh saw is a row of the panels like an orphan server: its kind, its
address as the name, its provider and the action ``orphan``, with the resource id cleanup takes."""

from __future__ import annotations

from widgetkit import until

from legion_nb.engine.providers_service import record_inventory
from legion_nb.engine.runtime import Engine
from legion_nb.providers.records import PublicIp
from legion_nb.widgets import PlanDiffPanel, ResourcesPanel

LEGION = {"legion/managed": "true", "legion/id": "00000000-0000-4000-8000-00000000000a"}


async def test_the_panels_show_an_orphan_ip_and_never_an_unlabelled_one(engine: Engine) -> None:
    resources = ResourcesPanel(engine, min_interval=0)
    plan_diff = PlanDiffPanel(engine, min_interval=0)
    ips = [
        PublicIp(
            "scaleway",
            "floating",
            "fr-par-1/a",
            "vip",
            "127.22.0.1",
            "ipv4",
            location="fr-par-1",
            labels=LEGION,
        ),
        PublicIp("scaleway", "floating", "fr-par-1/b", "b", "127.22.0.2", "ipv4", location="fr-par-1"),
    ]
    persistence = engine.assert_unlocked()
    await persistence.mutate(
        lambda s: (record_inventory(s, "scaleway", [], [], [], public_ips=ips)[0], None),
        reason="test: refresh",
    )
    revision = persistence.revision
    await until(lambda: resources.revision == revision and plan_diff.revision == revision)

    row = {(r["kind"], r["name"]): r for r in resources.rows}
    assert (row["floating_ip", "127.22.0.1"]["provider"], row["floating_ip", "127.22.0.1"]["action"]) == (
        "scaleway",
        "orphan",
    )
    assert ("floating_ip", "127.22.0.2") not in row
    shown = next(r for r in plan_diff.resources if r["name"] == "127.22.0.1")
    fields = {f["field"]: f["observed"] for f in shown["fields"]}
    assert (shown["kind"], shown["action"], fields["provider_id"], fields["location"]) == (
        "floating_ip",
        "orphan",
        "floating_ip/fr-par-1/a",
        "fr-par-1",
    )
    assert plan_diff.counts == {"orphan": 1}
    resources.close()
    plan_diff.close()
