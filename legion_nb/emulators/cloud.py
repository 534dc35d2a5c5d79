"""The whole sandbox cloud: Hetzner, Scaleway and OVH emulators over one shared world.

``SandboxCloud`` is an async context manager::

    async with SandboxCloud(SandboxWorld(seed=1)) as cloud:
        cloud.endpoints()  # GUIDE §3: {"hetzner": {"url", "token"}, "scaleway": {...}, "ovh": {...}}

It starts each emulator on ``host`` (loopback only; ephemeral ports unless ``ports`` names one) and
returns from ``__aenter__``/``start()`` only once all three accept connections. ``aclose()`` stops the
servers and then the world's background tasks. Emulators are built in a fixed order, so a seed
reproduces the same credentials.

With ``nodes=NodeFleet(...)`` every server that becomes running gets a simulated node on its address
(real SSH; see :mod:`legion_nb.emulators.nodes`), stopped again when the server is deleted; the fleet
is closed with the cloud. (All three emulators report their servers' power; see
:meth:`SandboxWorld.machine_running` for how an emulator reports them.)

``suspend(name)`` closes one emulator's listening socket (clients get "connection refused", the way an
unreachable provider looks) and ``resume(name)`` reopens it on the same port with its state intact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from legion_nb.emulators import hetzner, ovh, scaleway
from legion_nb.emulators.httpkit import ServedApp, ensure_loopback, serve_app
from legion_nb.emulators.world import Emulator, SandboxWorld

if TYPE_CHECKING:  # the fleet (asyncssh, cryptography) loads only when a caller passes one
    from legion_nb.emulators.nodes import NodeFleet

__all__ = ["PROVIDERS", "SandboxCloud"]

PROVIDERS: tuple[tuple[str, Callable[[SandboxWorld], Emulator]], ...] = (
    ("hetzner", hetzner.create_app),
    ("scaleway", scaleway.create_app),
    ("ovh", ovh.create_app),
)


class SandboxCloud:
    """Three provider emulators on loopback, sharing one :class:`SandboxWorld`."""

    def __init__(
        self,
        world: SandboxWorld | None = None,
        *,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        nodes: NodeFleet | None = None,
    ) -> None:
        self.world = world or SandboxWorld()
        self.nodes = nodes
        if nodes is not None:
            self.world.machine_listeners.append(_FleetHook(self.world, nodes))
        self.host = ensure_loopback(host)
        if ipaddress.ip_address(host) in ipaddress.ip_network(self.world.addresses.network):
            self.world.addresses.reserve(host)  # no simulated machine may share the emulators' address
        self._ports = dict(ports or {})
        unknown = set(self._ports) - {name for name, _ in PROVIDERS}
        if unknown:
            raise ValueError(f"unknown sandbox provider(s) {sorted(unknown)}; use hetzner, scaleway or ovh")
        self._emulators: dict[str, Emulator] = {}
        self._served: dict[str, ServedApp] = {}
        self._suspended: dict[str, int] = {}

    async def start(self) -> None:
        """Build and serve every emulator; on any failure, stop what was started and re-raise."""
        if self._served:
            return
        try:
            for name, factory in PROVIDERS:
                emulator = factory(self.world)
                self._emulators[name] = emulator
                self._served[name] = await serve_app(emulator.app, self.host, self._ports.get(name, 0))
        except BaseException:
            await self.aclose()
            raise

    async def suspend(self, name: str) -> None:
        """Make ``name`` unreachable (connection refused) until :meth:`resume`; its state is kept."""
        served = self._served.pop(name, None)
        if served is None:
            raise KeyError(f"sandbox provider {name!r} is not running")
        self._suspended[name] = served.port
        await served.aclose()

    async def resume(self, name: str) -> None:
        """Serve a suspended emulator again, on the port it had."""
        port = self._suspended.pop(name)
        self._served[name] = await serve_app(self._emulators[name].app, self.host, port)

    def emulator(self, name: str) -> Emulator:
        """The running emulator for ``name`` (tests reach into its app state through this)."""
        return self._emulators[name]

    def url(self, name: str) -> str:
        port = self._suspended.get(name) or self._served[name].port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}{self._emulators[name].prefix}"

    def endpoints(self) -> dict[str, dict[str, str]]:
        """Per provider, ``url`` first and then the credentials an SDK needs (GUIDE §3)."""
        if not self._emulators:
            raise RuntimeError("the sandbox is not running; use 'async with SandboxCloud()' or await start()")
        return {name: {"url": self.url(name), **self._emulators[name].credentials} for name, _ in PROVIDERS}

    async def aclose(self) -> None:
        served, self._served = self._served, {}
        self._suspended.clear()
        for app in served.values():
            await app.aclose()
        await self.world.aclose()
        if self.nodes is not None:
            await self.nodes.aclose()

    async def __aenter__(self) -> SandboxCloud:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _FleetHook:
    """Starts and stops fleet nodes as the emulators report servers (tasks owned by the world)."""

    def __init__(self, world: SandboxWorld, fleet: NodeFleet) -> None:
        self._world = world
        self._fleet = fleet

    def machine_running(self, address: str, name: str, authorized_keys: tuple[str, ...]) -> None:
        self._world.spawn(self._fleet.power_on(address, name, authorized_keys=authorized_keys))

    def machine_rebooted(self, address: str) -> None:
        self._world.spawn(self._fleet.reboot(address))

    def machine_rebuilt(self, address: str, name: str, authorized_keys: tuple[str, ...]) -> None:
        self._world.spawn(self._fleet.rebuild(address, name, authorized_keys=authorized_keys))

    def machine_stopped(self, address: str) -> None:
        self._world.spawn(self._fleet.power_off(address))

    def machine_gone(self, address: str) -> None:
        self._world.spawn(self._fleet.stop_node(address))
