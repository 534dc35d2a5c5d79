"""Notebook panels: live views of an engine, fed only by its snapshot and activity streams.

Commands flow into the engine through its API (``await engine.plan_upsert_server(...)``); state
comes back to the page only through the engine's "snapshot" and "activity" streams, which each panel
follows with a throttled :class:`~legion_nb.widgets.feed.Feed`. A panel works the same over an
in-process engine and over the daemon's ``RemoteEngine``.

    legion_nb.show(engine)          # all three panels, stacked
    ResourcesPanel(engine)          # or one at a time
    BillingPanel(engine)            # billing, refreshed on demand (await panel.refresh())
    TelemetryPanel(engine)          # node metrics: await panel.refresh(), or panel.follow()
    LogPanel(engine)                # log search and a live tail: panel.follow()
    RunbookPanel(engine)            # runbooks: parameters, a run with cell progress, the history
    StreamsPanel(engine)            # Sender stream sessions: state, reason, bytes, latency
"""

from __future__ import annotations

from typing import Any

import ipywidgets

from legion_nb.widgets.activity import ActivityPanel
from legion_nb.widgets.billing import BillingPanel
from legion_nb.widgets.feed import EventSource, Feed
from legion_nb.widgets.logs import LogPanel
from legion_nb.widgets.panel import LivePanel
from legion_nb.widgets.plan_diff import PlanDiffPanel
from legion_nb.widgets.resources import ResourcesPanel
from legion_nb.widgets.runbooks import RunbookPanel
from legion_nb.widgets.streams import StreamsPanel
from legion_nb.widgets.telemetry import TelemetryPanel

__all__ = [
    "ActivityPanel",
    "BillingPanel",
    "Dashboard",
    "EventSource",
    "Feed",
    "LivePanel",
    "LogPanel",
    "PlanDiffPanel",
    "ResourcesPanel",
    "RunbookPanel",
    "StreamsPanel",
    "TelemetryPanel",
    "show",
]


class Dashboard(ipywidgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information
    """The three panels stacked: resources, plan diff, activity. ``close()`` stops all three."""

    def __init__(self, engine: EventSource, **options: Any) -> None:
        self.resources = ResourcesPanel(engine, **options)
        self.plan_diff = PlanDiffPanel(engine, **options)
        self.activity = ActivityPanel(engine, **options)
        super().__init__(children=[self.resources, self.plan_diff, self.activity])

    @property
    def panels(self) -> tuple[LivePanel, ...]:
        return (self.resources, self.plan_diff, self.activity)

    def close(self) -> None:
        for panel in self.panels:
            panel.close()
        super().close()

    async def wait_closed(self) -> None:
        """Wait until every panel has drawn the engine's last publication (after ``engine.aclose()``)."""
        for panel in self.panels:
            await panel.wait_closed()


def show(engine: EventSource, **options: Any) -> Dashboard:
    """Every panel for ``engine`` (in-process or a daemon client); the last line of a cell displays it.

    ``options`` go to each panel (e.g. ``min_interval=0.25`` for at most four redraws a second).
    Call ``close()`` on the result to stop following the engine.
    """
    return Dashboard(engine, **options)
