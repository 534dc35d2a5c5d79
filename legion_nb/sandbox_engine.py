"""``await legion_nb.sandbox()``: an unlocked engine wired to an in-process sandbox cloud.

Why: a notebook (or a test, or a benchmark) should be able to try the whole engine - plan, diff,
materialize, watch the panels - without an account at any provider and without any traffic leaving
the machine. This starts the three provider emulators on loopback (GUIDE §3), creates a throwaway
encrypted state in a temporary directory, stores the emulators' credentials in it, and returns the
unlocked engine. ``await engine.aclose()`` also stops the sandbox and removes the directory.

The sandbox is "the outside world": the engine talks to it over real HTTP exactly as it would talk
to a provider, so nothing here reaches into the engine but its public methods.

With ``nodes=True`` every running Hetzner, Scaleway or OVH server also gets a simulated node on its
loopback address (real SSH and an mTLS admin API, :mod:`legion_nb.emulators.nodes`), and the engine is wired
with node deployment: materialize then installs each cluster node through every deployment phase
and reconciles NBDE, exactly as against real machines (only the ports differ: the sandbox's nodes
share one SSH and one admin port on their own addresses, handed to the engine here).

:func:`create_unplanned_server` plays the rest of the world: it creates a server at a sandbox provider
behind the engine's back, the way a teammate in the provider's console or another tool would, so that
a notebook can show what Legion reports about resources it never planned (orphans, cost cleanup).
:func:`sandbox_holdings` plays the provider's console: what a sandbox provider holds right now, read
over the provider's own API, so a notebook can compare the engine's views with the ground truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import tempfile
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from legion_nb.emulators.cloud import SandboxCloud
    from legion_nb.emulators.nodes import NodeFleet
    from legion_nb.engine.observe.scheduler import ObservationSettings
    from legion_nb.engine.runtime import Engine
    from legion_nb.engine.session import SessionSettings
    from legion_nb.providers.broker import BrokerPolicy
    from legion_nb.providers.contract import ProviderAdapter
    from legion_nb.providers.records import DnsRecord, Firewall, Server, SshKey

__all__ = [
    "NODE_HISTORY_HOURS",
    "SANDBOX_LINK_SUFFIX",
    "SANDBOX_PROVIDERS",
    "STREAM_PROBE_SECONDS",
    "NodeLink",
    "SandboxHoldings",
    "SandboxLinkWatch",
    "create_unplanned_server",
    "free_port",
    "linked_settings",
    "node_fleet",
    "node_settings",
    "read_sandbox_link",
    "sandbox",
    "sandbox_cloud",
    "sandbox_holdings",
    "sandbox_link_path",
    "sandbox_policy",
    "write_sandbox_link",
]

SANDBOX_PROVIDERS: tuple[str, ...] = ("hetzner", "scaleway", "ovh")

_Item = TypeVar("_Item")

_CLOUDS: weakref.WeakKeyDictionary[Engine, SandboxCloud] = weakref.WeakKeyDictionary()


def sandbox_policy(*, poll_seconds: float = 0.05) -> BrokerPolicy:
    """Broker pacing for emulated providers: their actions take fractions of a second, so polling
    every second (the real-cloud default) would only add idle time."""
    from legion_nb.providers.broker import BrokerPolicy, PollPolicy, RetryPolicy  # noqa: PLC0415

    return BrokerPolicy(
        poll=PollPolicy(interval=poll_seconds, backoff=1.5, max_interval=max(poll_seconds, 0.5), timeout=120),
        retry=RetryPolicy(attempts=5, base_delay=0.02, max_delay=0.5, max_rate_limit_wait=2.0),
    )


async def sandbox(
    *,
    seed: int | None = None,
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    action_seconds: float | None = None,
    boot_seconds: float | None = None,
    providers: tuple[str, ...] = SANDBOX_PROVIDERS,
    policy: BrokerPolicy | None = None,
    state_dir: str | Path | None = None,
    nodes: bool = False,
    node_seconds: float = 0.02,
    history_days: int = 0,
    observation: ObservationSettings | None = None,
) -> Engine:
    """Start a sandbox cloud and return an unlocked engine with its credentials stored.

    ``latency_ms`` is added to every emulated request; ``fault_rate`` is the fraction of API calls
    that fail (429, 5xx, or committed and then dropped); ``action_seconds``/``boot_seconds`` set how
    long emulated provider work takes; ``providers`` are the emulators whose credentials are stored.
    ``state_dir`` keeps the state there instead of a temporary directory (it is then not removed).
    Reach the cloud itself (suspend a provider, inspect an emulator) with :func:`sandbox_cloud`.
    ``nodes`` boots simulated nodes and wires node deployment (module notes); ``node_seconds`` is how
    long each simulated install step (kexec, OS install, reboot) takes. ``history_days`` gives the
    accounts that many days of back-dated billing history (servers that ran and were deleted).
    ``observation`` sets the observation scheduler (intervals, concerns; tests pass short ones).
    The simulated nodes start with about a day of back-dated metrics and journal.
    """
    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415
    from legion_nb.emulators.faults import FaultPlan  # noqa: PLC0415
    from legion_nb.emulators.world import SandboxWorld, Timing  # noqa: PLC0415
    from legion_nb.engine.runtime import create_engine  # noqa: PLC0415
    from legion_nb.engine.session import SessionSettings  # noqa: PLC0415

    unknown = sorted(set(providers) - set(SANDBOX_PROVIDERS))
    if unknown:
        from legion_nb.errors import UsageError  # noqa: PLC0415

        raise UsageError(f"no sandbox for {', '.join(unknown)}: choose from {', '.join(SANDBOX_PROVIDERS)}")
    chosen_seed = secrets.randbits(32) if seed is None else seed
    timing = Timing(latency_ms=latency_ms)
    if action_seconds is not None:
        timing.action_seconds = action_seconds
    if boot_seconds is not None:
        timing.boot_seconds = boot_seconds
    if history_days < 0:
        from legion_nb.errors import UsageError  # noqa: PLC0415

        raise UsageError(f"history_days {history_days} is negative; pass 0 or more days")
    world = SandboxWorld(
        chosen_seed,
        timing=timing,
        faults=FaultPlan(rate=fault_rate, seed=chosen_seed),
        history_days=history_days,
    )
    settings = SessionSettings(broker=policy or sandbox_policy())
    if observation is not None:
        settings = replace(settings, observation=observation)
    fleet = None
    if nodes:
        fleet, link = node_fleet(node_seconds, seed=chosen_seed)
        settings = link.settings(settings)
    cloud = SandboxCloud(world, nodes=fleet)
    await cloud.start()
    owned_dir = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="legion-sandbox-")) if state_dir is None else Path(state_dir)
    engine = create_engine(directory / "sandbox.legion", settings)

    async def close_cloud() -> None:
        await cloud.aclose()
        if owned_dir:
            shutil.rmtree(directory, ignore_errors=True)

    engine.at_close(close_cloud)
    try:
        # A throwaway password: the state lives only as long as this engine and is never reopened.
        await engine.bootstrap(secrets.token_urlsafe(24))
        for name, block in cloud.endpoints().items():
            if name not in providers:
                continue
            fields = {key: value for key, value in block.items() if key != "url"}
            await engine.credentials_set(name, fields, endpoint=block["url"])
    except BaseException:
        await engine.aclose()
        raise
    _CLOUDS[engine] = cloud
    return engine


NODE_HISTORY_HOURS = 26.0
"""Back-dated metrics and journal every sandbox node starts with: a day and then some to explore."""

STREAM_PROBE_SECONDS = 1.0
"""How often a sandbox engine probes its satellites' streams (and how long one probe may take)."""


@dataclass(frozen=True, slots=True)
class NodeLink:
    """How an engine reaches a sandbox's simulated nodes: the SSH, admin and satellite Sender ports
    they share on their own loopback addresses, how long their install steps take, and the stream
    receiver the sandbox runs (``tcp://...``; empty until it started). Ports and an address only:
    nothing here is a secret, so it may sit in a file beside the state."""

    ssh_port: int
    admin_port: int
    sender_port: int
    step_seconds: float
    receiver: str = ""

    def settings(self, settings: SessionSettings) -> SessionSettings:
        """``settings`` that reach these nodes: node deployment and terminals on their ports,
        satellites' Sender API on theirs, streams probed every :data:`STREAM_PROBE_SECONDS`."""
        reached = node_settings(
            self.ssh_port, self.admin_port, self.step_seconds, settings, sender_port=self.sender_port
        )
        streams = replace(
            reached.streams,
            sender_port=self.sender_port,
            probe_interval=STREAM_PROBE_SECONDS,
            timeout=STREAM_PROBE_SECONDS,
        )
        return replace(reached, streams=streams)

    def to_json(self) -> dict[str, object]:
        return {
            "ssh_port": self.ssh_port,
            "admin_port": self.admin_port,
            "sender_port": self.sender_port,
            "step_seconds": self.step_seconds,
            "receiver": self.receiver,
        }


def node_fleet(
    step_seconds: float, *, seed: int, history_hours: float | None = None, page_limit: int | None = None
) -> tuple[NodeFleet, NodeLink]:
    """Simulated nodes on free loopback ports (with ``history_hours`` of history, by default
    :data:`NODE_HISTORY_HOURS`; admin API pages of at most ``page_limit`` lines or sampling steps
    when given), and the :class:`NodeLink` that reaches them: one recipe for the in-process sandbox
    and ``legion sandbox serve``, so an engine behaves the same behind either."""
    from legion_nb.emulators.nodes import NodeFleet, NodeTiming  # noqa: PLC0415

    link = NodeLink(free_port(), free_port(), free_port(), step_seconds)
    timing = NodeTiming(kexec=step_seconds, install=step_seconds, reboot=step_seconds)
    fleet = NodeFleet(
        timing=timing,
        ssh_port=link.ssh_port,
        admin_port=link.admin_port,
        sender_port=link.sender_port,
        seed=seed,
        history_hours=NODE_HISTORY_HOURS if history_hours is None else history_hours,
        page_limit=page_limit,
    )
    return fleet, link


def node_settings(
    ssh_port: int,
    admin_port: int,
    step_seconds: float,
    settings: SessionSettings,
    *,
    sender_port: int | None = None,
) -> SessionSettings:
    """``settings`` that reach simulated nodes on their shared SSH and admin ports (and satellites
    on their Sender port): node deployment with sandbox-short waits, and terminals on the nodes'
    SSH port."""
    from legion_nb.engine.deployment.node_channel import NodeAccess, ReadinessPolicy, SshNodeConnector  # noqa: PLC0415
    from legion_nb.engine.deployment.runtime import DeploymentSettings  # noqa: PLC0415
    from legion_nb.engine.node_terminals import TerminalSettings  # noqa: PLC0415
    from legion_nb.engine.ssh import ReconnectPolicy, SshOptions  # noqa: PLC0415

    pause = max(step_seconds, 0.02)
    access = NodeAccess(
        ssh_port=ssh_port, admin_port=admin_port, readiness=ReadinessPolicy(attempts=500, delay=pause)
    )
    if sender_port is not None:
        access = replace(access, sender_port=sender_port)
    connector = SshNodeConnector(
        reconnect=ReconnectPolicy(attempts=500, initial_delay=pause, max_delay=pause, factor=1.0),
        options=SshOptions(connect_timeout=5.0, command_timeout=30.0),
    )
    deployment = DeploymentSettings(access=access, connector=connector)
    return replace(settings, deployment=deployment, terminals=TerminalSettings(ssh_port=ssh_port))


# -- the link between a served sandbox and a state ------------------------------------------------

SANDBOX_LINK_SUFFIX = ".sandbox.json"
"""``legion sandbox serve --store-credentials`` leaves ``<state>.sandbox.json`` beside the state."""


def sandbox_link_path(state_path: Path) -> Path:
    """Where a served sandbox tells CLI engines of ``state_path`` how to reach its simulated nodes."""
    return state_path.with_name(state_path.name + SANDBOX_LINK_SUFFIX)


def write_sandbox_link(state_path: Path, link: NodeLink) -> Path:
    """Record how to reach the served nodes for other processes using ``state_path`` (no secret).

    The simulated nodes share one SSH, one admin and one Sender port on their own loopback
    addresses, ports a real node never uses; an engine opened on this state by another ``legion``
    process reads them with :func:`linked_settings`, so that materialize deploys those nodes and
    satellites, ``legion terminal`` reaches them, ``legion stream`` drives the satellites' senders
    and knows the sandbox's stream receiver, exactly as the in-process :func:`sandbox` does.
    ``legion sandbox serve`` removes the file when it stops.
    """
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415

    path = sandbox_link_path(state_path)
    # Written beside and renamed into place: a reader (a daemon following the link) never sees a
    # half-written file, and the new inode tells it the link changed.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(link.to_json()) + "\n")
    os.replace(partial, path)
    return path


def read_sandbox_link(state_path: Path) -> NodeLink | None:
    """The :class:`NodeLink` a served sandbox left beside ``state_path``; None when there is none.
    Raises :class:`~legion_nb.errors.UsageError` for a file that is no such link."""
    import json  # noqa: PLC0415

    path = sandbox_link_path(state_path)
    try:
        body = json.loads(path.read_text())
        link = NodeLink(
            ssh_port=int(body["ssh_port"]),
            admin_port=int(body["admin_port"]),
            sender_port=int(body["sender_port"]),
            step_seconds=float(body.get("step_seconds", 0.02)),
            receiver=str(body.get("receiver", "")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        from legion_nb.errors import UsageError  # noqa: PLC0415

        raise UsageError(
            f"{path} is not a sandbox link ({type(exc).__name__}: {exc}); remove it or restart "
            "legion sandbox serve --store-credentials"
        ) from exc
    return link


def linked_settings(state_path: Path) -> SessionSettings | None:
    """Session settings for a state a served sandbox is linked to (see :func:`write_sandbox_link`):
    sandbox pacing and its nodes' ports; None when no sandbox is linked (the real-cloud defaults)."""
    from legion_nb.engine.session import SessionSettings  # noqa: PLC0415

    link = read_sandbox_link(state_path)
    return None if link is None else link.settings(SessionSettings(broker=sandbox_policy()))


class SandboxLinkWatch:
    """Follows the sandbox link of one state for an engine that outlives it (the daemon).

    A daemon may start before ``legion sandbox serve --store-credentials`` links its state, or
    outlive a sandbox that comes back on new ports. :meth:`current` reads the link at the start;
    :meth:`follow`, awaited when the engine is next needed (before each daemon call), compares the
    link file's identity (inode, modification time, size) with the one last read - one ``stat``,
    no polling - and on a change (created, rewritten or removed) reads it again and hands the new
    settings (None: no sandbox is linked) to ``apply``.
    """

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.path = sandbox_link_path(state_path)
        self._seen: tuple[int, int, int] | None = None
        self._lock = asyncio.Lock()

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return (status.st_ino, status.st_mtime_ns, status.st_size)

    def current(self) -> SessionSettings | None:
        """The settings of the link as it is now (:func:`linked_settings`), remembered as read."""
        identity = self._identity()
        settings = linked_settings(self.state_path)
        self._seen = identity
        return settings

    def changed(self) -> bool:
        """Whether the link was created, rewritten or removed since it was last read."""
        return self._identity() != self._seen

    async def follow(self, apply: Callable[[SessionSettings | None], Awaitable[bool]]) -> None:
        """When the link changed, ``await apply(settings)``; the change counts as followed only when
        ``apply`` returns True (False: it could not take them now, so the next call tries again).

        Raises :class:`~legion_nb.errors.UsageError` when the link is not a sandbox link (it names
        the file and what to do); the next call reads it again.
        """
        if not self.changed():
            return
        async with self._lock:  # concurrent calls: one reads and applies, the others then see it done
            identity = self._identity()
            if identity == self._seen:
                return
            if await apply(linked_settings(self.state_path)):
                self._seen = identity


def free_port() -> int:
    """A TCP port free on loopback now (the simulated nodes bind it on their own addresses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sandbox_cloud(engine: Engine) -> SandboxCloud:
    """The sandbox cloud behind an engine made by :func:`sandbox` (``KeyError`` for other engines)."""
    return _CLOUDS[engine]


_UNPLANNED_SERVER: dict[str, tuple[str, str, str]] = {
    "hetzner": ("cx22", "fsn1", "debian-12"),
    "scaleway": ("DEV1-S", "fr-par-1", "debian_bookworm"),
    "ovh": ("d2-2", "GRA11", "Debian 12"),
}
"""Server type, location and image of a server made behind Legion's back: each sandbox's smallest."""


async def create_unplanned_server(
    engine: Engine, name: str, *, provider: str = "hetzner", legion_labels: bool = True
) -> Server:
    """Create server ``name`` at the sandbox's ``provider`` directly, as someone else would.

    The engine neither plans nor tracks it: the request goes straight to the emulator with the
    sandbox's credentials, the way a teammate in the provider's console or another tool makes a
    server. ``legion_labels`` copies Legion's ownership labels (with a fresh Legion id), so the
    server reads as Legion's yet is planned by nobody - an orphan that cost cleanup may delete;
    without them it is someone else's, reported but never deleted. Returns the provider's record of
    the new server (it may still be starting).

    Raises :class:`~legion_nb.errors.UsageError` for an engine that :func:`sandbox` did not make or a
    provider the sandbox does not emulate, and the provider errors the creation itself may raise.
    """
    from legion_nb.providers.ownership import OwnershipLabels  # noqa: PLC0415
    from legion_nb.providers.records import ServerSpec  # noqa: PLC0415

    async with _provider_console(engine, provider) as adapter:
        server_type, location, image = _UNPLANNED_SERVER[provider]
        labels = OwnershipLabels.new().as_labels() if legion_labels else {}
        spec = ServerSpec(name=name, server_type=server_type, location=location, image=image, labels=labels)
        return (await adapter.create_server(spec)).server


@dataclass(frozen=True)
class SandboxHoldings:
    """What one sandbox provider holds at one moment, as its own API lists it (not Legion's views).

    ``servers`` are sorted by name; ``zones`` maps each DNS zone's name to its record sets.
    """

    provider: str
    servers: tuple[Server, ...]
    zones: dict[str, tuple[DnsRecord, ...]]
    firewalls: tuple[Firewall, ...]
    ssh_keys: tuple[SshKey, ...]

    def server_summary(self) -> dict[str, str]:
        """Each server's name -> ``"<status> <ipv4>"``: a one-line look at the fleet."""
        return {server.name: f"{server.status} {server.ipv4}" for server in self.servers}

    def record_values(self, zone: str, name: str, type: str = "A") -> list[str]:
        """The sorted values of record set ``name``/``type`` in ``zone`` (empty when it is absent)."""
        for record in self.zones.get(zone, ()):
            if record.name == name and record.type == type:
                return sorted(record.values)
        return []


async def sandbox_holdings(engine: Engine, provider: str = "hetzner") -> SandboxHoldings:
    """What the sandbox's ``provider`` holds right now: servers, DNS zones, firewalls and SSH keys.

    The sandbox's stand-in for the provider's console: it lists everything in the emulated project
    over the provider's API with the sandbox's credentials, whoever made it, and never goes through
    the engine - so it is the ground truth a notebook compares planned, tracked and observed with.

    Raises :class:`~legion_nb.errors.UsageError` for an engine that :func:`sandbox` did not make or a
    provider the sandbox does not emulate, and the provider errors a listing may raise.
    """
    async with _provider_console(engine, provider) as adapter:
        servers = sorted(await adapter.list_servers(), key=lambda server: server.name)
        zone_names = [zone.name for zone in await _listed(adapter.list_zones())]
        zones = {name: tuple(await adapter.list_records(name)) for name in zone_names}
        firewalls = tuple(await _listed(adapter.list_firewalls()))
        ssh_keys = tuple(await adapter.list_ssh_keys())
    return SandboxHoldings(provider, tuple(servers), zones, firewalls, ssh_keys)


async def _listed(listing: Awaitable[list[_Item]]) -> list[_Item]:
    """A listing's items, or none where the provider lacks the capability (OVH has no firewalls)."""
    from legion_nb.errors import CapabilityMissingError  # noqa: PLC0415

    try:
        return await listing
    except CapabilityMissingError:
        return []


@contextlib.asynccontextmanager
async def _provider_console(engine: Engine, provider: str) -> AsyncIterator[ProviderAdapter]:
    """A provider adapter on the sandbox's ``provider`` with its credentials, bypassing the engine."""
    from legion_nb.engine.providers_service import adapter_credentials  # noqa: PLC0415
    from legion_nb.engine.state.model import StoredCredentials  # noqa: PLC0415
    from legion_nb.engine.state.validation import validate_provider  # noqa: PLC0415
    from legion_nb.errors import UsageError  # noqa: PLC0415
    from legion_nb.providers import registry  # noqa: PLC0415

    cloud = _CLOUDS.get(engine)
    if cloud is None:
        raise UsageError("this engine has no sandbox cloud: create one with 'await legion_nb.sandbox()'")
    if provider not in _UNPLANNED_SERVER:
        raise UsageError(f"no sandbox for {provider}: choose from {', '.join(SANDBOX_PROVIDERS)}")
    block = cloud.endpoints()[provider]
    fields = {key: value for key, value in block.items() if key != "url"}
    credentials = adapter_credentials(StoredCredentials(validate_provider(provider), block["url"], fields))
    async with registry.connect(credentials) as adapter:
        yield adapter
