"""A satellite's short setup path: SSH bootstrap, the Sender service, its HTTPS health.

A satellite keeps its provider image: there is no installer, no OS install, no Tribes and no NBDE,
so Legion cannot stage a host key of its own. Instead the bootstrap phase pins
the host key the satellite presents **on first contact**, durably (``NodeSecurity.satellite_host_key``),
before it sends the satellite anything; every later session, a resume included, is pinned to that
key and a server presenting another one is refused (:class:`PinnedHostKeyRefusedError`) until the
operator re-pins it. Each phase is idempotent on the node (``legion-node satellite-bootstrap`` and
``legion-node satellite-setup`` leave what is already there), so a phase cut short is run again.

The Sender API starts and stops byte streams on request, so it is guarded like a node admin API:
the setup hands the Sender its cluster's CA, a node certificate naming the satellite's addresses
and its key (over the pinned SSH session only), and the one client name it may answer, Legion's
operator certificate; any other client fails the handshake or is refused.
"""

from __future__ import annotations

import json
from dataclasses import replace

from legion_nb.engine.deployment.identity import fingerprint
from legion_nb.engine.deployment.node_channel import NodeChannel, NodeNotReadyError, run_step
from legion_nb.engine.deployment.node_reach import NodeReach, PinnedHostKeyRefusedError, host_of
from legion_nb.engine.deployment.phases import PhaseContext, material_of
from legion_nb.engine.ssh import HostKeyMismatchError, SshTarget
from legion_nb.engine.state.edits import with_material
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.satellite import SatelliteError, SatelliteTrustError

__all__ = ["SatelliteSetup"]


class SatelliteSetup:
    """The ``satellite_bootstrap``, ``satellite_setup`` and ``satellite_health`` phases."""

    def __init__(self, reach: NodeReach) -> None:
        self._reach = reach

    async def bootstrap(self, ctx: PhaseContext) -> None:
        """Pin the presented host key (first contact only), then, as root on the image: Legion's
        admin user with the node's admin key, and the hostname."""
        pinned = await self._pinned_key(ctx.node)
        await ctx.checkpoint("pinned")
        security = self._reach.node_security(ctx.node)
        handoff = {
            "admin_user": security.admin.username,
            "authorized_key": security.admin.authorized_keys_line(),
            "hostname": ctx.node,
        }
        channel = await self._open(ctx.node, "root", pinned)
        try:
            await run_step(channel, ctx.node, "legion-node satellite-bootstrap", json.dumps(handoff))
        finally:
            await channel.aclose()

    async def setup(self, ctx: PhaseContext) -> None:
        """As Legion's admin user: install the Sender service with its configuration (port, mTLS
        material, the operator certificate's name as its only client) and start it."""
        security = await self._reach.certificate_for_addresses(ctx.node)
        cluster = self._reach.cluster_security(self._reach.tracked(ctx.node).cluster)
        config = {
            "node": ctx.node,
            "sender_port": self._reach.access.sender_port,
            "ca_certificate": cluster.authority.certificate_pem,
            "certificate": security.certificate.certificate_pem,
            "private_key": security.certificate.private_key_pem,
            "clients": [cluster.operator.common_name],
        }
        channel = await self._open(ctx.node, security.admin.username, security.satellite_host_key)
        try:
            await ctx.checkpoint("configuring")
            await run_step(channel, ctx.node, "legion-node satellite-setup", json.dumps(config))
        finally:
            await channel.aclose()

    async def health(self, ctx: PhaseContext) -> None:
        """Wait until the Sender API answers its health check over mTLS (a refused certificate is
        not waited out: it fails the phase at once)."""
        policy = self._reach.access.readiness
        client = self._reach.satellite_client(ctx.node)
        reason = "no answer yet"
        try:
            for attempt in range(policy.attempts):
                try:
                    await client.health()
                except SatelliteTrustError:
                    raise
                except SatelliteError as exc:
                    reason = exc.message
                else:
                    return
                if attempt + 1 < policy.attempts:
                    await self._reach.access.sleep(policy.delay)
        finally:
            await client.aclose()
        raise NodeNotReadyError(
            f"satellite {ctx.node} is not healthy after {policy.attempts} checks ({reason}); "
            "resume the operation once it settles"
        )

    async def _pinned_key(self, node: str) -> str:
        """The satellite's pinned host key; on first contact, the one it presents, stored first."""
        security = self._reach.node_security(node)
        if security.satellite_host_key:
            return security.satellite_host_key
        record = self._reach.tracked(node)
        presented = await self._reach.connector.scan(node, host_of(record), self._reach.access.ssh_port)

        def pin(state: LegionState) -> tuple[LegionState, None]:
            material = material_of(state, node)
            if material is None or material.security.get("satellite_host_key"):
                return state, None  # another writer pinned first: theirs stands
            security = {**material.security, "satellite_host_key": presented}
            return with_material(state, replace(material, security=security)), None

        await self._reach.state.mutate(pin, reason=f"satellite {node}: host key pinned on first contact")
        return self._reach.node_security(node).satellite_host_key

    async def _open(self, node: str, user: str, pinned: str) -> NodeChannel:
        record = self._reach.tracked(node)
        security = self._reach.node_security(node)
        target = SshTarget(
            node=node,
            host=host_of(record),
            port=self._reach.access.ssh_port,
            username=user,
            pinned_host_key=pinned,
            client_key=security.admin.ssh_key.private_openssh,
        )
        try:
            return await self._reach.connector.open(target, retry=True)
        except HostKeyMismatchError as exc:
            raise PinnedHostKeyRefusedError(node, fingerprint(pinned)) from exc
