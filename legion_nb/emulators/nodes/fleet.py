"""A set of simulated nodes, one per server address, started and stopped as servers come and go.

The provider emulators decide *that* a server exists and which 127.x address it has; the fleet makes
that address answer like a machine (SSH, and later the admin API). :meth:`NodeFleet.sync` takes the
wanted ``{address: hostname}`` map and starts or stops nodes to match it, so whoever watches the
emulators can call it after every change without tracking differences itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType

from legion_nb.emulators.nodes.node import SimulatedNode
from legion_nb.emulators.nodes.streams import StreamReceiver
from legion_nb.emulators.nodes.system import NodeTiming

__all__ = ["NodeFleet"]


class NodeFleet:
    """Simulated nodes keyed by address; an async context manager that stops them all on exit."""

    def __init__(
        self,
        *,
        authorized_keys: Iterable[str] = (),
        timing: NodeTiming | None = None,
        ssh_port: int = 0,
        admin_port: int = 0,
        sync_port: int = 0,
        sender_port: int | None = None,
        seed: int = 0,
        history_hours: float = 0.0,
        page_limit: int | None = None,
    ) -> None:
        self.seed = seed
        self.history_hours = history_hours
        """Back-dated metrics and journal each new node starts with."""
        self.page_limit = page_limit
        """The most journal lines or sampling steps a new node's admin API page carries (None:
        the API's own caps)."""
        self.authorized_keys = tuple(authorized_keys)
        """Keys root accepts on every new node (the provider SSH keys a cloud image would install)."""
        self.timing = timing or NodeTiming()
        self._ssh_port = ssh_port
        self._admin_port = admin_port
        self._sync_port = sync_port
        self._sender_port = sender_port
        self.receiver: StreamReceiver | None = None
        """The sandbox's stream receiver (started with the first node that serves a Sender)."""
        self._nodes: dict[str, SimulatedNode] = {}
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()

    def __contains__(self, address: object) -> bool:
        return address in self._nodes

    def node(self, address: str) -> SimulatedNode:
        """The node at ``address``; ``KeyError`` names the address when there is none."""
        try:
            return self._nodes[address]
        except KeyError:
            raise KeyError(f"no simulated node at {address}") from None

    def by_hostname(self, hostname: str) -> SimulatedNode:
        """The node named ``hostname`` (a runbook breaks a node by its server name); ``KeyError``
        names it when there is none."""
        for node in self._nodes.values():
            if node.hostname == hostname:
                return node
        raise KeyError(f"no simulated node named {hostname}")

    def addresses(self) -> list[str]:
        return sorted(self._nodes)

    def endpoints(self) -> dict[str, dict[str, int]]:
        """``{address: {"ssh": port, "admin": port, "sync": port}}``: how to reach each node.

        Ports are ephemeral unless the fleet was given fixed ones; ``admin`` and ``sync`` stay 0 until
        certificates are activated and Tribes is configured.
        """
        return {
            a: {"ssh": n.ssh_port, "admin": n.admin_port, "sync": n.sync_port}
            for a, n in sorted(self._nodes.items())
        }

    async def start_node(
        self, address: str, hostname: str, *, authorized_keys: Iterable[str] | None = None
    ) -> SimulatedNode:
        """Boot a node at ``address`` (idempotent: an existing node there is returned as is)."""
        async with self._lock:
            existing = self._nodes.get(address)
            if existing is not None:
                return existing
            node = SimulatedNode(
                address,
                hostname=hostname,
                authorized_keys=self.authorized_keys if authorized_keys is None else authorized_keys,
                ssh_port=self._ssh_port,
                admin_port=self._admin_port,
                sync_port=self._sync_port,
                sender_port=self._sender_port,
                timing=self.timing,
                seed=self.seed,
                history_hours=self.history_hours,
                page_limit=self.page_limit,
            )
            await node.start()
            self._nodes[address] = node
            if self._sender_port is not None:
                await self._start_receiver()
        async with self._changed:
            self._changed.notify_all()
        return node

    async def start_receiver(self) -> StreamReceiver:
        """Start the stream receiver now rather than with the first node (a served sandbox names
        it in its link before any satellite exists); idempotent."""
        async with self._lock:
            return await self._start_receiver()

    async def _start_receiver(self) -> StreamReceiver:
        if self.receiver is None:
            receiver = StreamReceiver()
            await receiver.start()
            self.receiver = receiver
        return self.receiver

    async def wait_node(self, address: str) -> SimulatedNode:
        """The node at ``address`` once it is up (e.g. after its server turned running)."""
        async with self._changed:
            await self._changed.wait_for(lambda: address in self._nodes)
            return self._nodes[address]

    async def stop_node(self, address: str) -> None:
        """Power the node at ``address`` off for good (idempotent)."""
        async with self._lock:
            node = self._nodes.pop(address, None)
        if node is not None:
            await node.aclose()

    async def power_on(
        self, address: str, hostname: str, *, authorized_keys: Iterable[str] | None = None
    ) -> None:
        """Boot the node at ``address`` from its disk, or a fresh one if there is none yet."""
        node = self._nodes.get(address)
        if node is None:
            await self.start_node(address, hostname, authorized_keys=authorized_keys)
        else:
            await node.power_on()

    async def power_off(self, address: str) -> None:
        node = self._nodes.get(address)
        if node is not None:
            await node.power_off()

    async def reboot(self, address: str) -> None:
        node = self._nodes.get(address)
        if node is not None:
            await node.reboot()

    async def rebuild(
        self, address: str, hostname: str, *, authorized_keys: Iterable[str] | None = None
    ) -> None:
        """A fresh disk from the provider image: new cloud host key, nothing of the old install."""
        await self.stop_node(address)
        await self.start_node(address, hostname, authorized_keys=authorized_keys)

    async def sync(self, wanted: Mapping[str, str]) -> None:
        """Make the running nodes exactly ``wanted`` (``{address: hostname}``)."""
        for address in [a for a in self._nodes if a not in wanted]:
            await self.stop_node(address)
        for address, hostname in wanted.items():
            await self.start_node(address, hostname)

    async def aclose(self) -> None:
        for address in list(self._nodes):
            await self.stop_node(address)
        if self.receiver is not None:
            await self.receiver.aclose()
            self.receiver = None

    async def __aenter__(self) -> NodeFleet:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
