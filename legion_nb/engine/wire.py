"""Turning engine results into JSON types for the CLI's ``--json`` output and the daemon wire."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, enums, dates, paths, mappings and sequences into plain JSON types.

    Objects that know better expose ``to_json()``; that wins over the generic rules. A pandas
    DataFrame becomes its wire form (:func:`legion_nb.engine.frame_wire.frame_wire`), which
    :func:`~legion_nb.engine.frame_wire.frame_from_wire` turns back into an equal frame.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas"):
        from legion_nb.engine.frame_wire import frame_wire  # noqa: PLC0415 - pandas only for frames

        return frame_wire(value)
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_jsonable(to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")
