"""Legion's two ownership labels and the one test of whether a resource carries them.

Every create writes ``legion/managed=true`` and ``legion/id=<uuid>`` (labels, tags or an encoded
name, per provider). A resource is Legion's only with both, the id a UUID: the providers'
ownership records and the engine's orphan rule ask :func:`claimed_legion_id` alike. It sits apart
from both layers because both read it and the panels see the engine's verdicts without reaching
the providers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

__all__ = ["LEGION_ID_LABEL", "LEGION_MANAGED_LABEL", "claimed_legion_id"]

LEGION_MANAGED_LABEL = "legion/managed"
LEGION_ID_LABEL = "legion/id"


def claimed_legion_id(labels: Mapping[str, str]) -> str | None:
    """The Legion id ``labels`` claim when they carry both ownership labels (the id a UUID), else None."""
    if labels.get(LEGION_MANAGED_LABEL) != "true":
        return None
    legion_id = labels.get(LEGION_ID_LABEL)
    if legion_id is None:
        return None
    try:
        uuid.UUID(legion_id)
    except ValueError:
        return None
    return legion_id
