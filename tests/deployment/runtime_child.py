"""The engine process that test_runtime_crash.py SIGKILLs inside each deployment phase.

Usage: ``python runtime_child.py STATE_PATH SSH_PORT NODE PHASE POINT`` with one JSON line on stdin:
``{"url": ..., "token": ...}`` (the sandbox's Hetzner endpoint). ``PHASE POINT`` names where to stop
(``-`` ``-`` to run to the end).

It unlocks the state, runs ``initialize()`` and prints what it found, then resumes the node's
execution (or starts ``add`` when there is none). When the runtime reaches ``PHASE``/``POINT`` it
prints ``inside`` and waits forever for the kill. Each event is one JSON line, written with one
``os.write`` so the parent never reads half a line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from runtimekit import engine

from legion_nb.engine.deployment.phases import NodeOperation, Phase
from legion_nb.engine.state.model import NodeExecution
from legion_nb.engine.wire import to_jsonable
from legion_nb.providers.contract import ProviderCredentials


def emit(event: str, **data: Any) -> None:
    os.write(1, (json.dumps({"event": event, **to_jsonable(data)}) + "\n").encode())


def described(execution: NodeExecution | None) -> dict[str, Any] | None:
    return None if execution is None else to_jsonable(execution)


async def main() -> None:
    path, port, node, phase, point = Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
    endpoint = json.loads(sys.stdin.readline())
    credentials = ProviderCredentials("hetzner", endpoint["url"], {"token": endpoint["token"]}, {})

    async def stop_here(at_node: str, at_phase: Phase, at_point: str) -> None:
        if (at_node, at_phase.value, at_point) == (node, phase, point):
            emit("inside", phase=at_phase.value, point=at_point)
            await asyncio.Event().wait()

    async with engine(path, credentials, port, delay=stop_here) as parts:
        interrupted = await parts.runtime.initialize()
        execution = parts.runtime.execution(node)
        emit("initialized", interrupted=list(interrupted), execution=described(execution))
        if execution is None:
            result = await parts.runtime.run(node, NodeOperation.ADD)
        else:
            result = await parts.runtime.resume(node)
        state = parts.persistence.state
        emit(
            "done",
            execution=described(result),
            pending=len(state.tracked.pending),
            nbde=state.deployment.nodes[node].nbde,
        )


if __name__ == "__main__":
    asyncio.run(main())
