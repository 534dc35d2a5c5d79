"""The writer that test_crash.py kills: a fork server whose children save a counter until SIGKILL.

Usage: ``python crash_writer.py STATE_PATH PADDING`` with the password as the first line of stdin.

The parent runs Argon2id once (the state's salt does not change between saves), then, for every
``go`` line on stdin, forks a child and waits for it. The child is a plain writer: it unlocks the
state through the store's own unlock path (with the one derived key), reads the counter, and saves
counter+1, counter+2, ... with ``SecureStateStore.save`` in an asyncio loop, writing ``ack N`` to
stdout after each save returned. The test kills the child with SIGKILL at a random moment; the
parent then reports ``exit PID STATUS`` and waits for the next ``go``.

Forking avoids paying interpreter start-up, imports and Argon2id for each of the hundreds of kills;
the child is still a separate process with its own file descriptors and locks, killed by the kernel.
Lines go out with one ``os.write`` each (atomic on a pipe), never through Python's buffers, which a
fork would duplicate.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from statekit import OnceDerived, counter_of, counter_payload

from legion_nb.engine.state.store import SecureStateStore


def emit(line: str) -> None:
    os.write(1, (line + "\n").encode())


def child(path: Path, derive: OnceDerived, padding: int) -> None:
    store, payload = SecureStateStore._unlock_with(path, derive)
    counter = counter_of(payload)
    emit(f"ready {os.getpid()} {counter}")

    async def save_forever() -> None:
        number = counter
        while True:
            number += 1
            await store.save(counter_payload(number, padding + (number % 7) * 4096))
            emit(f"ack {number}")

    asyncio.run(save_forever())


def main() -> None:
    path, padding = Path(sys.argv[1]), int(sys.argv[2])
    derive = OnceDerived(sys.stdin.readline().rstrip("\n"))
    store, _ = SecureStateStore._unlock_with(path, derive)  # the one Argon2id run
    store.close()
    emit("derived")
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:
            try:
                child(path, derive, padding)
            except BaseException as exc:  # report, never fall back into the parent's loop
                emit(f"error {type(exc).__name__}: {exc}")
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        emit(f"exit {pid} {status}")


if __name__ == "__main__":
    main()
