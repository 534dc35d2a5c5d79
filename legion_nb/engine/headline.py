"""Which activity items a person reads: the headlines of the stream, details left out.

Why a rule of its own: ``legion materialize`` without ``--json`` and the activity panel's recent
lines are the same progress view for people, so they leave out the same items, and the producer
of an item is the one that knows whether a headline already tells it (a deployment phase's end is
told by the next phase's start; see :mod:`~legion_nb.engine.deployment.node_events`). Such an
item carries ``"detail": true``; machine consumers (``--json``, runbooks, the operation log) get
every item. This module imports nothing, so a panel or a warm CLI command loads it for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DETAIL", "headline"]

DETAIL = "detail"
"""The key an activity item sets to ``True`` when a progress view for people may leave it out."""


def headline(item: Any) -> bool:
    """Does a progress view for people show the activity ``item``? Every item but a detail."""
    return not (isinstance(item, Mapping) and item.get(DETAIL) is True)
