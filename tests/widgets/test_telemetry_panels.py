"""The telemetry and log panels over an engine whose stores hold collected data."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import legion_nb
from legion_nb.engine.observe.log_store import LogLine, LogStore
from legion_nb.engine.observe.methods import LOGS_FILENAME, TELEMETRY_FILENAME
from legion_nb.engine.observe.metrics import LABELS, METRICS, SeriesKey, metric_label
from legion_nb.engine.observe.telemetry_store import Samples, TelemetryStore
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.widgets import LogPanel, TelemetryPanel
from legion_nb.widgets.charts import line_chart_svg
from legion_nb.widgets.figures import metric_title, reading
from legion_nb.widgets.panel import STATIC
from legion_nb.widgets.telemetry import MAX_POINTS, telemetry_view

CPU = "instance:node_cpu_utilisation:rate5m"
LOAD = "instance:node_load1_per_cpu:ratio"


def stores_of(engine: Engine) -> tuple[TelemetryStore, LogStore]:
    return (
        TelemetryStore(engine.observation_dir / TELEMETRY_FILENAME),
        LogStore(engine.observation_dir / LOGS_FILENAME),
    )


async def test_the_panels_show_collected_metrics_and_search_logs() -> None:
    engine = await legion_nb.sandbox(seed=12, providers=("hetzner",))
    telemetry, logs = stores_of(engine)
    now = int(time.time() * 1000)
    rows = [
        (SeriesKey(node, metric), now - 1_800_000 + i * 15_000, float(i % 7) + (node == "hot"))
        for node in ("cool", "hot")
        for metric in (CPU, LOAD)
        for i in range(120)
    ]
    telemetry.ingest(Samples.from_rows(rows))
    telemetry.rollup()
    logs.append(
        [LogLine(now - 60_000 + i, "hot", "tribes", f"match {i} of the night", 6, i) for i in range(3)]
    )
    panel, log_panel = TelemetryPanel(engine), LogPanel(engine)
    try:
        await panel.refresh()
        assert panel.nodes == ["cool", "hot"] and panel.metrics == sorted([CPU, LOAD])
        assert panel.metric == panel.metrics[0]
        assert [s["node"] for s in panel.sparklines] == ["cool", "hot"]
        assert [c["metric"] for c in panel.charts] == panel.metrics
        assert all(len(s["series"]) == 2 for s in panel.charts)
        figure = panel.chart_figure  # Plotly: one subplot per metric, one line per node on each
        assert len(figure.data) == 2 * len(panel.metrics)
        titles = [a.text for a in figure.layout.annotations]  # the label with its unit, then the rule
        assert titles == [metric_title(m) for m in panel.metrics]
        assert titles[0].startswith("CPU utilisation (%)<br>") and CPU in titles[0]
        assert panel.labels == {CPU: "CPU utilisation (%)", LOAD: "Load per CPU, 1-minute average"}
        assert figure.layout.yaxis.tickformat == ".0~%" and figure.layout.yaxis2.tickformat is None
        assert panel.sparkline_figure.layout.annotations[0].text.endswith("%")  # a CPU share in percent
        assert len({trace.xaxis for trace in figure.data}) == len(panel.metrics)
        assert [trace.name for trace in panel.sparkline_figure.data] == ["cool", "hot"]
        assert figure.layout.width is None  # Plotly's own until the page reports the panel's width
        panel.width = 960  # the page reports it: the charts take the panel's width, and keep it
        assert figure.layout.width == 960 and panel.sparkline_figure.layout.width == 960
        panel.node = "hot"  # a pick in the page: the panel reads again
        await panel._pending  # type: ignore[misc]
        assert all([line["node"] for line in c["series"]] == ["hot"] for c in panel.charts)
        assert figure.layout.width == 960 and panel.sparkline_figure.layout.width == 960
        html = panel.static_html()
        assert (
            html.count("<svg") == 2
            and "polyline" in html
            and "http" not in html.replace("http://www.w3.org/2000/svg", "")
        )

        await log_panel.refresh()
        assert [line["text"] for line in log_panel.lines] == [f"match {i} of the night" for i in range(3)]
        assert log_panel.nodes == ["hot"] and log_panel.sources == ["tribes"]
        log_panel.query = "MATCH 1"
        await log_panel._pending  # type: ignore[misc]
        assert [line["text"] for line in log_panel.lines] == ["match 1 of the night"]
        log_panel.query = ""
        await log_panel._pending  # type: ignore[misc]
        logs.append([LogLine(now, "hot", "kernel", "a new line", 4, 10)])
        assert await log_panel.tail() == 1 and log_panel.lines[-1]["text"] == "a new line"
        assert "<td>a new line</td>" in log_panel.static_html()
        with pytest.raises(UsageError, match="positive"):
            log_panel.follow(0)
        with pytest.raises(UsageError, match="positive"):
            panel.follow(-1)

        await engine.logout()
        await panel.refresh()
        assert panel.status.startswith("stopped: state is locked")
    finally:
        panel.close()
        log_panel.close()
        telemetry.close()
        logs.close()
        await engine.aclose()


def test_the_view_thins_long_series_and_skips_empty_buckets() -> None:
    index = pd.DatetimeIndex(pd.date_range("2026-12-01", periods=1000, freq="1min", tz="UTC"), name="time")
    frame = pd.DataFrame(
        {
            "node": pd.Categorical(["a"] * 1000),
            "metric": pd.Categorical([CPU] * 1000),
            "mean": [float("nan")] + [float(i) for i in range(999)],
        },
        index=index,
    )
    view = telemetry_view(frame)
    (chart,) = view["charts"]
    points = chart["series"][0]["points"]
    assert len(points) == MAX_POINTS and points[-1] == [float(index[-1].value // 1_000_000), 998.0]
    assert points[0][1] == 0.0  # the empty first bucket is not drawn
    assert view["sparklines"][0]["last"] == 998.0
    assert telemetry_view(frame.iloc[:0]) == {"nodes": [], "metrics": [], "sparklines": [], "charts": []}


def test_every_metric_reads_in_words_with_its_unit_and_keeps_its_rule_name() -> None:
    assert set(LABELS) == {spec.name for spec in METRICS}
    for spec in METRICS:
        label = metric_label(spec.name)
        assert label.text and ":" not in label.text and "_" not in label.text, label
        assert spec.name in metric_title(spec.name)  # the rule name stays visible, to copy
    assert metric_label(CPU).title == "CPU utilisation (%)"
    net = "instance:node_network_receive_bytes_excluding_lo:rate5m"
    assert metric_label(net).title == "Network receive (bytes/s)"
    assert metric_label("custom_metric").title == "custom_metric"  # unknown: its own name
    assert reading(0.4514, metric_label(CPU)) == "45.1%"
    assert reading(312345.0, metric_label(net)) == "312.3k bytes/s"
    assert reading(42.0, metric_label("tribes_players")) == "42"


def test_charts_are_offline_svg_and_the_pages_escape_nothing_into_markup() -> None:
    svg = line_chart_svg("cpu <x>", {"a&b": [[0.0, 1.0], [60_000.0, 2.0]]})
    assert svg.startswith("<svg") and "cpu &lt;x&gt;" in svg and "a&amp;b" in svg
    for name in ("telemetry.js", "logs.js"):
        source = (STATIC / name).read_text(encoding="utf-8")
        assert "innerHTML" not in source and "http" not in source.replace("http://www.w3.org/2000/svg", "")


def test_frames_chart_with_plain_plot_through_plotly() -> None:
    index = pd.DatetimeIndex(pd.date_range("2026-12-01", periods=30, freq="5min", tz="UTC"), name="time")
    wide = pd.DataFrame({"web-1": range(30), "web-2": [float("nan")] + [2.0] * 29}, index=index)
    with pd.option_context("plotting.backend", "legion_nb.widgets.plotting"):
        chart = wide.plot(title="cpu")
        assert len(chart.data) == 2 and chart.layout.title.text == "cpu"
        assert len(wide["web-1"].plot().data) == 1
        with pytest.raises(UsageError, match="line charts only"):
            wide.plot(kind="bar")
        with pytest.raises(UsageError, match="indexed by time"):
            wide.reset_index(drop=True).plot()
