"""Offline cost charts: SVG text with one bar segment per provider and day, escaped labels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from xml.etree import ElementTree

from legion_nb.engine.billing.frames import billing_frame
from legion_nb.widgets.billing import billing_view
from legion_nb.widgets.charts import cost_per_day_svg, stacked_bars_svg
from legion_nb.widgets.figures import billing_days_figure, cost_per_day_figure


def _three_days() -> list[dict[str, str]]:
    day = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
    return [
        {
            "start": (day + dt.timedelta(days=k)).isoformat(),
            "end": "",
            "provider": p,
            "billed_cost": c,
            "currency": "EUR",
            "source": "estimate",
        }
        for k in range(3)
        for p, c in (("hetzner", "0.144"), ("ovh", "1.63"))
    ]


def test_cost_per_day_is_a_stacked_svg_bar_chart_that_needs_no_network() -> None:
    svg = cost_per_day_svg(billing_frame(_three_days()))
    root = ElementTree.fromstring(svg)
    rects = [
        e
        for e in root.iter("{http://www.w3.org/2000/svg}rect")
        if e.find("{http://www.w3.org/2000/svg}title") is not None
    ]
    assert len(rects) == 6
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "11-03" in svg and "EUR" in svg


def test_labels_are_escaped_and_empty_charts_still_render() -> None:
    svg = stacked_bars_svg(["<a>"], {"x&y": [Decimal(1)]}, title="t<", unit="EUR")
    ElementTree.fromstring(svg)
    assert "&lt;a&gt;" in svg and "x&amp;y" in svg
    ElementTree.fromstring(cost_per_day_svg(billing_frame([])))


def test_plotly_draws_the_same_stacked_days_from_a_frame_and_from_the_panel_view() -> None:
    figure = billing_days_figure(billing_frame(_three_days()), title="per day")
    assert figure.layout.barmode == "stack" and figure.layout.title.text == "per day"
    assert figure.layout.xaxis.type == "category"  # "11-03" names a bar, it is no date
    assert [(bar.name, list(bar.x), list(bar.y)) for bar in figure.data] == [
        ("hetzner", ["11-03", "11-04", "11-05"], [0.144] * 3),
        ("ovh", ["11-03", "11-04", "11-05"], [1.63] * 3),
    ]
    days = [{"day": "2026-11-03", "provider": "ovh", "currency": "EUR", "cost": "1.63"}]
    (bar,) = cost_per_day_figure(days).data
    assert bar.name == "ovh" and list(bar.y) == [1.63]
    assert (
        cost_per_day_figure([]).data == ()
        and "no data" in billing_days_figure(billing_frame([])).layout.title.text
    )


def test_the_month_to_date_no_day_holds_is_a_bar_of_its_own_and_the_title_says_so() -> None:
    unattributed = {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-05T12:00:00Z",
        "provider": "ovh",
        "billed_cost": "2.04",
        "currency": "EUR",
        "source": "usage",
        "part": "unattributed",
    }
    rows = [{**row, "part": "day"} for row in _three_days()] + [unattributed]
    figure = billing_days_figure(billing_frame(rows), title="per day")
    bars = {bar.name: dict(zip(bar.x, bar.y, strict=True)) for bar in figure.data}
    assert list(bars["ovh"]) == ["11-03", "11-04", "11-05", "unattributed"]
    assert bars["ovh"]["unattributed"] == 2.04 and bars["hetzner"]["unattributed"] == 0
    assert figure.layout.title.text.startswith("per day<br>") and "no day" in figure.layout.title.text
    view = billing_view([], [], rows, [])
    assert view["days"][-1] == {"day": "unattributed", "provider": "ovh", "currency": "EUR", "cost": "2.04"}
    chart = cost_per_day_figure(view["days"])
    assert "unattributed" in chart.layout.title.text and list(chart.data[1].x)[-1] == "unattributed"
