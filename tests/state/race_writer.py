"""A writer that races another process on the same state (used by test_store.py).

Usage: ``python race_writer.py STATE_PATH NAME SAVES`` with the password as the first line of stdin.
Waits for a ``go`` line, then makes SAVES successful saves of ``NAME i``. A save refused because the
other writer got there first (:class:`StateConflictError`) or held the lock (:class:`StateBusyError`)
reloads the state and tries again, as an operator would. Prints ``ack NAME i GENERATION`` per save
and a final ``done NAME CONFLICTS BUSY``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from statekit import OnceDerived

from legion_nb.engine.state.store import SecureStateStore
from legion_nb.errors import StateBusyError, StateConflictError


async def main() -> None:
    path, name, saves = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    derive = OnceDerived(sys.stdin.readline().rstrip("\n"))
    store, _ = SecureStateStore._unlock_with(path, derive)
    print("ready", flush=True)
    sys.stdin.readline()
    conflicts = busy = 0
    done = 0
    while done < saves:
        try:
            await store.save(f"{name} {done}".encode())
        except (StateConflictError, StateBusyError) as exc:
            conflicts += isinstance(exc, StateConflictError)
            busy += isinstance(exc, StateBusyError)
            store.close()
            store, _ = SecureStateStore._unlock_with(path, derive)
            continue
        print(f"ack {name} {done} {store.generation}", flush=True)
        done += 1
    store.close()
    print(f"done {name} {conflicts} {busy}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
