"""Telemetry and journal collection over every deployed node, into the stores beside the state.

The stores (:class:`~.telemetry_store.TelemetryStore`, :class:`~.log_store.LogStore`) live in the
state's log directory and are open exactly while the session is: entering :class:`NodeCollection`
opens them, closing it closes them. Each pass reads every deployed node by cursor
(:func:`~.collectors.collect_telemetry`, :func:`~.collectors.collect_journal`), so a pass repeats
nothing and a killed one loses nothing; the telemetry pass then rolls up what arrived and applies
the retention, the log pass compacts the search index every ``optimize_every`` passes. A node that
does not answer is skipped for this pass (its cursor stays); the pass fails only when every node
failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from legion_nb.engine.observe.collectors import CollectReport, collect_journal, collect_telemetry
from legion_nb.engine.observe.log_store import LogStore
from legion_nb.engine.observe.methods import LOGS_FILENAME, TELEMETRY_FILENAME
from legion_nb.engine.observe.node_observation import AdminClientPool, ObservedNode
from legion_nb.engine.observe.telemetry_store import TelemetryStore
from legion_nb.engine.redaction import redact
from legion_nb.errors import LegionError, LockedError, NodeError
from legion_nb.providers.node_admin import NodeAdminClient

__all__ = ["NodeCollection"]

log = logging.getLogger(__name__)


class NodeCollection:
    """The telemetry and log collection concerns and the stores they fill (module notes)."""

    def __init__(
        self,
        log_dir: Path,
        clients: AdminClientPool,
        targets: Callable[[], Iterable[ObservedNode]],
        *,
        concurrency: int = 4,
        optimize_every: int = 20,
    ) -> None:
        self._log_dir = log_dir
        self._clients = clients
        self._targets = targets
        self._limit = asyncio.Semaphore(concurrency)
        self._optimize_every = optimize_every
        self._log_passes = 0
        self._telemetry: TelemetryStore | None = None
        self._logs: LogStore | None = None

    async def __aenter__(self) -> NodeCollection:
        def open_stores() -> tuple[TelemetryStore, LogStore]:
            self._log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            return TelemetryStore(self._log_dir / TELEMETRY_FILENAME), LogStore(
                self._log_dir / LOGS_FILENAME, redact=redact
            )

        self._telemetry, self._logs = await asyncio.to_thread(open_stores)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        telemetry, logs, self._telemetry, self._logs = self._telemetry, self._logs, None, None
        for store in (telemetry, logs):
            if store is not None:
                await asyncio.to_thread(store.close)

    @property
    def telemetry(self) -> TelemetryStore:
        if self._telemetry is None:
            raise LockedError("the telemetry store is closed: unlock the state first")
        return self._telemetry

    @property
    def logs(self) -> LogStore:
        if self._logs is None:
            raise LockedError("the log store is closed: unlock the state first")
        return self._logs

    # -- the concerns ------------------------------------------------------------------------------

    async def collect_telemetry(self) -> int:
        """Samples stored from every deployed node, then rollups and retention."""
        store = self.telemetry
        stored = await self._each("telemetry", lambda n, c: collect_telemetry(store, n, c))
        await asyncio.to_thread(store.rollup)
        await asyncio.to_thread(store.apply_retention)
        return stored

    async def collect_logs(self) -> int:
        """Journal lines stored from every deployed node; the index is compacted now and then."""
        store = self.logs
        stored = await self._each("journal", lambda n, c: collect_journal(store, n, c))
        self._log_passes += 1
        if self._log_passes % self._optimize_every == 0:
            await asyncio.to_thread(store.optimize)
        return stored

    async def _each(
        self, what: str, collect: Callable[[str, NodeAdminClient], Awaitable[CollectReport]]
    ) -> int:
        targets = [t for t in self._targets() if t.role == "cluster"]

        async def one(target: ObservedNode) -> int | str:
            async with self._limit:
                try:
                    client = await self._clients.client(target)
                    return (await collect(target.name, client)).stored
                except LegionError as exc:  # this node waits for the next pass; its cursor stays
                    log.info("%s collection from %s skipped: %s", what, target.name, exc.message)
                    return exc.message

        results = await asyncio.gather(*(one(t) for t in targets))
        failures = [r for r in results if isinstance(r, str)]
        if targets and len(failures) == len(targets):
            raise NodeError(f"{what} collection reached none of {len(targets)} node(s): {failures[0]}")
        return sum(r for r in results if isinstance(r, int))
