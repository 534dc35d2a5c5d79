"""The one shared world behind the three provider emulators.

A sandbox is "the outside world" for Legion: three clouds that speak their providers' real wire formats.
They share one :class:`SandboxWorld` so that a single seed makes a whole run reproducible, a single
address pool guarantees that no simulated machine ever gets an address outside ``127.0.0.0/8``, and a
single set of request counters lets benchmarks count API calls across providers.

Contract for emulator packages (``legion_nb.emulators.<provider>``)::

    def create_app(world: SandboxWorld) -> Emulator

* ``Emulator.app`` is the ``aiohttp.web.Application``; install
  :func:`legion_nb.emulators.faults.fault_middleware` in it so latency, counting and faults apply.
* ``Emulator.credentials`` is the GUIDE §3 block for that provider *without* ``url``
  (e.g. ``{"token": ...}``).
* ``Emulator.prefix`` is the URL path prefix the SDK expects after ``http://host:port``: ``"/v1"`` (Hetzner),
  ``""`` (Scaleway), ``"/1.0"`` (OVH). :class:`legion_nb.emulators.cloud.SandboxCloud` builds
  ``url = f"http://{host}:{port}{prefix}"``.

Background work (an action finishing after ``timing.action_seconds``, a server booting) is started with
:meth:`SandboxWorld.spawn`; the world owns those tasks and cancels them in :meth:`SandboxWorld.aclose`,
so no task outlives the sandbox.

Machines: when an emulator's server becomes ``running`` it calls :meth:`SandboxWorld.machine_running`
(address, name, the public SSH keys root should accept); after a reboot or reset action
:meth:`~SandboxWorld.machine_rebooted`, after a rebuild/reinstall :meth:`~SandboxWorld.machine_rebuilt`,
when powered off :meth:`~SandboxWorld.machine_stopped`, and when the server is gone,
:meth:`SandboxWorld.machine_gone`. Listeners (e.g. the simulated-node fleet that
:class:`legion_nb.emulators.cloud.SandboxCloud` attaches with ``nodes=``) make those addresses answer
SSH. Without listeners the calls do nothing.

The sandbox imports no other legion_nb module, on purpose: it must behave like a foreign cloud.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import secrets
import string
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from legion_nb.emulators.faults import FaultPlan

__all__ = ["AddressPool", "Emulator", "MachineListener", "RequestCounters", "SandboxWorld", "Timing"]

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AddressPool:
    """Hands out IPv4 addresses for simulated machines, strictly inside ``127.0.0.0/8``.

    Addresses come from ``network`` (default ``127.20.0.0/16``), lowest free first, skipping any
    address whose last octet is 0 or 255 and never handing out ``127.0.0.1`` (that is where the
    emulators themselves listen). Released addresses return to the pool and may be reused.
    Every address is checked against ``127.0.0.0/8`` before it leaves: a violation is a bug, so it is
    an ``AssertionError``-style hard failure (``RuntimeError``, since asserts can be stripped).
    """

    def __init__(self, network: str = "127.20.0.0/16") -> None:
        net = ipaddress.IPv4Network(network)
        if not net.subnet_of(LOOPBACK):
            raise ValueError(f"address pool {network} is outside 127.0.0.0/8; choose a loopback network")
        self._network = net
        self._next = int(net.network_address) + 2
        self._last = int(net.broadcast_address) - 1
        self._released: list[int] = []
        self._in_use: set[int] = set()
        self._reserved: set[int] = set()

    @property
    def network(self) -> str:
        return str(self._network)

    def allocate(self) -> str:
        """Return a free address; raises ``RuntimeError`` when the pool is exhausted."""
        if self._released:
            self._released.sort(reverse=True)
            value = self._released.pop()
        else:
            value = self._next_fresh()
            while value in self._reserved:
                value = self._next_fresh()
        self._in_use.add(value)
        address = ipaddress.IPv4Address(value)
        if address not in LOOPBACK or value & 0xFF in (0, 255) or str(address) == "127.0.0.1":
            raise RuntimeError(f"address pool produced {address}, which a sandbox must never hand out")
        return str(address)

    def release(self, ip: str) -> None:
        """Give ``ip`` back; releasing an address the pool does not hold is ignored (idempotent deletes)."""
        value = int(ipaddress.IPv4Address(ip))
        if value in self._in_use:
            self._in_use.remove(value)
            self._released.append(value)

    def reserve(self, ip: str) -> None:
        """Never hand out ``ip`` (e.g. the address the emulators listen on, if it lies in the pool)."""
        value = int(ipaddress.IPv4Address(ip))
        if value in self._released:
            self._released.remove(value)
        self._reserved.add(value)

    def in_use(self) -> frozenset[str]:
        return frozenset(str(ipaddress.IPv4Address(v)) for v in self._in_use)

    def _next_fresh(self) -> int:
        while self._next <= self._last:
            value = self._next
            self._next += 1
            if value & 0xFF not in (0, 255) and value != int(ipaddress.IPv4Address("127.0.0.1")):
                return value
        raise RuntimeError(f"sandbox address pool {self._network} is exhausted; release servers first")


@dataclass
class Timing:
    """How long simulated work takes, in seconds; fast by default so tests stay quick."""

    action_seconds: float = 0.2
    """How long a create/delete/power action stays ``running``."""
    boot_seconds: float = 0.3
    """A server going from starting to running."""
    latency_ms: float = 0.0
    """Added to every request (by :func:`legion_nb.emulators.faults.fault_middleware`)."""


class RequestCounters:
    """Counts requests per ``(provider, method, route)``; routes are aiohttp route templates.

    ``snapshot()`` returns ``{provider: {"GET /v1/servers/{id}": n, ...}}`` for benchmarks and tests.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def record(self, provider: str, method: str, route: str) -> None:
        self._counts[(provider, method, route)] += 1

    def total(self, provider: str | None = None) -> int:
        return sum(n for (p, _, _), n in self._counts.items() if provider is None or p == provider)

    def mutations(self, provider: str | None = None) -> int:
        """Requests that may change provider state (POST, PUT, PATCH, DELETE), e.g. to prove a no-op run."""
        return sum(
            n
            for (p, method, _), n in self._counts.items()
            if method in _MUTATING and (provider is None or p == provider)
        )

    def snapshot(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (provider, method, route), n in sorted(self._counts.items()):
            out.setdefault(provider, {})[f"{method} {route}"] = n
        return out


class MachineListener(Protocol):
    """Told when a simulated server starts running at an address, and when it is gone for good."""

    def machine_running(self, address: str, name: str, authorized_keys: tuple[str, ...]) -> None: ...

    def machine_rebooted(self, address: str) -> None: ...

    def machine_rebuilt(self, address: str, name: str, authorized_keys: tuple[str, ...]) -> None: ...

    def machine_stopped(self, address: str) -> None: ...

    def machine_gone(self, address: str) -> None: ...


@dataclass
class Emulator:
    """One provider emulator, ready to be served (see the module docstring for the contract)."""

    name: str
    app: web.Application
    credentials: dict[str, str] = field(repr=False)
    prefix: str = ""


class SandboxWorld:
    """State shared by the emulators of one sandbox: seed, randomness, addresses, timing, faults."""

    def __init__(
        self,
        seed: int = 0,
        *,
        timing: Timing | None = None,
        faults: FaultPlan | None = None,
        addresses: AddressPool | None = None,
        history_days: int = 0,
    ) -> None:
        if history_days < 0:
            raise ValueError(f"history_days {history_days} is negative; use 0 (no past) or more days")
        self.seed = seed
        self.history_days = history_days
        """Days of back-dated billing history the emulators seed (see :mod:`legion_nb.emulators.history`)."""
        self.rng = random.Random(seed)  # noqa: S311 - reproducible runs, not secrecy
        self.addresses = addresses or AddressPool()
        self.timing = timing or Timing()
        self.faults = faults or FaultPlan(rate=0.0, seed=seed)
        self.counters = RequestCounters()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.machine_listeners: list[MachineListener] = []

    def machine_running(self, address: str, name: str, authorized_keys: tuple[str, ...] = ()) -> None:
        """An emulator's server at ``address`` is running (see the module docstring)."""
        for listener in self.machine_listeners:
            listener.machine_running(address, name, authorized_keys)

    def machine_rebooted(self, address: str) -> None:
        """A reboot/reset action on the server at ``address`` completed."""
        for listener in self.machine_listeners:
            listener.machine_rebooted(address)

    def machine_rebuilt(self, address: str, name: str, authorized_keys: tuple[str, ...] = ()) -> None:
        """The server at ``address`` was rebuilt from an image: a fresh disk, running again."""
        for listener in self.machine_listeners:
            listener.machine_rebuilt(address, name, authorized_keys)

    def machine_stopped(self, address: str) -> None:
        """The server at ``address`` was powered off (its disk is kept)."""
        for listener in self.machine_listeners:
            listener.machine_stopped(address)

    def machine_gone(self, address: str) -> None:
        """The server at ``address`` was deleted; its address is about to return to the pool."""
        for listener in self.machine_listeners:
            listener.machine_gone(address)

    def now(self) -> datetime:
        """Current time, aware UTC (emulators render it in their provider's format)."""
        return datetime.now(UTC)

    def new_secret(self, nbytes: int = 24) -> str:
        """A fresh credential: derived from the seeded rng, so a seed reproduces the same credentials.

        These are sandbox credentials guarding loopback emulators, never real secrets; determinism
        matters more here (reproducible runs) than unpredictability.
        """
        alphabet = string.ascii_letters + string.digits
        return "".join(self.rng.choice(alphabet) for _ in range(max(16, nbytes * 4 // 3)))

    def random_token(self, nbytes: int = 16) -> str:
        """An unpredictable token (for values that must not repeat across runs, e.g. correlation ids)."""
        return secrets.token_hex(nbytes)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, owned by the world and cancelled by :meth:`aclose`."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sleep(self, seconds: float) -> None:
        """Sleep used by simulated work (one place to change if a fake clock is ever wanted)."""
        await asyncio.sleep(max(0.0, seconds))

    async def aclose(self) -> None:
        """Cancel every background task the world owns and wait for them to end."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
