"""Stopping a long-running command cleanly on SIGINT or SIGTERM.

Why an event and not ``KeyboardInterrupt``: a command that serves or watches until told to stop
(``legion sandbox serve``, ``legion observe``) must close its engine and servers in order and exit
0 with a short goodbye; an interrupt raised at an arbitrary await point would skip that and exit
130. The handlers live on the running loop, which removes them when it closes.

No asyncio import at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["stop_on_signals"]


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (signal handlers on Unix, ``signal.signal`` elsewhere)."""
    import asyncio  # noqa: PLC0415 - kept off the start-up path of every other command

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows event loops have no add_signal_handler
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(stop.set))
    return stop
