"""Helpers for the panel tests: a comm that records what a widget sends, and a bounded wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """A comm that keeps every message a widget publishes, instead of sending it to a frontend."""

    sent: list[dict[str, Any]]

    def __init__(self, **kwargs: Any) -> None:
        self.sent = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        self.sent.append({"msg_type": msg_type, "data": data})

    def updates(self) -> list[dict[str, Any]]:
        """The state updates sent after the widget was opened (each one comm message)."""
        messages = [m["data"] for m in self.sent if m["msg_type"] == "comm_msg"]
        return [data for data in messages if data.get("method") == "update"]


async def until(predicate: Callable[[], bool], *, rounds: int = 2000) -> None:
    """Let the loop run until ``predicate`` holds (a bounded number of short waits, never a timing)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")
