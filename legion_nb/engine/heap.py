"""The unlocked state's long-lived objects leave the cyclic garbage collector's full passes.

Why: CPython's full (generation 2) collection walks every object the collector tracks, and it runs
whenever the long-lived objects have grown by a quarter. An unlocked fleet is a few hundred thousand
long-lived objects (the decoded state, one actor per resource, their snapshots): at 1,000 servers
the full passes hold the loop's thread 40 to 160 ms of CPU during unlock, and 70 to 90 ms once in
a run of 20 plan edits; frozen, the longest stall is 10 to 30 ms in both (``benchmarks/scale.py``
prints the two side by side). ``gc.freeze()`` moves every object that exists now into the
permanent generation, which collections skip.

Scope: the freeze is the process's, not the engine's alone. Everything alive when a session
settles - the kernel's and other libraries' objects included - moves to the permanent generation.
That is safe because a frozen object is still freed by reference counting the moment nothing
refers to it; what it gives up is only the cyclic collector, so a reference cycle among frozen
objects that becomes garbage while a session is open is reclaimed when the last session closes
rather than at the next full pass: memory held a little longer, never lost.

The process's sessions share one claim (:class:`HeapClaims`) so that a closed engine leaves the
collector as it found it: the first session to settle records whether anything was frozen already,
and the last one to release unfreezes only if nothing was. A host that freezes its own heap (before
forking workers, say) keeps its freeze, and the engine then freezes nothing. A host that freezes
*while* a session is open has that freeze undone with the session's at logout; such a host turns
freezing off (``ResourceSettings.freeze_heap``) and manages the collector itself.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["PROCESS_HEAP", "HeapClaims", "HeapFreeze"]


class HeapClaims:
    """The sessions of one process that froze the heap, and whether the freeze is theirs to undo."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # engines on other threads' loops share the one collector
        self._holders = 0
        self._ours = False

    @property
    def holders(self) -> int:
        return self._holders

    def settle(self, first: bool) -> None:
        """Freeze what is alive now, for a session (``first``: its first settle, a new claim)."""
        with self._lock:
            if first:
                if self._holders == 0:
                    self._ours = gc.get_freeze_count() == 0  # someone else's freeze is left alone
                self._holders += 1
            if self._ours:
                gc.freeze()

    def release(self) -> None:
        """End one session's claim; the last hands every frozen object back to the collector."""
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._ours:
                gc.unfreeze()
                self._ours = False


PROCESS_HEAP = HeapClaims()
"""The claims of every session in this process."""


class HeapFreeze:
    """One session's part in freezing the heap (module notes): :meth:`settle` after building a lot,
    :meth:`release` when the session closes. ``enabled`` False: neither touches the collector."""

    def __init__(self, *, enabled: bool = True, claims: HeapClaims = PROCESS_HEAP) -> None:
        self._enabled = enabled
        self._claims = claims
        self._held = False

    def settle(self) -> None:
        """Leave everything alive now out of later full collections."""
        if not self._enabled:
            return
        self._claims.settle(first=not self._held)
        self._held = True

    def release(self) -> None:
        """Let the collector see every object again once no session holds a claim (idempotent)."""
        if self._held:
            self._held = False
            self._claims.release()
