"""Hetzner's per-project rate limit: a token bucket of 3600 requests refilling about one per second.

Every request (action polls included) takes a token; an empty bucket answers ``429
rate_limit_exceeded``. Responses carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (unix time at which the bucket would be full again).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RateLimit", "TokenBucket"]


@dataclass(frozen=True)
class RateLimit:
    """Bucket size and refill speed; ``capacity=0`` disables limiting."""

    capacity: int = 3600
    refill_per_second: float = 1.0


@dataclass
class TokenBucket:
    limit: RateLimit
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.limit.capacity)
        self._stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        gained = (now - self._stamp) * self.limit.refill_per_second
        self._tokens = min(float(self.limit.capacity), self._tokens + gained)
        self._stamp = now

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty."""
        if self.limit.capacity <= 0:
            return True
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def headers(self) -> dict[str, str]:
        capacity = self.limit.capacity
        if capacity <= 0:
            return {}
        missing = capacity - self._tokens
        rate = self.limit.refill_per_second
        seconds_to_full = missing / rate if rate > 0 else 0.0
        return {
            "RateLimit-Limit": str(capacity),
            "RateLimit-Remaining": str(max(0, math.floor(self._tokens))),
            "RateLimit-Reset": str(math.ceil(self.wall() + seconds_to_full)),
        }
