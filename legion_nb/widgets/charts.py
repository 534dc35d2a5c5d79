"""Static charts: plain SVG text drawn from billing and telemetry frames, for saved notebooks.

The live charts come from Plotly (``widgets/figures.py``); a notebook reopened without a kernel has
no widget to draw them, so the panels carry these SVG strings as their static view: no script, no
network, small, and a test can read them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LINE_COLOURS",
    "PROVIDER_COLOURS",
    "UNATTRIBUTED",
    "UNATTRIBUTED_NOTE",
    "cost_per_day_series",
    "cost_per_day_svg",
    "line_chart_svg",
    "stacked_bars_svg",
]

PROVIDER_COLOURS: Mapping[str, str] = {"hetzner": "#d50c2d", "scaleway": "#4f0599", "ovh": "#123f6d"}
_OTHER = "#7a7a7a"
LINE_COLOURS: tuple[str, ...] = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
"""One colour per line of a chart, in series order (the page uses the same list)."""
_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 720, 240, 56, 28, 24


def stacked_bars_svg(
    labels: Sequence[str], series: Mapping[str, Sequence[Decimal]], *, title: str, unit: str
) -> str:
    """One bar per label, stacked by series (in the mapping's order), with a legend and a y scale."""
    totals = [sum((values[i] for values in series.values()), Decimal(0)) for i in range(len(labels))]
    top = max(totals, default=Decimal(0)) or Decimal(1)
    plot_w, plot_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - _TOP
    step = plot_w / max(1, len(labels))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - fraction)
        value = (top * Decimal(str(fraction))).quantize(Decimal("0.01"))
        parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{value} {escape(unit)}</text>')
    for i, label in enumerate(labels):
        x = _LEFT + i * step
        base = Decimal(0)
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            y0 = _TOP + plot_h * float(1 - (base + value) / top)
            height = plot_h * float(value / top)
            colour = PROVIDER_COLOURS.get(name, _OTHER)
            parts.append(
                f'<rect x="{x + step * 0.1:.1f}" y="{y0:.1f}" width="{step * 0.8:.1f}" height="{height:.1f}" '
                f'fill="{colour}"><title>{escape(f"{label} {name}: {value} {unit}")}</title></rect>'
            )
            base += value
        if len(labels) <= 16 or i % max(1, len(labels) // 8) == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{_HEIGHT - 10}" text-anchor="middle">{escape(label)}</text>'
            )
    for n, name in enumerate(series):  # the legend, right-aligned clear of the title
        x = _WIDTH - 8 - (len(series) - n) * 90
        colour = PROVIDER_COLOURS.get(name, _OTHER)
        parts.append(f'<rect x="{x}" y="5" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="14">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


UNATTRIBUTED = "unattributed"
"""The bar of a cost-per-day chart for the month to date no day accounts for: the provider bills the
month, Legion's estimates cover only the days and resources it listed (``part`` of the by-day rows)."""
UNATTRIBUTED_NOTE = "unattributed: billed this month by the provider, on no day Legion estimated"


def cost_per_day_series(frame: pd.DataFrame) -> tuple[list[str], dict[str, list[Decimal]], str]:
    """The ``by="day"`` billing frame as day labels, ``billed_cost`` per provider (sorted) and day,
    and the currency: the frame's first (one currency per chart). Rows whose ``part`` is
    ``unattributed`` make one bar of their own, :data:`UNATTRIBUTED`, after the days, so the bars
    add up to the month to date."""
    currency = str(frame["currency"].iloc[0])
    mine = frame[frame["currency"] == currency]
    parts = mine["part"] if "part" in mine.columns else ["day"] * len(mine)
    labels = [
        UNATTRIBUTED if part == UNATTRIBUTED else stamp.strftime("%m-%d")
        for stamp, part in zip(mine.index, parts, strict=True)
    ]
    days = sorted(set(labels))
    position = {day: i for i, day in enumerate(days)}
    series: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(days))
    for label, provider, cost in zip(labels, mine["provider"], mine["billed_cost"], strict=True):
        series[str(provider)][position[label]] += cost
    return days, {name: series[name] for name in sorted(series)}, currency


def cost_per_day_svg(frame: pd.DataFrame, *, title: str = "Cost per day") -> str:
    """The ``by="day"`` billing frame (``billed_cost`` per provider and day) as stacked bars; one
    currency per chart (the frame's first)."""
    if frame.empty:
        return stacked_bars_svg([], {}, title=f"{title} (no data)", unit="")
    days, series, currency = cost_per_day_series(frame)
    return stacked_bars_svg(days, series, title=title, unit=currency)


def line_chart_svg(title: str, series: Mapping[str, Sequence[Sequence[float]]]) -> str:
    """One line per named series of ``[epoch_ms, value]`` points on shared axes, with a legend and
    the value range; the x axis runs from the first to the last point (UTC times at its ends)."""
    import datetime as dt  # noqa: PLC0415 - only charts with time axes need it

    points = [p for values in series.values() for p in values]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    if not points:
        parts.append(f'<text x="{_LEFT}" y="{_HEIGHT // 2}">no data</text></svg>')
        return "".join(parts)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    plot_w, plot_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - _TOP
    for fraction, value in ((0.0, y0), (1.0, y1)):
        y = _TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{value:.3g}</text>')
    for n, (name, values) in enumerate(series.items()):
        colour = LINE_COLOURS[n % len(LINE_COLOURS)]
        path = " ".join(
            f"{_LEFT + plot_w * (t - x0) / span_x:.1f},{_TOP + plot_h * (1 - (v - y0) / span_y):.1f}"
            for t, v in values
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        parts.append(
            f'<rect x="{_WIDTH - 8 - (len(series) - n) * 110}" y="5" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(f'<text x="{_WIDTH - 8 - (len(series) - n) * 110 + 14}" y="14">{escape(name)}</text>')
    for at, anchor, x in ((x0, "start", _LEFT), (x1, "end", _WIDTH - 8)):
        stamp = dt.datetime.fromtimestamp(at / 1000, dt.UTC).strftime("%m-%d %H:%M")
        parts.append(f'<text x="{x}" y="{_HEIGHT - 10}" text-anchor="{anchor}">{stamp} UTC</text>')
    parts.append("</svg>")
    return "".join(parts)
