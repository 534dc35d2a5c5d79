"""The billing panel: month to date and forecast per provider, top resources, cost per day, orphans.

Unlike the live panels, billing has no stream: its figures change when a collection pass reads the
providers, so the panel asks the engine (in process, or the daemon's ``RemoteEngine``) for its
billing rows on :meth:`BillingPanel.refresh`, or every ``interval`` seconds after
:meth:`BillingPanel.follow`. Every figure stays a decimal string in the traits; the cost-per-day
chart is a Plotly ``FigureWidget`` shown under the page's tables (plotly.js comes from the wheel, no
network), its bar heights the only floats, drawn as wide as the page says the panel is
(:class:`~legion_nb.widgets.width.PanelWidth`, as the telemetry panel's charts are).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import plotly.graph_objects as go
import traitlets

from legion_nb.errors import LegionError, UsageError
from legion_nb.widgets.charts import UNATTRIBUTED
from legion_nb.widgets.figures import cost_per_day_figure, redraw
from legion_nb.widgets.panel import STATIC, esm_of
from legion_nb.widgets.width import PanelWidth

if TYPE_CHECKING:
    from legion_nb.engine.surface import EngineAPI

__all__ = ["BillingPanel", "billing_view"]

log = logging.getLogger(__name__)

Rows = Sequence[Mapping[str, Any]]
_TOTALS = ("provider", "currency", "month_to_date", "forecast", "provider_forecast", "source")


def billing_view(
    forecast: Rows, resources: Rows, days: Rows, reconciliation: Rows, *, top: int = 10
) -> dict[str, Any]:
    """The panel's traits from the engine's billing rows (pure: tests feed it rows directly);
    ``days`` are the ledger's by-day rows, whose ``unattributed`` part becomes a day of that name
    so the chart's bars add up to the month to date in the totals above it."""
    totals = [{key: row.get(key) for key in _TOTALS} for row in forecast]
    ranked = sorted(resources, key=lambda r: Decimal(str(r.get("billed_cost") or 0)), reverse=True)[:top]
    # The ledger's totals name a resource by the provider's id; the reconciliation knows its name.
    names = {r.get("resource"): r.get("resource_name") for r in reconciliation if r.get("resource_name")}
    top_rows = [
        {
            "provider": r.get("provider"),
            "name": names.get(r.get("resource")) or r.get("resource"),
            "resource": r.get("resource"),
            "cost": r.get("billed_cost"),
            "currency": r.get("currency"),
            "source": r.get("source"),
        }
        for r in ranked
    ]
    per_day: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for row in days:
        day = UNATTRIBUTED if row.get("part") == UNATTRIBUTED else str(row.get("start") or "")[:10]
        key = (day, str(row.get("provider")), str(row.get("currency")))
        per_day[key] += Decimal(str(row.get("billed_cost") or 0))
    chart = [
        {"day": day, "provider": provider, "currency": currency, "cost": str(cost)}
        for (day, provider, currency), cost in sorted(per_day.items())
    ]
    orphans = [
        {
            "provider": r.get("provider"),
            "name": r.get("resource_name") or r.get("resource"),
            "resource": r.get("resource"),
            "kind": r.get("kind") or "",
            "address": r.get("address") or "",
            "ownership": r.get("ownership"),
            "estimate": r.get("estimate"),
            "currency": r.get("currency"),
        }
        for r in reconciliation
        if r.get("orphan")
    ]
    return {"totals": totals, "top": top_rows, "days": chart, "orphans": orphans}


class BillingPanel(PanelWidth, anywidget.AnyWidget):
    """Billing at a glance for one engine (module notes); ``close()`` stops following it."""

    _esm = esm_of("billing")
    _css = (STATIC / "panels.css").read_text(encoding="utf-8")

    title = traitlets.Unicode("Billing").tag(sync=True)
    status = traitlets.Unicode("waiting").tag(sync=True)
    totals = traitlets.List(traitlets.Dict()).tag(sync=True)
    top = traitlets.List(traitlets.Dict()).tag(sync=True)
    days = traitlets.List(traitlets.Dict()).tag(sync=True)
    orphans = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, engine: EngineAPI, **traits: Any) -> None:
        super().__init__(**traits)
        self._engine = engine
        self._task: asyncio.Task[None] | None = None
        self.cost_figure = go.FigureWidget()
        self.cost_figure.add_class("lnb-cost-chart")
        self.view = ipywidgets.VBox([self, self.cost_figure])
        self.view.add_class("lnb-billing-view")
        self.fit(self.cost_figure)

    async def refresh(self, *, collect: bool = True) -> None:
        """Read the engine's billing rows (collecting from the providers first, by default)."""
        try:
            forecast = await self._engine.billing_forecast(collect=collect)
            resources = await self._engine.billing_ledger(by="resource", collect=False)
            days = await self._engine.billing_ledger(by="day", collect=False)
            reconciliation = await self._engine.billing_reconciliation(collect=False)
        except LegionError as exc:  # shown in the panel: a locked engine or an unreachable provider
            self.status = f"stopped: {exc.message}"
            return
        view = billing_view(forecast, resources, days, reconciliation)
        with self.hold_sync():
            for name, value in view.items():
                setattr(self, name, value)
            self.status = f"collected {dt.datetime.now(dt.UTC):%H:%M:%S} UTC"
        redraw(self.cost_figure, self.sized(cost_per_day_figure(self.days)))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The tables and the Plotly cost-per-day chart together."""
        return self.view._repr_mimebundle_(**kwargs)

    def follow(self, interval: float = 300.0) -> None:
        """Refresh now and every ``interval`` seconds until :meth:`close` (a task this panel owns)."""
        if interval <= 0:
            raise UsageError(f"billing refresh interval {interval} is not valid; use a positive number")
        if self._task is not None and not self._task.done():
            raise UsageError("this billing panel already follows its engine: close it and create a new one")
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._follow(interval), name="legion-billing-panel")

    async def _follow(self, interval: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # logged, and the next round tries again: a panel must not die silently
                log.exception("billing panel refresh failed")
            await asyncio.sleep(interval)

    def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        for widget in (self.view, self.cost_figure):
            widget.close()
        super().close()
