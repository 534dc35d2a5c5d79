"""Frames: the analyst's view of the stores, built once at the engine's edge.

Every frame is tidy and long: one row per observation, a UTC ``DatetimeIndex`` named ``time``,
labels as ``category`` columns and measures with their own dtypes, so ``resample``, ``groupby``,
``pivot_table`` and ``plot`` work on it as it is. The CLI's ``--json`` rows and the daemon wire are
made from the same frames (:func:`frame_rows`, :func:`frame_from_rows`), so a frame that crossed
the daemon equals the one built in process.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from legion_nb.engine.observe.telemetry_store import TelemetryColumns

__all__ = ["frame_from_rows", "frame_rows", "telemetry_frame"]

TIME = "time"


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


def _categorical(labels: Sequence[str], codes: np.ndarray[Any, Any]) -> pd.Categorical[str]:
    categories = sorted(set(labels))
    position = {label: i for i, label in enumerate(categories)}
    lookup = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    mapped: np.ndarray[Any, np.dtype[np.int64]] = lookup[codes] if len(codes) else codes.astype(np.int64)
    return pd.Categorical.from_codes(mapped, categories=pd.Index(categories))


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON rows for ``--json`` and the daemon: ``time`` first as ISO 8601 UTC, then the columns;
    ``Decimal`` money as decimal strings, missing values as null."""
    times = [_iso(ts) for ts in frame.index] if isinstance(frame.index, pd.DatetimeIndex) else []
    columns = list(frame.columns)
    rows: list[dict[str, Any]] = []
    values = [frame[c].tolist() for c in columns]
    for i in range(len(frame)):
        row: dict[str, Any] = {TIME: times[i]} if times else {}
        for name, column in zip(columns, values, strict=True):
            row[name] = _json_value(column[i])
        rows.append(row)
    return rows


def frame_from_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    categories: Sequence[str] = (),
    decimals: Sequence[str] = (),
    integers: Sequence[str] = (),
    times: Sequence[str] = (),
) -> pd.DataFrame:
    """The frame :func:`frame_rows` was made from: ``time`` back as the UTC index, the named
    columns back to ``category``, ``Decimal``, ``int64`` and UTC datetimes."""
    frame = pd.DataFrame(list(rows))
    if TIME in frame.columns:
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop(TIME), utc=True, format="ISO8601"), name=TIME)
    for name in categories:
        if name in frame.columns:
            frame[name] = frame[name].astype("category")
    for name in decimals:
        if name in frame.columns:
            frame[name] = pd.Series(
                [None if v is None else Decimal(v) for v in frame[name]], index=frame.index, dtype=object
            )
    for name in integers:
        if name in frame.columns:
            frame[name] = frame[name].astype("int64")
    for name in times:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def _iso(ts: Any) -> str:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    text = stamp.tz_convert("UTC").isoformat()
    return text.replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, pd.Timestamp | dt.datetime):
        return _iso(value)
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return value
