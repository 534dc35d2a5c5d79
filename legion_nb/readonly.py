"""Read-only mappings for frozen records.

A frozen dataclass stops reassignment of its fields, not mutation of a dict it holds: a record whose
``labels`` is a plain dict can still be changed in place by anyone holding it, behind the back of
every other holder (the state's structural sharing, the snapshot, a cached firewall plan). Records
therefore keep their mappings as :class:`types.MappingProxyType` views of a private copy; readers see
an ordinary ``Mapping``, and a write raises ``TypeError`` where it happens.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["freeze_mappings"]


def freeze_mappings(record: Any, *names: str) -> None:
    """Replace the mapping fields ``names`` of a frozen record with read-only views (its
    ``__post_init__`` calls this, so every way of building the record gets them)."""
    for name in names:
        value = getattr(record, name)
        if type(value) is not MappingProxyType:
            object.__setattr__(record, name, MappingProxyType(dict(value)))
