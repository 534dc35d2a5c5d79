"""Asynchronous actions: the way Hetzner reports work that takes time.

Every mutation that takes time returns an action ``{id, command, status, progress, started, finished,
resources, error}``. It starts ``running`` and turns ``success`` after ``world.timing.action_seconds``
(a background task owned by the world). ``on_success`` is where the resource's state change lands
(e.g. the server turns ``running``), so clients polling the action and the resource see a consistent
story. An action whose resource vanished meanwhile still finishes; its callback simply finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from legion_nb.emulators.hetzner.wire import Json
from legion_nb.emulators.httpkit import isoformat
from legion_nb.emulators.world import SandboxWorld

__all__ = ["Action", "ActionStore"]


@dataclass
class Action:
    id: int
    command: str
    resources: list[Json]
    started: str
    status: str = "running"
    progress: int = 0
    finished: str | None = None
    error: Json | None = None
    on_success: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def wire(self) -> Json:
        return {
            "id": self.id,
            "command": self.command,
            "status": self.status,
            "progress": self.progress,
            "started": self.started,
            "finished": self.finished,
            "resources": self.resources,
            "error": self.error,
        }

    def touches(self, kind: str, resource_id: int) -> bool:
        return any(r["type"] == kind and r["id"] == resource_id for r in self.resources)


class ActionStore:
    """All actions of one project, by id."""

    def __init__(self, world: SandboxWorld) -> None:
        self._world = world
        self._actions: dict[int, Action] = {}
        self._next_id = 13_000_001

    def get(self, action_id: int) -> Action | None:
        return self._actions.get(action_id)

    def all(self) -> list[Action]:
        return list(self._actions.values())

    def running_for(self, kind: str, resource_id: int) -> list[Action]:
        return [a for a in self._actions.values() if a.status == "running" and a.touches(kind, resource_id)]

    def start(
        self,
        command: str,
        resources: Iterable[tuple[str, int]],
        *,
        seconds: float | None = None,
        on_success: Callable[[], None] | None = None,
    ) -> Action:
        """Create a running action that succeeds after ``seconds`` (default: the world's action time)."""
        action = Action(
            id=self._next_id,
            command=command,
            resources=[{"id": rid, "type": kind} for kind, rid in resources],
            started=isoformat(self._world.now()),
        )
        self._next_id += 1
        if on_success is not None:
            action.on_success.append(on_success)
        self._actions[action.id] = action
        duration = self._world.timing.action_seconds if seconds is None else seconds
        self._world.spawn(self._complete_later(action, duration))
        return action

    def finished(self, command: str, resources: Iterable[tuple[str, int]]) -> Action:
        """An action that is already done (for changes that are instant on the real platform too)."""
        action = self.start(command, resources, seconds=0.0)
        self._succeed(action)
        return action

    async def _complete_later(self, action: Action, seconds: float) -> None:
        if seconds > 0:
            await self._world.sleep(seconds / 2)
            action.progress = 50
            await self._world.sleep(seconds / 2)
        self._succeed(action)

    def _succeed(self, action: Action) -> None:
        if action.status != "running":
            return
        callbacks, action.on_success = action.on_success, []
        for callback in callbacks:
            callback()
        action.status = "success"
        action.progress = 100
        action.finished = isoformat(self._world.now())
