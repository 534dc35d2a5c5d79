"""Frames: the analyst's view of the telemetry and log stores, built once at the engine's edge.

Every frame is tidy and long: one row per observation, a UTC ``DatetimeIndex`` named ``time``,
labels as ``category`` columns and measures with their own dtypes, so ``resample``, ``groupby``,
``pivot_table`` and ``plot`` work on it as it is. The CLI's ``--json`` rows and the daemon wire are
made from the same frames by :mod:`legion_nb.engine.frame_wire`, so a frame that crossed the daemon
equals the one built in process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from legion_nb.engine.frame_wire import TIME
from legion_nb.engine.observe.log_store import LEVELS, LogRows
from legion_nb.engine.observe.telemetry_store import TelemetryColumns

__all__ = ["log_frame", "telemetry_frame"]


def telemetry_frame(columns: TelemetryColumns) -> pd.DataFrame:
    """``node``, ``metric``, ``device`` and ``value`` (raw) or ``mean``/``min``/``max``/``sum``/
    ``count`` (rollups), indexed by sample or bucket start time, sorted by time."""
    keys = columns.series
    codes = columns.codes
    data: dict[str, Any] = {
        "node": _categorical([k.node for k in keys], codes),
        "metric": _categorical([k.metric for k in keys], codes),
        "device": _categorical([k.device for k in keys], codes),
    }
    if columns.tier == "raw":
        data["value"] = columns.values["value"].astype(np.float64, copy=False)
    else:
        count = columns.values["count"].astype(np.int64)
        total = columns.values["sum"].astype(np.float64, copy=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            data["mean"] = total / count
        data["min"] = columns.values["min"].astype(np.float64, copy=False)
        data["max"] = columns.values["max"].astype(np.float64, copy=False)
        data["sum"] = total
        data["count"] = count
    index = pd.DatetimeIndex(pd.to_datetime(columns.time_ms, unit="ms", utc=True), name=TIME)
    frame = pd.DataFrame(data, index=index)
    order = np.lexsort((codes, columns.time_ms))
    return frame.iloc[order]


def log_frame(rows: LogRows) -> pd.DataFrame:
    """``id`` (grows with insertion: pass the last one as ``after_id`` to follow), ``node``,
    ``source`` and ``level`` (an ordered category, ``emerg`` worst) as labels, the node's journal
    ``seq`` (``<NA>`` for Legion's own lines) and ``text``, indexed by the line's time."""
    index = pd.DatetimeIndex(
        pd.to_datetime(np.asarray(rows.time_ms, dtype=np.int64), unit="ms", utc=True), name=TIME
    )
    levels = pd.Categorical.from_codes(
        np.asarray(rows.level, dtype=np.int64), categories=pd.Index(LEVELS), ordered=True
    )
    data: dict[str, Any] = {
        "id": np.asarray(rows.id, dtype=np.int64),
        "node": pd.Categorical(rows.node, categories=pd.Index(sorted(set(rows.node)))),
        "source": pd.Categorical(rows.source, categories=pd.Index(sorted(set(rows.source)))),
        "level": levels,
        "seq": pd.array(rows.seq, dtype="Int64"),
        "text": pd.array(rows.text, dtype=object),
    }
    return pd.DataFrame(data, index=index)


def _categorical(labels: Sequence[str], codes: np.ndarray[Any, Any]) -> pd.Categorical[str]:
    categories = sorted(set(labels))
    position = {label: i for i, label in enumerate(categories)}
    lookup = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    mapped: np.ndarray[Any, np.dtype[np.int64]] = lookup[codes] if len(codes) else codes.astype(np.int64)
    return pd.Categorical.from_codes(mapped, categories=pd.Index(categories))
