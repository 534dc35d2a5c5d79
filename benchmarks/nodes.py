"""What node work costs: material generation, pinned SSH, commands, the install path, mTLS calls.

Everything runs against simulated nodes on 127.x addresses (real asyncssh servers, real TLS), so
the figures are the protocol and crypto cost on this machine, not network latency:

* generating a cluster's security (CA + operator cert) and one node's material;
* a pinned SSH connect (key exchange + public-key login) and a command round trip (p50/p99);
* the whole install path (kexec, install, reboot with host-key swap, certificates, Tribes config)
  with the simulated step durations set to zero, i.e. the overhead Legion's side adds;
* an mTLS admin API call on a kept-alive connection, and a fresh-handshake one.

    .venv/bin/python benchmarks/nodes.py [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from legion_nb.emulators.nodes import NodeTiming, SimulatedNode
from legion_nb.engine.deployment.security import ClusterSecurity, SshKeyPair, sync_handoff
from legion_nb.engine.ssh import ReconnectPolicy, SshConnection, SshTarget, connect, connect_with_retry

RETRY = ReconnectPolicy(attempts=1000, initial_delay=0.005, max_delay=0.005, factor=1.0)


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{label:<44} p50 {statistics.median(ordered) * 1000:8.2f} ms   p99 {p99 * 1000:8.2f} ms")


async def timed(runs: int, fn: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return samples


async def reboot_step(conn: SshConnection, command: str) -> None:
    await conn.check(command)
    await conn.wait_closed()


async def install(node: SimulatedNode, root: SshTarget, cluster: ClusterSecurity) -> SshTarget:
    security = cluster.provision_node(node.hostname, ip_addresses=[node.address])
    async with await connect(root) as conn:
        await reboot_step(conn, "legion-node kexec")
    async with await connect_with_retry(root, RETRY) as conn:
        await conn.check(
            "legion-node write-file /etc/ssh/ssh_host_ed25519_key",
            input=security.identity.host_key.private_openssh,
        )
        await conn.check(
            "legion-node write-file /etc/legion/admin_authorized_keys",
            input=security.admin.authorized_keys_line(),
        )
        await conn.check("legion-node install")
        await reboot_step(conn, "legion-node reboot")
    admin = SshTarget(
        node.hostname,
        node.address,
        security.pinned_host_key,
        security.admin.ssh_key.private_openssh,
        port=node.ssh_port,
        username="legion-admin",
    )
    async with await connect_with_retry(admin, RETRY) as conn:
        for path, text in (
            ("/etc/tribes/tls/ca.pem", cluster.authority.certificate_pem),
            ("/etc/tribes/tls/node.pem", security.certificate.certificate_pem),
            ("/etc/tribes/tls/node.key", security.certificate.private_key_pem),
        ):
            await conn.check(f"legion-node write-file {path}", input=text)
        await conn.check("legion-node activate-certs")
        handoff = sync_handoff(cluster, security, {node.hostname: node.address})
        await conn.check("legion-node configure-tribes", input=json.dumps(handoff))
        await conn.check("legion-node readiness")
    return admin


async def main(runs: int) -> None:
    report("ClusterSecurity.create (CA + operator)", await timed(runs, _async(ClusterSecurity.create, "c")))
    cluster = ClusterSecurity.create("bench")
    report(
        "provision_node (host key, cert, admin)",
        await timed(runs, _async(cluster.provision_node, "n", ip_addresses=["127.90.0.2"])),
    )

    client = SshKeyPair.generate()
    zero = NodeTiming(kexec=0, install=0, reboot=0, activate_certs=0, configure_tribes=0, tribes_start=0)
    async with SimulatedNode(
        "127.90.0.2", hostname="bench", authorized_keys=[client.public_openssh], timing=zero
    ) as node:
        root = SshTarget(
            "bench", node.address, node.host_public_key, client.private_openssh, port=node.ssh_port
        )

        async def connect_close() -> None:
            conn = await connect(root)
            await conn.aclose()

        report("pinned SSH connect + login + close", await timed(runs, connect_close))
        async with await connect(root) as conn:
            report("command round trip (hostname)", await timed(runs * 4, lambda: conn.run("hostname")))

        installs = []
        for i in range(max(3, runs // 10)):
            async with SimulatedNode(
                f"127.90.1.{i + 2}", hostname=f"i{i}", authorized_keys=[client.public_openssh], timing=zero
            ) as fresh:
                target = dataclasses.replace(
                    root,
                    node=f"i{i}",
                    host=fresh.address,
                    port=fresh.ssh_port,
                    pinned_host_key=fresh.host_public_key,
                )
                start = time.perf_counter()
                await install(fresh, target, cluster)
                installs.append(time.perf_counter() - start)
                if i == 0:
                    await mtls_figures(fresh, cluster, runs)
        report("whole install path, zero step durations", installs)


async def mtls_figures(node: SimulatedNode, cluster: ClusterSecurity, runs: int) -> None:
    url = f"https://{node.address}:{node.admin_port}/v1/health"
    context = cluster.operator_ssl_context()
    async with httpx.AsyncClient(verify=context) as kept:
        await kept.get(url)
        report("mTLS admin call, kept-alive connection", await timed(runs * 4, lambda: kept.get(url)))

    async def fresh_call() -> None:
        async with httpx.AsyncClient(verify=context) as client:
            await client.get(url)

    report("mTLS admin call, fresh handshake", await timed(runs, fresh_call))


def _async(fn: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], Awaitable[object]]:
    async def call() -> object:
        return fn(*args, **kwargs)

    return call


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
