"""Offline cost charts: SVG text with one bar segment per provider and day, escaped labels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from xml.etree import ElementTree

from legion_nb.engine.billing.frames import billing_frame
from legion_nb.widgets.charts import cost_per_day_svg, stacked_bars_svg


def test_cost_per_day_is_a_stacked_svg_bar_chart_that_needs_no_network() -> None:
    day = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
    rows = [
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
    svg = cost_per_day_svg(billing_frame(rows))
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
