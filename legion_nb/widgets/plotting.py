"""pandas' ``frame.plot()`` through Plotly, the one charting library kept, for telemetry frames.

Plotly ships a pandas plotting backend; this module selects the frames it suits (a Series or a wide
DataFrame indexed by UTC time: a telemetry frame's column, a ``pivot_table`` by node) and hands them
to it, so a bad frame fails with a one-line UsageError instead of a chart of row numbers. Select it
once::

    pd.set_option("plotting.backend", "legion_nb.widgets.plotting")
    (await engine.telemetry(nodes="web-1", metrics=CPU, tier="5m"))["max"].plot()

The result is a Plotly figure: JupyterLab draws it with the plotly.js its extension bundles (no
network), and the saved notebook keeps the figure's JSON.
"""

from __future__ import annotations

from typing import Any

import plotly
import plotly.graph_objects as go

from legion_nb.errors import UsageError

__all__ = ["plot"]


def plot(data: Any, kind: str = "line", x: Any = None, y: Any = None, **options: Any) -> go.Figure:
    """pandas' backend entry point: a line per numeric column of ``data`` (or ``y``) against its UTC
    time index. Other kinds, and frames not indexed by time, are a UsageError."""
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
    wide = frame[columns].set_axis(index, axis=0)
    wide.columns = [str(c) for c in columns]
    named = str(data.name) if isinstance(data, pd.Series) and data.name else ""
    title = options.pop("title", None) or named
    figure: go.Figure = plotly.plot(wide, kind="line", title=str(title), **options)
    figure.update_layout(template="plotly_white", legend_title_text="", xaxis_title="time (UTC)")
    return figure
