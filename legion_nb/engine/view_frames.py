"""Frames of what the engine shows besides telemetry: the snapshot's rows, the diff, the catalogs.

Each is built from the JSON the engine already answers with (``snapshot()``, ``diff()``,
``catalog()``), so a frame made from a daemon's reply equals the one made in process, and the
notebook never assembles one by hand. Labels are ``category`` columns; catalog prices are exact
:class:`~decimal.Decimal` money beside their ``currency``, so sums reproduce a price list to the
cent. None of these frames is a time series: they are indexed by what names a row.

A row's ``warnings`` are text an analyst reads and filters: a pandas ``string`` column holding the
row's warning messages joined with ``"; "``, and ``<NA>`` for a row without any, so
``frame[frame.warnings.notna()]`` keeps the warned rows and ``frame.warnings.str.contains("SSH")``
finds one kind. The warnings' codes stay in the JSON (``snapshot()["rows"][i]["warnings"]``).

:class:`FrameMethods` puts them on the engine and on the daemon's clients alike. This module stays
light (no pandas, no asyncio until a frame is asked for): the warm CLI path imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pandas loads only when a frame is asked for
    import pandas as pd

__all__ = ["EngineViews", "FrameMethods", "catalog_frame", "diff_frame", "snapshot_frame"]


class EngineViews(Protocol):
    """What the view frames read: any engine's snapshot, diff and catalog (objects or JSON)."""

    async def snapshot(self) -> Any: ...

    async def diff(self) -> Any: ...

    async def catalog(self, provider: str, live: bool = True) -> Any: ...


class FrameMethods:
    """Frames of the engine's views, from the JSON any engine (in process or remote) answers."""

    async def snapshot_frame(self: EngineViews) -> pd.DataFrame:
        """The snapshot's resources, one row each, indexed by (kind, name)."""
        from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415 - off the warm CLI path

        return snapshot_frame(to_jsonable(await self.snapshot()).get("rows") or [])

    async def diff_frame(self: EngineViews) -> pd.DataFrame:
        """Planned, tracked and observed side by side, one row per (kind, name, field)."""
        from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415 - off the warm CLI path

        return diff_frame(to_jsonable(await self.diff()).get("resources") or [])

    async def catalog_frame(self: EngineViews, provider: str, live: bool = True) -> pd.DataFrame:
        """The provider's prices per (server type, location), as exact Decimal money."""
        from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415 - off the warm CLI path

        return catalog_frame(to_jsonable(await self.catalog(provider, live=live)))


_SNAPSHOT_COLUMNS = (
    "provider",
    "action",
    "state",
    "health",
    "operation",
    "substage",
    "waiting",
    "error",
    "note",
    "warnings",
    "settled",
)
_SNAPSHOT_LABELS = ("provider", "action", "state", "health")


def snapshot_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per resource of a snapshot's ``rows``, indexed by (``kind``, ``name``): provider,
    the diff's action, the actor's state and health, what it does or waits for, the note, the
    ``warnings`` (``string``: the messages joined with ``"; "``, ``<NA>`` for most rows, which
    have none), ``settled``."""
    import pandas as pd  # noqa: PLC0415 - pandas loads only when a frame is asked for

    records = [
        {
            "kind": r.get("kind"),
            "name": r.get("name"),
            **{c: r.get(c) for c in _SNAPSHOT_COLUMNS},
            "warnings": _messages(r),
        }
        for r in rows
    ]
    frame = pd.DataFrame(records, columns=["kind", "name", *_SNAPSHOT_COLUMNS])
    frame["settled"] = frame["settled"].fillna(False).astype(bool)
    frame["warnings"] = frame["warnings"].astype(pd.StringDtype(na_value=pd.NA))
    for name in ("kind", *_SNAPSHOT_LABELS):
        frame[name] = frame[name].astype("category")
    return frame.set_index(["kind", "name"])


def diff_frame(resources: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The diff long and tidy: one row per (``kind``, ``name``, ``field``) with ``planned``,
    ``tracked`` and ``observed`` side by side (None where that view has no such resource), the
    resource's ``provider``, ``action`` and ``warnings`` (``string``: its messages joined with
    ``"; "``, ``<NA>`` when it has none), and whether the plan asks for a ``changed`` value."""
    import pandas as pd  # noqa: PLC0415 - pandas loads only when a frame is asked for

    records: list[dict[str, Any]] = []
    for resource in resources:
        warnings = _messages(resource)
        for f in resource.get("fields") or ():
            records.append(
                {
                    "kind": resource.get("kind"),
                    "name": resource.get("name"),
                    "field": f.get("field"),
                    "provider": resource.get("provider"),
                    "action": resource.get("action"),
                    "planned": f.get("planned"),
                    "tracked": f.get("tracked"),
                    "observed": f.get("observed"),
                    "changed": bool(f.get("changed")),
                    "warnings": warnings,
                }
            )
    columns = [
        "kind",
        "name",
        "field",
        "provider",
        "action",
        "planned",
        "tracked",
        "observed",
        "changed",
        "warnings",
    ]
    frame = pd.DataFrame(records, columns=columns)
    frame["changed"] = frame["changed"].astype(bool)
    frame["warnings"] = frame["warnings"].astype(pd.StringDtype(na_value=pd.NA))
    for name in ("kind", "provider", "action"):
        frame[name] = frame[name].astype("category")
    for name in ("planned", "tracked", "observed"):
        frame[name] = frame[name].astype(object)
    return frame.set_index(["kind", "name", "field"])


_WARNINGS_SEPARATOR = "; "


def _messages(row: Mapping[str, Any]) -> str | None:
    """A row's warnings as the text an analyst reads, None when it has none (their codes stay in
    the JSON)."""
    messages = [str(w.get("message", "")) for w in row.get("warnings") or ()]
    return _WARNINGS_SEPARATOR.join(messages) if messages else None


def catalog_frame(catalog: Mapping[str, Any]) -> pd.DataFrame:
    """A provider catalog's prices: one row per (``server_type``, ``location``) with cores, memory
    and disk, ``arch``, ``deprecated``, and ``hourly``/``monthly`` as exact Decimal money in the
    catalog's ``currency``."""
    import pandas as pd  # noqa: PLC0415 - pandas loads only when a frame is asked for

    currency = catalog.get("currency")
    records: list[dict[str, Any]] = []
    for server_type in catalog.get("server_types") or ():
        for price in server_type.get("prices") or ():
            records.append(
                {
                    "server_type": server_type.get("name"),
                    "location": price.get("location"),
                    "cores": server_type.get("cores"),
                    "memory_gb": server_type.get("memory_gb"),
                    "disk_gb": server_type.get("disk_gb"),
                    "arch": server_type.get("arch"),
                    "deprecated": bool(server_type.get("deprecated")),
                    "currency": currency,
                    "hourly": _money(price.get("hourly")),
                    "monthly": _money(price.get("monthly")),
                }
            )
    columns = [
        "server_type",
        "location",
        "cores",
        "memory_gb",
        "disk_gb",
        "arch",
        "deprecated",
        "currency",
        "hourly",
        "monthly",
    ]
    frame = pd.DataFrame(records, columns=columns)
    frame["deprecated"] = frame["deprecated"].astype(bool)
    for name in ("location", "arch", "currency"):
        frame[name] = frame[name].astype("category")
    for name in ("hourly", "monthly"):
        frame[name] = pd.Series(list(frame[name]), index=frame.index, dtype=object)
    frame.insert(0, "provider", pd.Series([catalog.get("provider")] * len(frame), dtype="category"))
    return frame.set_index(["server_type", "location"])


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
