"""The billing panel over a sandbox engine: totals per provider, top resources, days and orphans."""

from __future__ import annotations

from decimal import Decimal

import pytest

import legion_nb
from legion_nb.errors import UsageError
from legion_nb.widgets import BillingPanel
from legion_nb.widgets.billing import billing_view
from legion_nb.widgets.panel import STATIC


async def test_the_billing_panel_shows_what_the_engine_collected() -> None:
    engine = await legion_nb.sandbox(seed=8, history_days=20, providers=("scaleway", "ovh"))
    panel = BillingPanel(engine)
    try:
        await panel.refresh()
        assert panel.status.startswith("collected")
        forecast = await engine.billing_forecast(collect=False)
        assert panel.totals == [
            {
                k: row[k]
                for k in ("provider", "currency", "month_to_date", "forecast", "provider_forecast", "source")
            }
            for row in forecast
        ]
        costs = [Decimal(r["cost"]) for r in panel.top]
        assert costs == sorted(costs, reverse=True) and len(panel.top) <= 10
        assert panel.orphans == []  # the history's servers are gone, nothing listed is unplanned
        bars = panel.cost_figure.data  # the Plotly chart under the tables: stacked bars per provider
        assert panel.cost_figure.layout.barmode == "stack"
        assert sorted(bar.name for bar in bars) == sorted({d["provider"] for d in panel.days})
        assert sum(len(bar.y) for bar in bars) == len(panel.days)
        assert panel.view.children == (panel, panel.cost_figure)
        assert panel.cost_figure.layout.width is None  # Plotly's own until the page reports a width
        panel.width = 960  # the page reports the panel's width: the chart takes it, and keeps it
        assert panel.cost_figure.layout.width == 960
        await panel.refresh(collect=False)
        assert panel.cost_figure.layout.width == 960
        with pytest.raises(UsageError, match="positive"):
            panel.follow(0)
        await engine.logout()
        await panel.refresh(collect=False)
        assert panel.status.startswith("stopped: state is locked")
    finally:
        panel.close()
        await engine.aclose()


def test_the_view_ranks_resources_sums_days_and_keeps_only_orphans() -> None:
    view = billing_view(
        [],
        [
            {"provider": "ovh", "resource": "a", "billed_cost": "1.5", "currency": "EUR", "source": "usage"},
            {"provider": "ovh", "resource": "b", "billed_cost": "10", "currency": "EUR", "source": "usage"},
        ],
        [
            {"start": "2026-11-02T00:00:00Z", "provider": "ovh", "billed_cost": "0.25", "currency": "EUR"},
            {"start": "2026-11-02T00:00:00Z", "provider": "ovh", "billed_cost": "0.5", "currency": "EUR"},
        ],
        [
            {
                "provider": "ovh",
                "resource": "x",
                "resource_name": "stray",
                "orphan": True,
                "ownership": "unlabelled",
            },
            {"provider": "ovh", "resource": "y", "orphan": False},
            {"provider": "ovh", "resource": "b", "resource_name": "web-2", "orphan": False},
        ],
    )
    assert [r["name"] for r in view["top"]] == ["web-2", "a"]  # a name where one is known
    assert [r["resource"] for r in view["top"]] == ["b", "a"]
    assert view["days"] == [{"day": "2026-11-02", "provider": "ovh", "currency": "EUR", "cost": "0.75"}]
    assert [o["name"] for o in view["orphans"]] == ["stray"]


def test_the_page_never_parses_markup() -> None:
    script = (STATIC / "billing.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "http" not in script.replace("http://www.w3.org/2000/svg", "")
