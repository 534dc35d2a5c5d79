"""What every panel shares: an anywidget fed by the engine's streams through a throttled :class:`Feed`.

A panel is synced traitlets plus a sibling JavaScript module that mirrors them one to one. All of a
panel's state lives in those traits (anywidget drops custom messages sent before a view exists, a
trait is always there for the next view), and every update is set inside ``hold_sync()`` so that one
redraw is one comm message. The panel never decides anything about resources: it reads what the
engine publishes, reshapes it into the rows of :mod:`legion_nb.widgets.rows`, and shows it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

from legion_nb.errors import UsageError
from legion_nb.widgets.feed import DEFAULT_MIN_INTERVAL, Batch, EventSource, Feed, Sleep

__all__ = ["STATIC", "LivePanel", "PolledPanel", "esm_of"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

_UNSENT: weakref.WeakSet[LivePanel] = weakref.WeakSet()
"""Panels whose traits changed in a feed task since their state last went out from a cell."""
_HOOKED: set[int] = set()  # ids of the IPython shells that resend _UNSENT after each cell


def _resend_after_cell(*_result: Any) -> None:
    """Send each changed panel's whole state again, from the cell that just ran.

    A feed task inherits the kernel's message context of the cell that created the panel, so every
    later update goes out as a reply to that long-finished cell. A live page applies it anyway, but
    a headless run (nbclient, ``jupyter nbconvert --execute``) keeps only the messages of the cell it
    is running, and would save the panels as they were when created. Sent again here, the state is
    part of the current cell's reply, and the saved notebook holds what the panels last showed.
    """
    for panel in list(_UNSENT):
        _UNSENT.discard(panel)
        if panel.comm is not None:
            panel.send_state()


def _hook_cells() -> None:
    """Register :func:`_resend_after_cell` once per IPython shell (none outside IPython)."""
    try:
        from IPython import get_ipython  # noqa: PLC0415 - only a kernel has a shell to hook
    except ImportError:  # no IPython: no cells, nothing to resend
        return
    shell = get_ipython()
    if shell is None or id(shell) in _HOOKED:
        return
    shell.events.register("post_run_cell", _resend_after_cell)
    _HOOKED.add(id(shell))


def esm_of(name: str) -> str:
    """The ES module of panel ``name``: the shared helpers followed by the panel's own renderer.

    anywidget loads a panel's module from a string, so a relative ``import`` could not reach a
    sibling file; prepending the helpers keeps them in one file without copying them into each panel.
    """
    return (
        (STATIC / "common.js").read_text(encoding="utf-8")
        + "\n"
        + (STATIC / f"{name}.js").read_text(encoding="utf-8")
    )


class LivePanel(anywidget.AnyWidget):
    """Base of the panels: lock state, revision and the feed's health, all as synced traits."""

    _css = (STATIC / "panels.css").read_text(encoding="utf-8")

    title = traitlets.Unicode("").tag(sync=True)
    locked = traitlets.Bool(False).tag(sync=True)
    revision = traitlets.Int(None, allow_none=True).tag(sync=True)
    # "waiting" until the first publication, then "live"; "closed" when the engine ended the stream,
    # "stopped: <reason>" when reading it failed.
    feed_status = traitlets.Unicode("waiting").tag(sync=True)

    topics: ClassVar[tuple[str, ...]] = ("snapshot",)

    def __init__(
        self,
        engine: EventSource | None = None,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        sleep: Sleep = asyncio.sleep,
        **traits: Any,
    ) -> None:
        super().__init__(**traits)
        self._feed: Feed | None = None
        _hook_cells()
        if engine is not None:
            self.attach(engine, min_interval=min_interval, sleep=sleep)

    # -- the feed --------------------------------------------------------------------------

    def attach(
        self, engine: EventSource, *, min_interval: float = DEFAULT_MIN_INTERVAL, sleep: Sleep = asyncio.sleep
    ) -> Feed:
        """Follow ``engine``'s streams from now on (an in-process engine or a daemon client)."""
        if self._feed is not None and self._feed.running:
            raise UsageError("this panel already follows an engine: close it and create a new one")
        self._feed = Feed(
            engine,
            self.topics,
            self._apply,
            min_interval=min_interval,
            sleep=sleep,
            on_stop=self._stream_ended,
            name=f"{type(self).__name__} feed",
        )
        self._feed.start()
        return self._feed

    @property
    def feed(self) -> Feed | None:
        return self._feed

    def close(self) -> None:
        """Stop following the engine (the feed task is cancelled) and close the widget's views."""
        feed = getattr(self, "_feed", None)  # close() also runs from __del__ of a half-built widget
        if feed is not None:
            feed.close()
        _UNSENT.discard(self)
        super().close()

    async def wait_closed(self) -> None:
        """Wait until the feed has drawn its last update and reported the stream's end."""
        if self._feed is not None:
            await self._feed.wait_closed()

    async def _apply(self, batch: Batch) -> None:
        changes = await self.prepare(batch)
        if not changes:
            return
        with self.hold_sync():
            for name, value in changes.items():
                setattr(self, name, value)
            if self.feed_status == "waiting":
                self.feed_status = "live"
        _UNSENT.add(self)

    async def prepare(self, batch: Batch) -> Mapping[str, Any]:
        """The trait values that show ``batch`` (only the ones that change need to be there)."""
        raise NotImplementedError(f"{type(self).__name__} must say how a batch becomes traits")

    def _stream_ended(self, failure: BaseException | None) -> None:
        if failure is None:
            self.feed_status = "closed"
        else:
            reason = " ".join(str(failure).split()) or type(failure).__name__
            self.feed_status = f"stopped: {reason}"
        _UNSENT.add(self)


class PolledPanel(anywidget.AnyWidget):
    """Base of the panels that ask the engine instead of following a stream (telemetry, logs).

    The subclass says how to read (:meth:`refresh`), what one step of following is (:meth:`step`,
    a refresh unless it knows better) and what a saved notebook shows without a kernel
    (:meth:`static_html`); this class owns the follow task, re-reads when a pick in the page sets
    one of :attr:`picks`, and carries the static view beside the widget view.
    """

    picks: ClassVar[tuple[str, ...]] = ()
    """Traits the page sets; a change re-reads (the newest pick wins)."""

    what: ClassVar[str] = "panel"

    def __init__(self, engine: Any, **traits: Any) -> None:
        super().__init__(**traits)
        self._engine = engine
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.Task[None] | None = None
        if self.picks:
            self.observe(self._picked, names=list(self.picks))

    async def refresh(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must say how it reads the engine")

    async def step(self) -> None:
        """One round of following (default: read again)."""
        await self.refresh()

    def static_html(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must say what a saved notebook shows")

    def follow(self, interval: float) -> None:
        """Refresh now, then :meth:`step` every ``interval`` seconds until :meth:`close`."""
        if interval <= 0:
            raise UsageError(f"{self.what} refresh interval {interval} is not valid; use a positive number")
        if self._task is not None and not self._task.done():
            raise UsageError(f"this {self.what} already follows its engine: close it and create a new one")
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._follow(interval), name=f"legion {self.what}")

    async def _follow(self, interval: float) -> None:
        await self.refresh()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.step()
            except Exception:  # logged, and the next round tries again: a panel must not die silently
                log.exception("%s refresh failed", self.what)

    def _picked(self, _change: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # set outside a loop (building the panel): the next refresh shows it
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.create_task(self.refresh(), name=f"legion {self.what} pick")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, plus :meth:`static_html` for a notebook reopened without a kernel."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/html"] = self.static_html()
        return bundle

    def close(self) -> None:
        for task in (getattr(self, "_task", None), getattr(self, "_pending", None)):
            if task is not None:
                task.cancel()
        self._task = self._pending = None
        super().close()
