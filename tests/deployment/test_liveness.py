"""Node-operation locks: held while a live process runs the operation, free once it is gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from legion_nb.engine.deployment.liveness import NodeLocks

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from legion_nb.engine.deployment.liveness import NodeLocks

    claim = NodeLocks(Path(sys.argv[1])).hold(sys.argv[2])
    print("held" if claim is not None else "busy", flush=True)
    sys.stdin.read()
    """
)


def hold_in_child(directory: Path, node: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), node],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_lock_a_live_process_holds_is_seen_and_a_killed_holder_leaves_none(tmp_path: Path) -> None:
    locks = NodeLocks(tmp_path / "state.operations")
    assert not locks.held_elsewhere("n1")  # never locked: no file, nothing held
    child = hold_in_child(locks.directory, "n1")
    try:
        assert locks.held_elsewhere("n1")
        assert locks.hold("n1") is None
        assert not locks.held_elsewhere("n2")  # one lock per node
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not locks.held_elsewhere("n1")  # the kernel dropped it with the process
    claim = locks.hold("n1")
    assert claim is not None
    claim.release()
    assert locks.directory.stat().st_mode & 0o777 == 0o700
    assert (locks.directory / "n1.lock").stat().st_mode & 0o077 == 0


def test_a_node_name_that_is_no_plain_file_name_gets_a_hashed_one(tmp_path: Path) -> None:
    locks = NodeLocks(tmp_path / "ops")
    claim = locks.hold("../escape")
    assert claim is not None
    claim.release()
    (only,) = locks.directory.iterdir()
    assert only.parent == locks.directory and only.name.endswith(".lock") and "/" not in only.name
