"""Plotly figures of the panels' and notebooks' charts: per metric, per node, cost per day.

Plotly is the one charting library kept (``docs/architecture.md`` says why): its ``FigureWidget``
carries plotly.js in the wheel, so a panel's charts render in JupyterLab with no network. These
functions only reshape the plain points a view already holds (no engine reads, no thinning); the
panels redraw their widgets from them with :func:`redraw`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from legion_nb.engine.observe.metrics import MetricLabel, metric_label
from legion_nb.widgets.charts import (
    LINE_COLOURS,
    PROVIDER_COLOURS,
    UNATTRIBUTED,
    UNATTRIBUTED_NOTE,
    cost_per_day_series,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "billing_days_figure",
    "cost_per_day_figure",
    "metric_charts_figure",
    "metric_title",
    "reading",
    "redraw",
    "sparklines_figure",
    "stacked_bars_figure",
]

_OTHER = "#7a7a7a"
_MARGIN = {"l": 56, "r": 8, "t": 28, "b": 24}
_CHART_HEIGHT, _CHART_GAP = 150, 84  # pixels: one metric's plot, and the space under it
_CHARTS_TOP = 44  # pixels above the first chart: its title is two lines (label, then rule name)


def _times(points: Sequence[Sequence[float]]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(p[0] / 1000, dt.UTC) for p in points]


def metric_title(metric: str) -> str:
    """A chart's title: the metric's label with its unit, over its rule name in small grey type
    (the name an analyst copies into a query; the frames hold it as data)."""
    return f'{metric_label(metric).title}<br><span style="font-size:10px;color:#6e7781">{metric}</span>'


def reading(value: float, label: MetricLabel) -> str:
    """One value as its label's unit shows it: ``45.1%`` for a ratio in percent, ``312.3k bytes/s``
    (SI prefixes, as the chart axes have them), ``42`` for a count."""
    if label.percent:
        return f"{100 * value:.1f}%"
    unit = "" if label.unit in ("", "count") else f" {label.unit}"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{prefix}{unit}"
    return f"{value:.4g}{unit}"


def metric_charts_figure(charts: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One subplot per metric (the view's ``charts``), one coloured line per node on it, titled
    with :func:`metric_title`; a ratio shown in percent gets a percent axis."""
    if not charts:
        return go.Figure(layout={"height": 60, "margin": _MARGIN, "title": {"text": "No telemetry yet"}})
    # A fixed gap in pixels between charts leaves room for one chart's date labels (two lines) above
    # the next chart's two-line title, however many charts there are.
    margin = {**_MARGIN, "t": _CHARTS_TOP}
    height = _CHART_HEIGHT * len(charts) + _CHART_GAP * (len(charts) - 1) + margin["t"] + margin["b"]
    figure = make_subplots(
        rows=len(charts),
        cols=1,
        subplot_titles=[metric_title(str(c["metric"])) for c in charts],
        vertical_spacing=_CHART_GAP / (height - margin["t"] - margin["b"]) if len(charts) > 1 else 0.0,
    )
    colour_of: dict[str, str] = {}
    for row, chart in enumerate(charts, start=1):
        if metric_label(str(chart["metric"])).percent:
            figure.update_yaxes(tickformat=".0~%", hoverformat=".1%", row=row, col=1)
        values = {float(p[1]) for line in chart["series"] for p in line["points"]}
        if len(values) == 1 and (flat := values.pop()) > 1:
            # A constant (a disk's size) would get a range of +-1 around it and ticks such as
            # "42.949672961G"; from zero to twice the value the line reads as what it is.
            figure.update_yaxes(range=[0, 2 * flat], row=row, col=1)
        for line in chart["series"]:
            node = str(line["node"])
            first = node not in colour_of
            colour = colour_of.setdefault(node, LINE_COLOURS[len(colour_of) % len(LINE_COLOURS)])
            figure.add_scatter(
                x=_times(line["points"]),
                y=[p[1] for p in line["points"]],
                mode="lines",
                name=node,
                legendgroup=node,
                showlegend=first,
                line={"color": colour, "width": 1.5},
                row=row,
                col=1,
            )
    # SI prefixes: 30G for a byte count, where Plotly's default "30B" reads as thirty bytes.
    figure.update_yaxes(exponentformat="SI")
    figure.update_layout(height=height, margin=margin, template="plotly_white")
    return figure


def sparklines_figure(sparklines: Sequence[Mapping[str, Any]]) -> go.Figure:
    """A small line per node for the picked metric (the picks above name it), titled with the node
    and its last value in the metric's unit (:func:`reading`)."""
    if not sparklines:
        return go.Figure(layout={"height": 40, "margin": _MARGIN})
    titles = [
        f"{s['node']}: last {reading(float(s['last']), metric_label(str(s['metric'])))}" for s in sparklines
    ]
    figure = make_subplots(
        rows=len(sparklines), cols=1, subplot_titles=titles, vertical_spacing=0.5 / len(sparklines)
    )
    for row, spark in enumerate(sparklines, start=1):
        figure.add_scatter(
            x=_times(spark["points"]),
            y=[p[1] for p in spark["points"]],
            mode="lines",
            name=str(spark["node"]),
            showlegend=False,
            line={"color": LINE_COLOURS[0], "width": 1.2},
            row=row,
            col=1,
        )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(height=56 * len(sparklines) + 20, margin={"l": 8, "r": 8, "t": 20, "b": 4})
    return figure


def stacked_bars_figure(
    labels: Sequence[str], series: Mapping[str, Sequence[Decimal]], *, title: str, unit: str
) -> go.Figure:
    """One bar per label, stacked by series (in the mapping's order, provider colours); the bar
    heights are the only floats."""
    figure = go.Figure(
        layout={"barmode": "stack", "height": 260, "margin": _MARGIN, "template": "plotly_white"}
    )
    for name, values in series.items():
        figure.add_bar(
            x=list(labels),
            y=[float(v) for v in values],
            name=name,
            marker={"color": PROVIDER_COLOURS.get(name, _OTHER)},
        )
    # labels such as "12-01" or "2026-11" are names of bars, not dates for Plotly to place on a time axis
    figure.update_xaxes(type="category")
    figure.update_layout(title={"text": title if labels else f"{title} (no data)"}, yaxis_title=unit)
    return figure


def cost_per_day_figure(days: Sequence[Mapping[str, Any]]) -> go.Figure:
    """The billing view's ``days`` (a decimal-string cost per day, provider and currency) as bars
    stacked by provider, in the first row's currency; a day named :data:`UNATTRIBUTED` is the
    month to date no day accounts for."""
    if not days:
        return stacked_bars_figure([], {}, title="Cost per day", unit="")
    currency = str(days[0]["currency"])
    mine = [d for d in days if d["currency"] == currency]
    labels = sorted({str(d["day"]) for d in mine})
    position = {label: i for i, label in enumerate(labels)}
    series: dict[str, list[Decimal]] = {}
    for d in sorted(mine, key=lambda d: str(d["provider"])):
        costs = series.setdefault(str(d["provider"]), [Decimal(0)] * len(labels))
        costs[position[str(d["day"])]] += Decimal(str(d["cost"]))
    return stacked_bars_figure(
        labels, series, title=_noted(f"Cost per day ({currency})", labels), unit=currency
    )


def billing_days_figure(frame: pd.DataFrame, *, title: str = "Cost per day") -> go.Figure:
    """The ``by="day"`` billing frame (``billed_cost`` per provider and day) as stacked bars; one
    currency per chart (the frame's first)."""
    if frame.empty:
        return stacked_bars_figure([], {}, title=title, unit="")
    days, series, currency = cost_per_day_series(frame)
    return stacked_bars_figure(days, series, title=_noted(title, days), unit=currency)


def _noted(title: str, labels: Sequence[str]) -> str:
    """The title, with a line saying what the :data:`UNATTRIBUTED` bar holds when there is one."""
    return f"{title}<br><sup>{UNATTRIBUTED_NOTE}</sup>" if UNATTRIBUTED in labels else title


def redraw(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Replace ``widget``'s traces and layout by ``figure``'s in one message to the page."""
    with widget.batch_update():
        widget.data = ()
        widget.layout = figure.layout
        widget.add_traces(figure.data)
