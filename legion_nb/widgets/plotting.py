"""A pandas plotting backend that draws Legion's offline SVG line charts: ``frame.plot()`` as is.

pandas' ``plot()`` needs a backend; its default, matplotlib, is not a dependency here, and the
panels and notebooks keep one charting path (SVG text, no network). Select this module once::

    pd.set_option("plotting.backend", "legion_nb.widgets.plotting")
    (await engine.telemetry(nodes="web-1", metrics=CPU, tier="5m"))["max"].plot()

and a Series or a wide DataFrame indexed by time (a telemetry frame's column, a ``pivot_table`` by
node) charts as one line per column, shown by Jupyter as SVG and saved with the notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from legion_nb.errors import UsageError
from legion_nb.widgets.charts import line_chart_svg

__all__ = ["SvgChart", "plot"]


@dataclass(frozen=True, slots=True)
class SvgChart:
    """A drawn chart: Jupyter shows its SVG; ``svg`` is the text for a file or a page."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg


def plot(data: Any, kind: str = "line", x: Any = None, y: Any = None, **options: Any) -> SvgChart:
    """pandas' backend entry point: a line chart of ``data``'s numeric columns (or ``y``) against
    its UTC time index. Other kinds, and frames not indexed by time, are a UsageError."""
    import pandas as pd  # noqa: PLC0415 - only pandas calls this

    if kind != "line":
        raise UsageError(f"Legion's plotting backend draws line charts only, not {kind!r}")
    frame = data.to_frame() if isinstance(data, pd.Series) else data
    if x is not None:
        frame = frame.set_index(x)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise UsageError(
            "Legion's plotting backend charts frames indexed by time (a telemetry frame's index)"
        )
    columns = [y] if isinstance(y, str) else list(y) if y is not None else list(frame.select_dtypes("number"))
    if not columns:
        raise UsageError("nothing to chart: the frame has no numeric column")
    index = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
    times = index.as_unit("ms").asi8.tolist()
    series = {
        str(name): [
            [float(t), float(v)]
            for t, v in zip(times, frame[name].tolist(), strict=True)
            if not math.isnan(v)
        ]
        for name in columns
    }
    title = options.get("title") or (str(data.name) if isinstance(data, pd.Series) and data.name else "")
    return SvgChart(line_chart_svg(str(title), series))
