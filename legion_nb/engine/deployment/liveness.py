"""Which node operations a live process runs: one advisory lock per node, held while it runs.

A node's execution record says ``running`` both while a process runs its operation and after that
process died; the record alone cannot tell the two apart, and a second ``legion`` process opening
the same state (a ``legion snapshot`` beside a ``legion materialize`` in another shell) must not
call a live operation interrupted. So the process running a node operation holds an exclusive
advisory lock on the node's file in a directory beside the state (``<state>.operations/``, 0700,
its files 0600) for as long as the operation runs. The kernel drops the lock when the process ends,
however it ends (a SIGKILL included): "nobody holds the node's lock" is exactly "the process that
ran it is gone", with nothing stale to clean up.

POSIX uses ``fcntl.flock`` and Windows ``msvcrt.locking`` (through
:mod:`~legion_nb.engine.state.filelock`), both released by the system at process exit. The lock
is per open file, so a second engine in the same process sees the first one's operations as
running elsewhere too, which is what they are to it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from legion_nb.engine.state.filelock import LockClaim, try_claim

__all__ = ["NodeLocks"]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class NodeLocks:
    """The node-operation locks of one state (module notes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, node: str) -> Path:
        name = node if _PLAIN_NAME.fullmatch(node) else hashlib.sha256(node.encode()).hexdigest()
        return self.directory / f"{name}.lock"

    def hold(self, node: str) -> LockClaim | None:
        """Take ``node``'s lock until the claim is released; None while another holder has it."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return try_claim(self._path(node), role=f"node {node} operation")

    def held_elsewhere(self, node: str) -> bool:
        """True while another process (or another engine of this one) runs an operation on ``node``."""
        if not self._path(node).exists():
            return False
        claim = self.hold(node)
        if claim is None:
            return True
        claim.release()
        return False
