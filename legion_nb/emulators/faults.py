"""Deterministic fault injection for the emulators: 429s, 5xx and "committed, then dropped".

Real clouds fail in three ways that matter to Legion's resilience layer:

* ``rate_limited``: 429 before the handler runs (nothing changed), with rate-limit headers.
* ``server_error``: 500, 502 or 503 before the handler runs (nothing changed).
* ``drop_after_commit``: the handler RUNS (state changes), then the connection is closed with no
  response, so the client sees a transport error and cannot know whether its call landed. This is the
  case that makes blind retries of mutations dangerous.

:class:`FaultPlan` decides per request. Decisions come from one ``random.Random`` per provider seeded
from ``(seed, provider)``, so the sequence of faults a provider's emulator produces depends only on the
seed and on the order of requests to that emulator, not on traffic to the other two.

:func:`fault_middleware` is the aiohttp middleware every emulator installs (outermost). It also adds
``Timing.latency_ms`` to every request and counts requests in ``world.counters``. Faults apply only to
API routes: ``exempt`` (a predicate on the request) excludes the auth-time / metadata probes an SDK needs
just to start, and a route the emulator does not know (404) is never faulted.

Each emulator passes ``error_body(status, kind) -> web.Response`` that renders ITS provider's error
body; ``kind`` is ``"rate_limited"`` or ``"server_error"``. The middleware adds ``Retry-After`` and
``RateLimit-Limit``/``RateLimit-Remaining``/``RateLimit-Reset`` to 429s when the body renderer did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

if TYPE_CHECKING:
    from legion_nb.emulators.world import SandboxWorld

__all__ = ["FAULT_KINDS", "FaultKind", "FaultPlan", "fault_middleware"]

FaultKind = Literal["rate_limited", "server_error", "drop_after_commit"]
FAULT_KINDS: tuple[FaultKind, ...] = ("rate_limited", "server_error", "drop_after_commit")
_SERVER_ERROR_STATUSES = (500, 502, 503)

ErrorBody = Callable[[int, str], web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _default_weights() -> dict[FaultKind, float]:
    return {"rate_limited": 1.0, "server_error": 1.0, "drop_after_commit": 1.0}


@dataclass
class Fault:
    """One decided fault: its kind and, for HTTP errors, the status to answer with."""

    kind: FaultKind
    status: int = 0


@dataclass
class FaultPlan:
    """Which requests fail, and how.

    ``rate`` is the probability in [0, 1] that an API request fails; ``weights`` split the failures
    between the kinds (missing kinds weigh 0). With ``rate == 0`` nothing is ever drawn from the rng.
    """

    rate: float = 0.0
    seed: int = 0
    weights: dict[FaultKind, float] = field(default_factory=_default_weights)
    _rngs: dict[str, random.Random] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is outside [0, 1]; pass a fraction such as 0.05")
        unknown = set(self.weights) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {', '.join(FAULT_KINDS)}")
        if any(w < 0 for w in self.weights.values()) or (self.rate > 0 and sum(self.weights.values()) <= 0):
            raise ValueError("fault weights must be non-negative and not all zero")

    def decide(self, provider: str) -> Fault | None:
        """Draw the fate of the next API request to ``provider`` (None: it goes through)."""
        if self.rate <= 0.0:
            return None
        rng = self._rngs.get(provider)
        if rng is None:
            rng = self._rngs[provider] = random.Random(f"{self.seed}:{provider}")  # noqa: S311 - reproducible, not secret
        if rng.random() >= self.rate:
            return None
        kinds = [k for k in FAULT_KINDS if self.weights.get(k, 0.0) > 0]
        kind = rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
        if kind == "rate_limited":
            return Fault(kind, 429)
        if kind == "server_error":
            return Fault(kind, rng.choice(_SERVER_ERROR_STATUSES))
        return Fault(kind)


def _route_of(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "<unmatched>"


def _drop_connection(request: web.Request) -> None:
    """Close the client's connection without a response (the handler's work already happened)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def fault_middleware(
    provider: str,
    world: SandboxWorld,
    error_body: ErrorBody,
    *,
    exempt: Callable[[web.Request], bool] | None = None,
) -> Middleware:
    """Build the outermost middleware of ``provider``'s emulator (see the module docstring)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        world.counters.record(provider, request.method, _route_of(request))
        if world.timing.latency_ms > 0:
            await asyncio.sleep(world.timing.latency_ms / 1000.0)
        is_api = request.match_info.route.resource is not None and not (exempt and exempt(request))
        fault = world.faults.decide(provider) if is_api else None
        if fault is None:
            return await handler(request)
        if fault.kind == "drop_after_commit":
            # The handler's own error response is dropped just like a success would be.
            with contextlib.suppress(web.HTTPException):
                await handler(request)
            _drop_connection(request)
            # Nothing reaches the client: the transport is gone. Returning a response keeps aiohttp's
            # bookkeeping simple; its write fails quietly on the aborted transport.
            return web.Response(status=500)
        response = error_body(fault.status, fault.kind)
        if fault.status == 429:
            _add_rate_limit_headers(response)
        return response

    return middleware


def _add_rate_limit_headers(response: web.StreamResponse) -> None:
    defaults = {
        "Retry-After": "1",
        "RateLimit-Limit": "3600",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(int(time.time()) + 1),
    }
    for name, value in defaults.items():
        response.headers.setdefault(name, value)
