"""Shared test helpers for the state tests and the crash-test writer script.

:class:`OnceDerived` runs Argon2id once per (salt, parameters) and hands out copies of that wrapping
key. Argon2id at the enforced minimum costs ~0.2 s; the tests open hundreds of files that share one
salt, and the only thing the real ``unlock`` does differently is to call
:func:`~legion_nb.engine.state.crypto.derive_wrapping_key` every time, which the tests that go
through the public ``unlock`` still exercise. The KDF bounds are never relaxed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from legion_nb.engine.state.crypto import Envelope, KdfParams, SecretKey, derive_wrapping_key
from legion_nb.engine.state.store import SecureStateStore

PASSWORD = "correct horse battery staple \u2713"


class OnceDerived:
    """A ``WrappingKeyFor`` that derives each distinct (salt, KDF parameters) only once."""

    def __init__(self, password: str) -> None:
        self._password = password
        self._keys: dict[tuple[bytes, KdfParams], SecretKey] = {}
        self.derivations = 0

    def __call__(self, envelope: Envelope) -> SecretKey:
        slot = (envelope.salt, envelope.kdf)
        if slot not in self._keys:
            self._keys[slot] = derive_wrapping_key(self._password, envelope.kdf, envelope.salt)
            self.derivations += 1
        return self._keys[slot].copy()  # the store wipes what it is given


def counter_payload(counter: int, padding: int) -> bytes:
    """A payload whose first line is ``counter``, padded so that writes take measurable time."""
    return b"%d\n" % counter + b"." * padding


def counter_of(payload: bytes) -> int:
    return int(payload.split(b"\n", 1)[0])


@dataclass(frozen=True)
class Template:
    """A real state made once per session (payload ``b"template"``) and its one-time derivation."""

    path: Path
    password: str
    derive: OnceDerived


OpenStore = Callable[[Path], tuple[SecureStateStore, bytes]]
