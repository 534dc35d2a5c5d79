"""The engine's analyst surface: telemetry, logs and the engine's views as pandas DataFrames.

``telemetry`` and ``logs`` (marked :func:`~legion_nb.engine.api.engine_api`) read the stores
beside the state - whichever process filled them, the kernel's scheduler or ``legion observe`` -
and return tidy frames (:mod:`legion_nb.engine.observe.frames`); through the daemon they travel in
the frame's wire form and come back equal. Each call opens its own reader on the stores, off the
loop: SQLite in WAL mode lets it read while a collector writes, and a fresh reader sees series and
labels another process added since. ``telemetry_export`` writes the same frame to Parquet (for
DuckDB or Spark) or CSV.

The engine's view frames (``snapshot_frame``, ``diff_frame``, ``catalog_frame``) come with
:class:`~legion_nb.engine.view_frames.FrameMethods`, which the daemon's clients share.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from legion_nb.engine.api import engine_api
from legion_nb.engine.observe.window import Instant, Since, window_ms
from legion_nb.engine.paths import log_dir_for
from legion_nb.engine.view_frames import FrameMethods
from legion_nb.errors import UsageError

if TYPE_CHECKING:  # pandas loads only when a frame is asked for
    import pandas as pd

__all__ = [
    "EXPORT_FORMATS",
    "LOGS_FILENAME",
    "TELEMETRY_FILENAME",
    "TIERS",
    "ObservationMethods",
    "names",
]

TELEMETRY_FILENAME = "telemetry.sqlite"
LOGS_FILENAME = "logs.sqlite"
TIERS = ("raw", "1m", "5m", "1h")
EXPORT_FORMATS = ("parquet", "csv")

Names = str | Sequence[str] | None


def names(value: Names, what: str) -> list[str] | None:
    """One name or a list of names as a list (None: every one); an empty list is a UsageError."""
    if value is None:
        return None
    picked = [value] if isinstance(value, str) else list(value)
    if not picked or not all(isinstance(n, str) and n for n in picked):
        raise UsageError(f"{what} must be a name or a non-empty list of names")
    return picked


class ObservationMethods(FrameMethods):
    """Mixed into the engine, which provides ``state_path`` and ``assert_unlocked``."""

    state_path: Path

    def assert_unlocked(self) -> object:
        raise NotImplementedError

    @property
    def observation_dir(self) -> Path:
        """Where the telemetry and log stores live: the state's log directory."""
        return log_dir_for(self.state_path)

    @engine_api
    async def telemetry(
        self,
        *,
        nodes: Names = None,
        metrics: Names = None,
        since: Since = None,
        start: Instant = None,
        end: Instant = None,
        tier: str = "raw",
    ) -> pd.DataFrame:
        """Samples (``tier="raw"``) or ``1m``/``5m``/``1h`` rollups (mean, min, max, sum, count) of
        the named nodes and metrics (None: all) in the window (``since="2h"``, or ``start``/``end``
        as ISO 8601), one row per sample or bucket, indexed by UTC time."""
        if tier not in TIERS:
            raise UsageError(f"unknown telemetry tier {tier!r}: use raw, 1m, 5m or 1h")
        self.assert_unlocked()
        node_names, metric_names = names(nodes, "nodes"), names(metrics, "metrics")
        start_ms, end_ms = window_ms(since, start, end)
        path = self.observation_dir / TELEMETRY_FILENAME

        def read() -> pd.DataFrame:
            from legion_nb.engine.observe.frames import telemetry_frame  # noqa: PLC0415
            from legion_nb.engine.observe.telemetry_store import TelemetryStore  # noqa: PLC0415

            store = TelemetryStore(path)
            try:
                columns = store.query(
                    nodes=node_names,
                    metrics=metric_names,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    tier=cast(Literal["raw", "1m", "5m", "1h"], tier),
                )
            finally:
                store.close()
            return telemetry_frame(columns)

        return await asyncio.to_thread(read)

    @engine_api
    async def logs(
        self,
        *,
        text: str | None = None,
        nodes: Names = None,
        sources: Names = None,
        level: str | int | None = None,
        since: Since = None,
        start: Instant = None,
        end: Instant = None,
        limit: int = 200,
        after_id: int | None = None,
    ) -> pd.DataFrame:
        """The newest ``limit`` log lines (oldest first) containing ``text`` (any case), from the
        named nodes and sources, at ``level`` or worse, in the window; ``after_id`` (a frame's last
        ``id``) gives the lines after it instead, to follow a tail."""
        from legion_nb.engine.observe.log_store import level_number  # noqa: PLC0415

        if not 1 <= limit <= 1_000_000:
            raise UsageError(f"log limit {limit} is not valid; use 1 to 1000000")
        self.assert_unlocked()
        node_names, source_names = names(nodes, "nodes"), names(sources, "sources")
        max_level = None if level is None else level_number(level)
        start_ms, end_ms = window_ms(since, start, end)
        path = self.observation_dir / LOGS_FILENAME

        def read() -> pd.DataFrame:
            from legion_nb.engine.observe.frames import log_frame  # noqa: PLC0415
            from legion_nb.engine.observe.log_store import LogStore  # noqa: PLC0415

            store = LogStore(path)
            try:
                rows = store.search(
                    text=text or None,
                    nodes=node_names,
                    sources=source_names,
                    max_level=max_level,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    after_id=after_id,
                    limit=limit,
                )
            finally:
                store.close()
            return log_frame(rows)

        return await asyncio.to_thread(read)

    @engine_api
    async def telemetry_export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "parquet",
        nodes: Names = None,
        metrics: Names = None,
        since: Since = None,
        start: Instant = None,
        end: Instant = None,
        tier: str = "raw",
    ) -> dict[str, Any]:
        """Write the :meth:`telemetry` frame to ``path`` as Parquet (labels stay categorical, the
        index stays UTC) or CSV; returns the path, format and row count. The directory must exist."""
        if format not in EXPORT_FORMATS:
            raise UsageError(f"unknown export format {format!r}: use parquet or csv")
        target = Path(path)
        if not target.is_absolute():
            raise UsageError(f"export path {str(target)!r} must be absolute (the engine may run in a daemon)")
        frame = await self.telemetry(
            nodes=nodes, metrics=metrics, since=since, start=start, end=end, tier=tier
        )

        def write() -> None:
            if not target.parent.is_dir():
                raise UsageError(f"cannot export to {target}: directory {target.parent} does not exist")
            if format == "csv":
                frame.to_csv(target, index=True)
            else:
                frame.to_parquet(target, index=True)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise UsageError(f"cannot export to {target}: {exc.strerror or exc}") from exc
        return {"path": str(target), "format": format, "rows": len(frame)}
