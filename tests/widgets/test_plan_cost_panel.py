"""The plan diff panel shows the plan's monthly cost, the same figures ``engine.diff`` carries."""

from __future__ import annotations

from widgetkit import until

from legion_nb.engine.runtime import Engine
from legion_nb.widgets import PlanDiffPanel
from legion_nb.widgets.rows import plan_cost_of


async def test_the_plan_diff_panel_carries_the_engines_plan_cost(engine: Engine) -> None:
    panel = PlanDiffPanel(engine, min_interval=0)
    for name in ("a-1", "a-2", "a-3"):
        await engine.plan_upsert_server(name=name, provider="hetzner", server_type="cx22", location="fsn1")
    expected = (await engine.diff()).to_json()["cost"]  # the diff of the state with all three planned
    await until(lambda: panel.cost == plan_cost_of({"cost": expected}))
    (eur,) = panel.cost["currencies"]
    assert eur["now"] == "0" and eur["change"] == eur["planned"] == expected["currencies"][0]["planned"]
    await engine.logout()
    await until(lambda: panel.locked)
    assert panel.cost == {}
    panel.close()


def test_a_snapshot_without_a_cost_gives_an_empty_one() -> None:
    assert plan_cost_of({"rows": []}) == {} and plan_cost_of(None) == {}
