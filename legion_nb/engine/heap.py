"""The unlocked state's long-lived objects leave the cyclic garbage collector's full passes.

Why: CPython's full (generation 2) collection walks every object the collector tracks, and it runs
whenever the long-lived objects have grown by a quarter. An unlocked fleet is a few hundred thousand
long-lived objects (the decoded state, one actor per resource, their snapshots), so unlocking 3,000
servers ran four full passes of 45 to 190 ms each on the loop, and every tenth commit or so another
one of about 100 ms at 1,000 servers (``benchmarks/scale.py`` prints the stalls). ``gc.freeze()``
moves every object that exists now into the permanent generation, which collections skip; their
memory is still freed by reference counting when nothing uses them. A cycle among frozen objects
that dies while the state is unlocked waits for :func:`release` (logout) to be collected.
"""

from __future__ import annotations

import gc

__all__ = ["release", "settle"]


def settle() -> None:
    """Leave everything alive now out of later full collections (call after building a lot)."""
    gc.freeze()


def release() -> None:
    """Let the collector see every object again (at logout: what the session leaves is freed)."""
    gc.unfreeze()
