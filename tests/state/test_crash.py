"""SIGKILL a writer at random moments: never an unreadable state, never a lost acknowledged save.

The writer (``crash_writer.py``) saves an increasing counter through ``SecureStateStore.save`` and
prints ``ack N`` after each save returned. After every kill this test opens the state through the
store's unlock path and checks that it holds N or N+1 (the save in flight may or may not have
landed): at least the last acknowledged value, and nothing else.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from statekit import OpenStore, Template, counter_of, counter_payload

from legion_nb.engine.state.store import SecureStateStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL are POSIX"),
]

KILLS = 200
PADDING = 64 * 1024  # plus up to 24 KiB more: each save writes and fsyncs ~64-90 KiB
WRITER = Path(__file__).with_name("crash_writer.py")


def read_line(stream: IO[bytes]) -> list[str]:
    line = stream.readline()
    assert line, "the writer process ended unexpectedly"
    return line.decode().split()


def test_sigkill_never_loses_an_acknowledged_save_or_leaves_an_unreadable_state(
    state_path: Path, template: Template, open_store: OpenStore
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    store, _ = open_store(state_path)
    store._save_sync(counter_payload(0, PADDING))
    store.close()

    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(state_path), str(PADDING)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert writer.stdin is not None
    assert writer.stdout is not None
    last_ack = 0
    acks = kills_mid_write = kills_after_replace = 0
    try:
        writer.stdin.write(template.password.encode() + b"\n")
        writer.stdin.flush()
        assert read_line(writer.stdout) == ["derived"]
        for kill in range(KILLS):
            where = f"kill {kill} (seed {seed})"
            writer.stdin.write(b"go\n")
            writer.stdin.flush()
            ready, pid, start = read_line(writer.stdout)
            assert ready == "ready", where
            assert int(start) == last_ack, where  # the child read what the last check read
            time.sleep(rng.uniform(0.002, 0.1))
            os.kill(int(pid), signal.SIGKILL)
            while True:
                word, *rest = read_line(writer.stdout)
                if word == "exit":
                    status = int(rest[1])
                    assert os.WIFSIGNALED(status), f"{where}: writer exited by itself"
                    assert os.WTERMSIG(status) == signal.SIGKILL, where
                    break
                assert word == "ack", f"{where}: writer said {word} {rest}"
                assert int(rest[0]) == last_ack + 1, where
                last_ack = int(rest[0])
                acks += 1

            leftovers = [name for name in os.listdir(state_path.parent) if name.endswith(".tmp")]
            kills_mid_write += bool(leftovers)
            assert state_path.exists(), f"{where}: no live file"  # hard links: never even a gap
            store, payload = SecureStateStore._unlock_with(state_path, template.derive)
            store.close()
            on_disk = counter_of(payload)
            assert on_disk in (last_ack, last_ack + 1), f"{where}: {on_disk} on disk, {last_ack} acknowledged"
            kills_after_replace += on_disk == last_ack + 1
            last_ack = on_disk  # the next child continues from what is on disk
        writer.stdin.write(b"quit\n")
        writer.stdin.flush()
        assert writer.wait(timeout=30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()

    backup_store, backup = SecureStateStore._unlock_with(
        state_path.with_name("state.legion.bak"), template.derive
    )
    backup_store.close()
    assert counter_of(backup) <= last_ack  # equal when the last kill fell between backup link and rename
    print(
        f"\n{KILLS} kills, {acks} acknowledged saves, {kills_mid_write} kills inside a write, "
        f"{kills_after_replace} after the rename but before the ack, seed {seed}"
    )
    assert acks > 0  # the writers made progress between kills (how much depends on the machine)
    assert kills_mid_write > 0  # the kills did land inside writes, not only between them
