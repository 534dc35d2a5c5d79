"""Node observation: poll every deployed cluster node's admin API and classify its health.

One pass polls each deployed node (the server actors whose system region reads ``deployed``) over
mTLS - ``/v1/health`` (services, membership), ``/v1/readiness`` and ``/v1/metrics`` (newest sample
time) - folds the answers into the node's verdict with :func:`~.node_health.classify`, and hands the
verdict to the node's actor, which shows it as its ``health`` with ``checked_at`` and ``reason``.
Polls run concurrently, at most ``concurrency`` at a time, and each node's client (its connection
pool and TLS context) is kept between passes, so a pass over a hundred nodes costs a hundred small
HTTPS requests on open connections, not a hundred handshakes.

Satellites are not cluster nodes: they have no admin API and are probed over their Sender API by a
:class:`Probe` registered for the ``satellite`` role (:meth:`NodeObservation.register_probe`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from legion_nb.engine.node_health import NodeHealth, NodeProbe, classify, probe_of
from legion_nb.errors import LegionError
from legion_nb.providers.node_admin import NodeAdminClient

__all__ = ["AdminClientPool", "AdminClients", "NodeObservation", "ObservedNode", "Probe"]

log = logging.getLogger(__name__)


class AdminClients(Protocol):
    """Builds a node's admin API client from the state (the deployment's ``NodeReach``)."""

    def admin_client(self, node: str) -> NodeAdminClient: ...


class Probe(Protocol):
    """Polls one node of a role and says what it saw (satellites: an HTTP probe)."""

    async def __call__(self, node: str) -> NodeProbe: ...


@dataclass(frozen=True, slots=True)
class ObservedNode:
    """A node due for a poll: its name, role and the address its client was built for."""

    name: str
    role: str
    address: str


class AdminClientPool:
    """One open admin API client per node, shared by every concern that reads nodes; a client is
    rebuilt when its node's address changes and closed when the node is no longer observed."""

    def __init__(self, clients: AdminClients) -> None:
        self._clients = clients
        self._open: dict[str, tuple[str, NodeAdminClient]] = {}

    async def client(self, node: ObservedNode) -> NodeAdminClient:
        held = self._open.get(node.name)
        if held is not None and held[0] == node.address:
            return held[1]
        if held is not None:
            await held[1].aclose()  # the node moved (reinstall, new address): a fresh client
        client = self._clients.admin_client(node.name)
        self._open[node.name] = (node.address, client)
        return client

    async def retain(self, names: set[str]) -> None:
        """Close the clients of nodes not in ``names``."""
        for node in [n for n in self._open if n not in names]:
            _, client = self._open.pop(node)
            await client.aclose()

    async def aclose(self) -> None:
        held, self._open = list(self._open.values()), {}
        for _, client in held:
            await client.aclose()


class NodeObservation:
    """Polls nodes and keeps their verdicts (module notes)."""

    def __init__(
        self,
        clients: AdminClientPool,
        targets: Callable[[], Iterable[ObservedNode]],
        *,
        interval: float,
        tolerance: int = 2,
        concurrency: int = 16,
        on_health: Callable[[NodeHealth, NodeHealth | None], None] = lambda new, old: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clients = clients
        self._targets = targets
        self.interval = interval
        self._tolerance = tolerance
        self._limit = asyncio.Semaphore(concurrency)
        self._on_health = on_health
        self._clock = clock
        self._health: dict[str, NodeHealth] = {}
        self._probes: dict[str, Probe] = {}
        """Probes for roles without an admin API (cluster nodes always use theirs)."""

    def register_probe(self, role: str, probe: Probe) -> None:
        """Poll nodes of ``role`` with ``probe`` (satellites register an HTTP probe here)."""
        self._probes[role] = probe

    def health(self) -> Mapping[str, NodeHealth]:
        return dict(self._health)

    async def poll(self) -> int:
        """One pass over every target with a probe for its role; the number of nodes polled."""
        targets = [t for t in self._targets() if t.role == "cluster" or t.role in self._probes]
        await self._forget_gone({t.name for t in targets})
        probes = await asyncio.gather(*(self._poll_one(t) for t in targets))
        for probe in probes:
            previous = self._health.get(probe.node)
            verdict = classify(previous, probe, interval=self.interval, tolerance=self._tolerance)
            self._health[probe.node] = verdict
            self._on_health(verdict, previous)
        return len(probes)

    async def _poll_one(self, target: ObservedNode) -> NodeProbe:
        async with self._limit:
            if target.role == "cluster":
                return await self._admin_probe(target)
            return await self._probes[target.role](target.name)

    async def _admin_probe(self, target: ObservedNode) -> NodeProbe:
        node = target.name
        try:
            client = await self._clients.client(target)
            health = await client.health()
            readiness = await client.readiness()
            metrics = await client.metrics()
        except LegionError as exc:  # unreachable, trust or protocol: one miss, with its reason
            return NodeProbe(node, self._clock(), error=exc.message)
        return probe_of(
            node,
            self._clock(),
            health=health,
            readiness=(readiness.ready, readiness.failing()),
            metrics=metrics,
        )

    async def _forget_gone(self, names: set[str]) -> None:
        await self._clients.retain(names)
        for node in [n for n in self._health if n not in names]:
            del self._health[node]
