"""A notebook terminal: a shell on a managed node in xterm.js, through the engine's terminal API.

``TerminalPanel(engine, "node-1")`` opens a PTY shell on the node with ``engine.terminal_open`` (the
engine finds the address and keys in the state; the panel never sees a key) and shows it. The engine
may be in-process or the daemon's ``RemoteEngine``: the panel uses only the engine API's terminal calls.

How data moves, and why:

* keystrokes and size changes arrive from the page as anywidget custom messages; one writer task
  sends them to the engine in the order they were typed (``terminal_write``/``terminal_resize``);
* a reader task polls ``terminal_read`` and appends the output to the synced ``scrollback`` trait
  (bounded: the last :data:`SCROLLBACK_CHARS` characters) with ``produced``, the running total.
  Custom messages sent before a view exists are dropped, a trait is always there: a redisplayed
  panel or a reloaded page draws the scrollback and carries on from it. Updates are at most one per
  ``min_interval`` seconds, so a flood of output costs a bounded number of comm messages.

xterm.js is bundled (``static/vendor/xterm``); nothing is loaded from a CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anywidget
import traitlets

from legion_nb.errors import UsageError
from legion_nb.widgets.panel import STATIC

__all__ = ["SCROLLBACK_CHARS", "TerminalEngine", "TerminalPanel", "terminal_esm"]

log = logging.getLogger(__name__)

SCROLLBACK_CHARS = 65_536  # output kept for a new view: many screens, small enough to sync often
POLL_WAIT = 10.0  # seconds one read waits for output (the engine allows up to 30)
DEFAULT_MIN_INTERVAL = 0.05  # seconds between output updates: at most ~20 a second

_VENDOR = STATIC / "vendor" / "xterm"


class TerminalEngine(Protocol):
    """The engine calls a terminal needs: a part of :class:`~legion_nb.engine.surface.EngineAPI`, which
    ``Engine`` and ``RemoteEngine`` both implement with the same results."""

    def terminal_open(self, name: str, cols: int = ..., rows: int = ...) -> Awaitable[Any]: ...

    def terminal_write(self, id: str, data: str) -> Awaitable[Any]: ...

    def terminal_read(self, id: str, wait: float = ...) -> Awaitable[Any]: ...

    def terminal_resize(self, id: str, cols: int, rows: int) -> Awaitable[Any]: ...

    def terminal_close(self, id: str) -> Awaitable[Any]: ...


def terminal_esm() -> str:
    """The panel's module: the vendored xterm.js and fit addon as source strings, then the renderer."""
    xterm = (_VENDOR / "xterm.mjs").read_text(encoding="utf-8")
    fit = (_VENDOR / "addon-fit.mjs").read_text(encoding="utf-8")
    renderer = (STATIC / "terminal.js").read_text(encoding="utf-8")
    # JSON text is a valid JavaScript string literal: the sources go in verbatim, escaped.
    return f"const XTERM_SOURCE = {json.dumps(xterm)};\nconst FIT_SOURCE = {json.dumps(fit)};\n{renderer}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _trimmed(text: str) -> str:
    """The last :data:`SCROLLBACK_CHARS` characters, starting at a line (not inside an escape code)."""
    if len(text) <= SCROLLBACK_CHARS:
        return text
    cut = len(text) - SCROLLBACK_CHARS
    line = text.find("\n", cut)
    return text[line + 1 :] if 0 <= line < len(text) - 1 else text[cut:]


class TerminalPanel(anywidget.AnyWidget):
    """A shell on node ``name``, shown with xterm.js; ``close()`` ends the shell."""

    _esm = terminal_esm()
    _css = (_VENDOR / "xterm.css").read_text(encoding="utf-8") + (STATIC / "terminal.css").read_text(
        encoding="utf-8"
    )

    node = traitlets.Unicode("").tag(sync=True)
    terminal_id = traitlets.Unicode("").tag(sync=True)
    # "opening", "open", "closed (exit N)" or "failed: <one line>".
    status = traitlets.Unicode("opening").tag(sync=True)
    cols = traitlets.Int(80).tag(sync=True)
    rows = traitlets.Int(24).tag(sync=True)
    scrollback = traitlets.Unicode("").tag(sync=True)
    produced = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        engine: TerminalEngine,
        name: str,
        *,
        cols: int = 80,
        rows: int = 24,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                "a terminal needs a running event loop: create it in a notebook cell or in async code"
            ) from None
        super().__init__(node=name, cols=cols, rows=rows)
        self._engine = engine
        self._min_interval = min_interval
        self._sleep = sleep
        self._inputs: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._opened = asyncio.Event()
        self._settled = asyncio.Event()  # open, or failed to open
        self._closing: asyncio.Task[None] | None = None
        self.on_msg(self._on_message)
        self._terminal_tasks = [
            loop.create_task(self._read_output(), name=f"terminal {name} (output)"),
            loop.create_task(self._send_input(), name=f"terminal {name} (input)"),
        ]

    # -- what a notebook (or a test) calls -------------------------------------------------

    def send(self, text: str) -> None:
        """Type ``text`` into the shell, as if it came from the keyboard (``"ls\\r"`` runs ``ls``)."""
        self._inputs.put_nowait(("input", text))

    def resize(self, cols: int, rows: int) -> None:
        if cols < 1 or rows < 1:
            raise UsageError(f"terminal size {cols}x{rows} is not valid; both must be at least 1")
        self._inputs.put_nowait(("resize", (cols, rows)))

    @property
    def output(self) -> str:
        """The output kept so far (the scrollback the page shows)."""
        return str(self.scrollback)

    async def wait_open(self) -> str:
        """Wait until the shell is open; its terminal id (:class:`UsageError` if opening failed)."""
        await self._settled.wait()
        if not self._opened.is_set():
            raise UsageError(f"terminal to {self.node} {self.status}")
        return str(self.terminal_id)

    def close(self) -> None:
        """Stop the panel's tasks, end the shell on the node and close the widget's views."""
        # close() also runs from __del__ of a half-built widget: every attribute may be missing.
        for task in getattr(self, "_terminal_tasks", ()):
            with contextlib.suppress(RuntimeError):  # the loop may already be closed (kernel exit)
                task.cancel()
        terminal = getattr(self, "terminal_id", "")
        if terminal and getattr(self, "_closing", None) is None:
            with contextlib.suppress(RuntimeError):
                self._closing = asyncio.get_running_loop().create_task(self._close_terminal(terminal))
        super().close()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the shell has ended on the node."""
        self.close()
        await asyncio.gather(*self._terminal_tasks, return_exceptions=True)
        if self._closing is not None:
            await self._closing

    # -- the two tasks ---------------------------------------------------------------------

    async def _read_output(self) -> None:
        try:
            opened = await self._engine.terminal_open(name=self.node, cols=self.cols, rows=self.rows)
        except Exception as exc:  # shown on the panel: the notebook reads why it did not open
            log.warning("terminal to %s did not open: %s", self.node, _one_line(exc))
            self.status = f"failed: {_one_line(exc)}"
            self._settled.set()
            return
        self.terminal_id = opened["id"]
        self.status = "open"
        self._opened.set()
        self._settled.set()
        while True:
            try:
                out = await self._engine.terminal_read(id=self.terminal_id, wait=POLL_WAIT)
            except Exception as exc:
                log.warning("terminal %s to %s: reading failed: %s", self.terminal_id, self.node, exc)
                self.status = f"failed: {_one_line(exc)}"
                return
            if out["data"]:
                with self.hold_sync():
                    self.scrollback = _trimmed(self.scrollback + out["data"])
                    self.produced += len(out["data"])
            if out["closed"]:
                self.status = f"closed (exit {out['exit_status']})"
                return
            if out["data"]:
                await self._sleep(self._min_interval)  # let more output gather into one update

    async def _send_input(self) -> None:
        await self._opened.wait()
        while True:
            kind, payload = await self._inputs.get()
            try:
                if kind == "input":
                    await self._engine.terminal_write(id=self.terminal_id, data=payload)
                else:
                    cols, rows = payload
                    await self._engine.terminal_resize(id=self.terminal_id, cols=cols, rows=rows)
                    self.cols, self.rows = cols, rows
            except Exception as exc:  # a shell that ended refuses input: note it, keep the panel
                log.info("terminal %s to %s: %s refused: %s", self.terminal_id, self.node, kind, exc)

    async def _close_terminal(self, terminal: str) -> None:
        try:
            await self._engine.terminal_close(id=terminal)
        except Exception as exc:  # closed already (the engine logged out): nothing left to end
            log.info("terminal %s to %s: closing: %s", terminal, self.node, _one_line(exc))

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A message from the page: ``{"type": "input", "data"}`` or ``{"type": "resize", ...}``."""
        if not isinstance(content, dict):
            log.warning("terminal %s: ignored a message that is not an object", self.node)
            return
        kind = content.get("type")
        if kind == "input" and isinstance(content.get("data"), str):
            self.send(content["data"])
        elif kind == "resize" and all(
            isinstance(content.get(key), int) and content[key] > 0 for key in ("cols", "rows")
        ):
            self.resize(content["cols"], content["rows"])
        else:
            log.warning("terminal %s: ignored a message it does not understand (%s)", self.node, kind)
