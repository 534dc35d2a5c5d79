"""The telemetry panel: a sparkline per node for one metric, and one chart per metric.

The panel asks the engine for a telemetry frame (``engine.telemetry``, in process or through the
daemon) over the chosen window and rollup, and reshapes it into plain points in synced traits; its
Plotly ``FigureWidget`` charts (sparklines, a subplot per metric) are redrawn from those points and
shown under the page's picks (no network: the charting choice is in ``docs/architecture.md``).
Picking a node, a metric or a window in the page sets the matching trait and the panel reads again;
:meth:`TelemetryPanel.follow` re-reads every few seconds while collection runs. A saved notebook
reopened without a kernel shows the same charts as static SVG (``_repr_mimebundle_`` carries them
beside the widget view).

Metrics keep their recording-rule names as values (the frames' data, the picks' values); what a
person reads is the engine's label for each (:data:`legion_nb.engine.observe.metrics.LABELS`,
``CPU utilisation (%)``), with the rule name as a caption to copy. The page reports the panel's
width and the charts are drawn that wide (:class:`~legion_nb.widgets.width.PanelWidth`, as the
billing panel's chart is).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import ipywidgets
import plotly.graph_objects as go
import traitlets

from legion_nb.engine.observe.metrics import metric_label
from legion_nb.errors import LegionError, UsageError
from legion_nb.widgets.charts import line_chart_svg
from legion_nb.widgets.figures import metric_charts_figure, redraw, sparklines_figure
from legion_nb.widgets.panel import STATIC, PolledPanel, esm_of
from legion_nb.widgets.width import PanelWidth

if TYPE_CHECKING:
    import pandas as pd

    from legion_nb.engine.surface import EngineAPI

__all__ = ["TelemetryPanel", "telemetry_view"]

MAX_POINTS = 240
"""Points per drawn series: a chart a few hundred pixels wide shows no more."""

WINDOWS = ("15m", "1h", "6h", "24h", "7d")


def telemetry_view(frame: pd.DataFrame, *, node: str = "", metric: str = "") -> dict[str, Any]:
    """The panel's traits from a telemetry frame (raw ``value`` or a rollup's ``mean``): the nodes
    and metrics present, a sparkline per node of ``metric`` (the first metric when empty), and a
    chart per metric of ``node`` (every node when empty), each series at most :data:`MAX_POINTS`."""
    import pandas as pd  # noqa: PLC0415 - a panel reads frames, which loaded pandas already

    if frame.empty:
        return {"nodes": [], "metrics": [], "sparklines": [], "charts": []}
    value = "value" if "value" in frame.columns else "mean"
    nodes = sorted({str(n) for n in frame["node"].unique()})
    metrics = sorted({str(m) for m in frame["metric"].unique()})
    chosen = metric if metric in metrics else metrics[0]
    index = pd.DatetimeIndex(frame.index)
    times = index.as_unit("ms").asi8.tolist()
    values = frame[value].tolist()
    series: dict[tuple[str, str], list[list[float]]] = {}
    for at, n, m, v in zip(times, frame["node"].tolist(), frame["metric"].tolist(), values, strict=True):
        if not math.isnan(v):  # buckets without samples are skipped
            series.setdefault((str(n), str(m)), []).append([float(at), float(v)])
    sparklines = [
        {
            "node": n,
            "metric": chosen,
            "points": _thin(series[(n, chosen)]),
            "last": series[(n, chosen)][-1][1],
        }
        for n in nodes
        if (n, chosen) in series
    ]
    charts = []
    for m in metrics:
        lines = [
            {"node": n, "points": _thin(series[(n, m)])}
            for n in nodes
            if (n, m) in series and (not node or n == node)
        ]
        if lines:
            charts.append({"metric": m, "series": lines})
    return {"nodes": nodes, "metrics": metrics, "sparklines": sparklines, "charts": charts}


def _thin(points: list[list[float]]) -> list[list[float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    thinned = [points[int(i * step)] for i in range(MAX_POINTS - 1)]
    thinned.append(points[-1])
    return thinned


class TelemetryPanel(PanelWidth, PolledPanel):
    """Node metrics of one engine (module notes); ``close()`` stops following it."""

    _esm = esm_of("telemetry")
    _css = (STATIC / "panels.css").read_text(encoding="utf-8")
    picks = ("node", "metric", "window", "tier")
    what = "telemetry panel"

    title = traitlets.Unicode("Telemetry").tag(sync=True)
    status = traitlets.Unicode("waiting").tag(sync=True)
    node = traitlets.Unicode("").tag(sync=True)
    metric = traitlets.Unicode("").tag(sync=True)
    window = traitlets.Unicode("1h").tag(sync=True)
    tier = traitlets.Unicode("1m").tag(sync=True)
    windows = traitlets.List(traitlets.Unicode(), default_value=list(WINDOWS)).tag(sync=True)
    nodes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    metrics = traitlets.List(traitlets.Unicode()).tag(sync=True)
    sparklines = traitlets.List(traitlets.Dict()).tag(sync=True)
    charts = traitlets.List(traitlets.Dict()).tag(sync=True)
    labels = traitlets.Dict(traitlets.Unicode()).tag(sync=True)
    """Each metric's label with its unit, keyed by its rule name (the picks show the label)."""

    def __init__(self, engine: EngineAPI, **traits: Any) -> None:
        super().__init__(engine, **traits)
        self._engine: EngineAPI = engine
        self.sparkline_figure = go.FigureWidget()
        self.sparkline_figure.add_class("lnb-sparklines")
        self.chart_figure = go.FigureWidget()
        self.chart_figure.add_class("lnb-charts")
        self.view = ipywidgets.VBox([self, self.sparkline_figure, self.chart_figure])
        self.view.add_class("lnb-telemetry-view")
        self.fit(self.sparkline_figure, self.chart_figure)

    async def refresh(self) -> None:
        """Read the window's telemetry and redraw (a failure shows in ``status``)."""
        if self.tier not in ("raw", "1m", "5m", "1h"):
            raise UsageError(f"unknown telemetry tier {self.tier!r}: use raw, 1m, 5m or 1h")
        try:
            frame = await self._engine.telemetry(since=self.window, tier=self.tier)
        except LegionError as exc:  # shown in the panel: a locked engine, a bad window
            self.status = f"stopped: {exc.message}"
            return
        view = telemetry_view(frame, node=self.node, metric=self.metric)
        with self.hold_sync():
            for name, value in view.items():
                setattr(self, name, value)
            self.labels = {m: metric_label(m).title for m in view["metrics"]}
            if self.metric not in view["metrics"] and view["metrics"]:
                self.set_trait("metric", view["metrics"][0])
            self.status = f"{len(frame)} points, read {dt.datetime.now(dt.UTC):%H:%M:%S} UTC"
        redraw(self.sparkline_figure, self.sized(sparklines_figure(self.sparklines)))
        redraw(self.chart_figure, self.sized(metric_charts_figure(self.charts)))

    def follow(self, interval: float = 10.0) -> None:
        """Refresh now and every ``interval`` seconds until :meth:`close` (a task this panel owns)."""
        super().follow(interval)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The picks and the Plotly charts together, plus :meth:`static_html` for a saved notebook."""
        bundle = self.view._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/html"] = self.static_html()
        return bundle

    def close(self) -> None:
        for widget in (self.view, self.sparkline_figure, self.chart_figure):
            widget.close()
        super().close()

    def static_html(self) -> str:
        """The charts as SVG (what a saved notebook shows where no widget can run)."""
        charts = [
            line_chart_svg(
                f"{metric_label(c['metric']).title} \u2014 {c['metric']}",
                {s["node"]: s["points"] for s in c["series"]},
            )
            for c in self.charts
        ]
        return "<div>" + ("".join(charts) or "<p>No telemetry yet.</p>") + "</div>"
