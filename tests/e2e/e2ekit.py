"""Helpers for the end-to-end tests: plan a cluster, read the emulator's truth in comparable form."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.hetzner import state_of
from legion_nb.emulators.hetzner.project import HetznerProject
from legion_nb.emulators.nodes.fleet import NodeFleet
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.engine.state.model import LegionState, decode_state
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.sandbox_engine import NodeLink, node_fleet, sandbox_cloud, sandbox_policy, write_sandbox_link

PASSWORD = "e2e password 1"
EngineFactory = Callable[[], Awaitable[Engine]]


def fleet_of(engine: Engine) -> NodeFleet:
    """The simulated nodes behind a ``legion_nb.sandbox(nodes=True)`` engine, receiver started."""
    fleet = sandbox_cloud(engine).nodes
    assert fleet is not None and fleet.receiver is not None
    return fleet


def hetzner(cloud: SandboxCloud) -> HetznerProject:
    return state_of(cloud.emulator("hetzner"))


async def plan_cluster(engine: Engine, names: tuple[str, ...] = ("web-1", "web-2", "web-3")) -> None:
    """A 3-server cluster at Hetzner with type/location/image left to the catalog policy, a zone,
    and a DNS host pointing at every server."""
    for name in names:
        await engine.plan_upsert_server(name=name, provider="hetzner")
    await engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=list(names))


def provider_view(project: HetznerProject) -> dict[str, object]:
    """What the emulator holds, in comparable form: servers (IPv4, and IPv6 as the adapter reports
    it: the ``::1`` of the server's /64), the 4413 rule, firewall targets, A and AAAA records."""
    servers = {s.name: s.ipv4 for s in project.servers.values()}
    ipv6 = {
        s.name: str(ipaddress.IPv6Network(project.primary_ips[s.ipv6_id].ip).network_address + 1)
        for s in project.servers.values()
        if s.ipv6_id is not None
    }
    by_id = {s.id: s.name for s in project.servers.values()}
    firewalls = {}
    for firewall in project.firewalls.values():
        sync = [r for r in firewall.rules if r.get("port") == "4413"]
        firewalls[firewall.name] = {
            "sync_sources": sorted(s for r in sync for s in r["source_ips"]),
            "ports": sorted(str(r.get("port")) for r in firewall.rules),
            "applied": sorted(by_id.get(i, str(i)) for i in firewall.servers),
        }
    records = {}
    for zone in project.zones.values():
        for (name, rtype), rrset in zone.rrsets.items():
            if rtype in ("A", "AAAA"):
                records[f"{name}.{zone.name} {rtype}"] = sorted(r["value"] for r in rrset.records)
    return {"servers": servers, "ipv6": ipv6, "firewalls": firewalls, "records": records}


def _addresses(view: dict[str, object], key: str) -> dict[str, str]:
    found = view[key]
    assert isinstance(found, dict)
    return found


def peer_sources(view: dict[str, object]) -> list[str]:
    """The 4413 sources a firewall over every server in ``view`` holds: each IPv4 /32 and IPv6 /128."""
    v4 = [f"{ip}/32" for ip in _addresses(view, "servers").values()]
    return sorted(v4 + [f"{ip}/128" for ip in _addresses(view, "ipv6").values()])


def host_records(view: dict[str, object], host: str = "www.example.org") -> dict[str, list[str]]:
    """The A and AAAA RRsets of ``host`` when it points at every server in ``view``."""
    servers, ipv6 = _addresses(view, "servers"), _addresses(view, "ipv6")
    assert sorted(ipv6) == sorted(servers), "every Hetzner server has an IPv6 /64"
    return {f"{host} A": sorted(servers.values()), f"{host} AAAA": sorted(ipv6.values())}


@dataclass
class LinkedSandbox:
    """A sandbox cloud with simulated nodes served by this process, and the link a state needs so
    that ``legion`` processes reach the same nodes (as ``legion sandbox serve`` links it)."""

    cloud: SandboxCloud
    fleet: NodeFleet
    link: NodeLink


@contextlib.asynccontextmanager
async def linked_sandbox(seed: int, node_seconds: float = 0.02) -> AsyncIterator[LinkedSandbox]:
    timing = Timing(action_seconds=0.02, boot_seconds=0.02)
    world = SandboxWorld(seed, timing=timing, faults=FaultPlan(rate=0.0, seed=seed))
    fleet, link = node_fleet(node_seconds, seed=seed)
    async with SandboxCloud(world, nodes=fleet) as cloud:
        yield LinkedSandbox(cloud, fleet, link)


@contextlib.asynccontextmanager
async def linked_engines(
    sandbox: LinkedSandbox, path: Path, password: str, first: Callable[[Engine], Awaitable[None]]
) -> AsyncIterator[EngineFactory]:
    """Open engines on the one state at ``path``: the first call creates it, links it to the
    sandbox's nodes (so ``legion`` processes reach them too), stores the Hetzner credentials and
    runs ``first``; every later call unlocks it. Every engine opened is closed at the end."""
    settings = sandbox.link.settings(SessionSettings(broker=sandbox_policy()))
    opened: list[Engine] = []

    async def open_engine() -> Engine:
        engine = create_engine(path, settings)
        opened.append(engine)
        if engine.state_exists():
            await engine.unlock(password)
            return engine
        await engine.bootstrap(password)
        write_sandbox_link(path, sandbox.link)
        block = sandbox.cloud.endpoints()["hetzner"]
        await engine.credentials_set("hetzner", {"token": block["token"]}, endpoint=block["url"])
        await first(engine)
        return engine

    try:
        yield open_engine
    finally:
        for engine in opened:
            await engine.aclose()


SPAWNED: list[asyncio.subprocess.Process] = []
"""Every ``legion`` process a test started; the e2e conftest reaps them before the test's loop closes."""


async def legion_process(state: Path, password: str, *args: str) -> asyncio.subprocess.Process:
    """A ``legion`` process on ``state``; the test's loop keeps serving the sandbox while it runs."""
    env = {**os.environ, "LEGION_STATE": str(state), "LEGION_PASSWORD": password}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "legion_nb",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    SPAWNED.append(process)
    return process


async def reap_spawned() -> None:
    """Kill what a failed test left running and drain every pipe on the loop that owns it.

    A process whose transport outlives its loop raises "Event loop is closed" from ``__del__``, and
    pytest blames whichever later test the garbage collector happens to run in.
    """
    while SPAWNED:
        process = SPAWNED.pop()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.communicate()


async def finished(process: asyncio.subprocess.Process) -> str:
    """The standard output of a ``legion`` process that must succeed."""
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, (out.decode(), err.decode())
    return out.decode()


async def durable_state(path: Path, password: str) -> LegionState:
    """The state on disk as the last process left it (read only: no engine, no session)."""
    store, payload = await SecureStateStore.unlock(path, password)
    store.close()
    return decode_state(payload)
