"""A frame as JSON: its rows for ``--json`` and its wire form for the daemon, and back.

Every frame the engine hands out (telemetry, logs, billing, the snapshot's views) crosses a process
boundary the same way, so the conversion lives below all of them. :func:`frame_rows` gives JSON
rows (``time`` first as ISO 8601 UTC, ``Decimal`` money as decimal strings, missing values as
null) and :func:`frame_from_rows` rebuilds the frame from them when the caller names the column
types (a missing ``Decimal`` comes back as ``pd.NA``). Over the daemon a frame travels as its
*wire form* (:func:`frame_wire`, :func:`frame_from_wire`): the JSON rows plus each column's kind
and, for ``category`` columns, the categories in order, so the frame rebuilt on the other side is
equal to the original, dtypes and all (``docs/daemon-protocol.md`` has the shape).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pandas as pd

from legion_nb.errors import UsageError

__all__ = ["TIME", "frame_from_rows", "frame_from_wire", "frame_rows", "frame_wire"]

ColumnKind = str
"""``category``, ``int64``, ``Int64``, ``float64``, ``bool``, ``time`` (UTC), ``decimal``,
``string`` (pandas' string dtype, missing as ``pd.NA``) or ``object``."""

TIME = "time"
"""The name of a time-indexed frame's index, and of its column in the JSON rows."""


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON rows for ``--json`` and the daemon: ``time`` first as ISO 8601 UTC, then the columns;
    ``Decimal`` money as decimal strings, missing values as null."""
    names = [str(c) for c in frame.columns]
    columns = [_json_column(frame[c]) for c in frame.columns]
    if isinstance(frame.index, pd.DatetimeIndex):
        names.insert(0, TIME)
        columns.insert(0, _iso_times(frame.index))
    return (
        [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
        if names
        else [{} for _ in range(len(frame))]
    )


def _json_column(column: pd.Series[Any]) -> list[Any]:
    """One column as JSON values, converted a column at a time (a row at a time costs ~10x)."""
    dtype = column.dtype
    if pd.api.types.is_float_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        values = column.to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        if not missing.any():
            return values.tolist()
        boxed = values.astype(object)
        boxed[missing] = None
        return boxed.tolist()
    if (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) and not isinstance(
        dtype, pd.api.extensions.ExtensionDtype
    ):
        return column.tolist()
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return [None if t is None else t for t in _iso_times(pd.DatetimeIndex(column))]
    if isinstance(dtype, pd.CategoricalDtype):
        categories = [_json_value(c) for c in dtype.categories]
        return [None if code < 0 else categories[code] for code in column.cat.codes.tolist()]
    return [_json_value(v) for v in column.tolist()]


def _iso_times(index: pd.DatetimeIndex) -> list[str | None]:
    """ISO 8601 UTC with ``Z``: whole seconds as such, finer instants to the index's own unit."""
    utc = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
    naive = utc.tz_localize(None)
    values = naive.to_numpy()
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[str(naive.unit)]
    exact = naive.asi8 % per_second == 0
    whole = np.datetime_as_string(values, unit="s").astype(object) + "Z"
    if not exact.all():
        fine = np.datetime_as_string(values, unit=cast(Any, str(naive.unit))).astype(object) + "Z"
        whole[~exact] = fine[~exact]
    whole[np.isnat(values)] = None
    out: list[str | None] = whole.tolist()
    return out


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
            frame[name] = pd.Series(_decimals(frame[name].tolist()), index=frame.index, dtype=object)
    for name in integers:
        if name in frame.columns:
            frame[name] = frame[name].astype("int64")
    for name in times:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def frame_wire(frame: pd.DataFrame) -> dict[str, Any]:
    """The frame as JSON types: ``{"index": "time" | null, "unit": index time unit, "units": {time
    column: unit}, "columns": {name: kind}, "categories": {name: [...]}, "ordered": [names],
    "rows": frame_rows(frame)}``."""
    columns: dict[str, ColumnKind] = {}
    categories: dict[str, list[Any]] = {}
    ordered: list[str] = []
    for name in frame.columns:
        column = frame[name]
        kind = _column_kind(column)
        columns[str(name)] = kind
        if kind == "category":
            categories[str(name)] = [_json_value(c) for c in column.cat.categories]
            if column.cat.ordered:
                ordered.append(str(name))
    timed = isinstance(frame.index, pd.DatetimeIndex)
    return {
        "index": TIME if timed else None,
        "unit": frame.index.unit if isinstance(frame.index, pd.DatetimeIndex) else None,
        "units": {str(n): frame[n].dt.unit for n, kind in columns.items() if kind == "time"},
        "columns": columns,
        "categories": categories,
        "ordered": ordered,
        "rows": frame_rows(frame),
    }


def frame_from_wire(wire: Mapping[str, Any]) -> pd.DataFrame:
    """The frame :func:`frame_wire` was made from (equal, dtypes and categories included).

    Raises :class:`~legion_nb.errors.UsageError` for something that is not a frame's wire form.
    """
    try:
        columns: Mapping[str, ColumnKind] = wire["columns"]
        rows: Sequence[Mapping[str, Any]] = wire["rows"]
        categories: Mapping[str, Sequence[Any]] = wire.get("categories") or {}
        ordered = set(wire.get("ordered") or ())
        timed = wire.get("index") == TIME
        units: Mapping[str, str] = wire.get("units") or {}
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"not a frame's wire form (missing {exc}): expected columns and rows") from exc
    data: dict[str, Any] = {}
    for name, kind in columns.items():
        data[name] = _wire_column(
            [row.get(name) for row in rows], kind, categories.get(name), name in ordered
        )
        if kind == "time":
            data[name] = data[name].as_unit(units.get(name, "ns"))
    index: pd.Index[Any]
    if timed:
        index = pd.DatetimeIndex(
            pd.to_datetime([row[TIME] for row in rows], utc=True, format="ISO8601"), name=TIME
        ).as_unit(wire.get("unit") or "ns")
    else:
        index = pd.RangeIndex(len(rows))
    return pd.DataFrame(data, index=index, columns=list(columns))


def _column_kind(column: pd.Series[Any]) -> ColumnKind:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "time"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.Int64Dtype):
        return "Int64"
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is pd.NA:
        return "string"
    if pd.api.types.is_integer_dtype(dtype):
        return "int64"
    if pd.api.types.is_float_dtype(dtype):
        return "float64"
    if len(column) and any(isinstance(v, Decimal) for v in column):
        return "decimal"
    return "object"


def _wire_column(values: list[Any], kind: ColumnKind, categories: Sequence[Any] | None, ordered: bool) -> Any:
    if kind == "category":
        return pd.Categorical(values, categories=pd.Index(list(categories or ())), ordered=ordered)
    if kind == "time":
        return pd.to_datetime(values, utc=True, format="ISO8601")
    if kind == "bool":
        return np.asarray(values, dtype=bool)
    if kind == "Int64":
        return pd.array(values, dtype="Int64")
    if kind == "string":
        return pd.array(values, dtype="string")
    if kind == "int64":
        return np.asarray(values, dtype=np.int64)
    if kind == "float64":
        return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "decimal":
        return pd.array(_decimals(values), dtype=object)
    if kind == "object":
        return pd.array(values, dtype=object)
    raise UsageError(
        f"unknown frame column kind {kind!r}: expected one of category, time, int64, float64, ..."
    )


def _decimals(values: Sequence[Any]) -> list[Any]:
    """Decimal text as ``Decimal``; a missing value (null, or the NaN pandas makes of it) as
    ``pd.NA``, shown as ``<NA>`` and skipped by pandas' sums, never as ``Decimal('NaN')``, which
    reads as a figure and turns a plain ``sum()`` into NaN."""
    return [
        pd.NA if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else Decimal(v)
        for v in values
    ]


def _iso(ts: Any) -> str:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    text = stamp.tz_convert("UTC").isoformat()
    return text.replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
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
