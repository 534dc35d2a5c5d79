"""The background tasks of one long-lived service, owned and ended with it.

Why not :class:`asyncio.TaskGroup`: a session's services outlive the call that opened them (a
notebook cell, a daemon request), and a task group cancels the task that entered it when a child
fails; here that task is long gone or, worse, someone else's. :class:`ServiceTasks` keeps the part
that matters - every task has an owner that cancels and awaits it on close, and a task that fails
is logged with its name instead of vanishing - without binding the tasks to the caller's task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["ServiceTasks"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ServiceTasks:
    """Tasks started by one service; :meth:`aclose` cancels the ones still running and waits for them."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``coro`` in the background until it ends or the owner closes.

        Raises :class:`RuntimeError` once closed: a closed service starts nothing (the coroutine is
        closed unstarted, so Python does not warn that it was never awaited).
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._owner} is closed: it starts no more background work")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("%s: background task %s failed", self._owner, task.get_name(), exc_info=error)

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Cancel every running task and wait until each has ended (idempotent)."""
        self._closed = True
        while self._tasks:
            tasks = tuple(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            self._tasks.difference_update(tasks)
