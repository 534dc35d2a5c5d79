"""What an installed node is handed: its TLS certificates and its Tribes peer-sync configuration.

Both compare what the node holds with what it should hold and write only the difference, so the
phases can run again at any time (a resume, a reconfigure, a cluster growing by one node).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from legion_nb.engine.deployment.node_channel import (
    TLS_CA_PATH,
    TLS_CERT_PATH,
    TLS_KEY_PATH,
    TRIBES_CONFIG_PATH,
    NodeChannel,
    read_readiness,
    run_step,
)
from legion_nb.engine.deployment.node_reach import NodeReach, host_of
from legion_nb.engine.deployment.phases import PhaseContext
from legion_nb.engine.deployment.security import sync_handoff
from legion_nb.engine.ssh import NodeUnreachableError

__all__ = ["NodeConfiguration"]

logger = logging.getLogger(__name__)

_SYNC_FIELDS = ("cluster", "node", "peers", "allow", "ca_certificate", "certificate")


class NodeConfiguration:
    """The ``certificates``, ``tribes_config`` and ``cluster_reconcile`` phases."""

    def __init__(self, reach: NodeReach) -> None:
        self._reach = reach
        self._state = reach.state

    async def certificates(self, ctx: PhaseContext) -> None:
        node = ctx.node
        security = await self._reach.certificate_for_addresses(node)
        cluster = self._reach.cluster_security(self._reach.tracked(node).cluster)
        wanted = {
            TLS_CA_PATH: cluster.authority.certificate_pem,
            TLS_CERT_PATH: security.certificate.certificate_pem,
            TLS_KEY_PATH: security.certificate.private_key_pem,
        }
        channel = await self._reach.open_installed(node)
        try:
            report = await read_readiness(channel)
            held = await channel.run(f"cat {TLS_CERT_PATH}")
            if report.get("checks", {}).get("admin_api") and held.ok and held.stdout == wanted[TLS_CERT_PATH]:
                return
            for path, content in wanted.items():
                await run_step(channel, node, f"legion-node write-file {path} 0600", content)
            await ctx.checkpoint("staged")
            await run_step(channel, node, "legion-node activate-certs")
        finally:
            await channel.aclose()

    def _handoff(self, node: str) -> dict[str, Any]:
        record = self._reach.tracked(node)
        state = self._state.state
        peers = {
            name: host_of(server)
            for name, server in state.tracked.servers.items()
            if server.cluster == record.cluster and server.role == "cluster" and host_of(server)
        }
        cluster = self._reach.cluster_security(record.cluster)
        return sync_handoff(cluster, self._reach.node_security(node), peers)

    async def _configure(self, channel: NodeChannel, node: str) -> bool:
        """Hand ``node`` its sync configuration unless it already holds the same; True if it changed."""
        handoff = self._handoff(node)
        held = await channel.run(f"cat {TRIBES_CONFIG_PATH}")
        if held.ok and _same_sync(held.stdout, handoff):
            return False
        await run_step(channel, node, "legion-node configure-tribes", json.dumps(handoff, sort_keys=True))
        return True

    async def tribes_config(self, ctx: PhaseContext) -> None:
        channel = await self._reach.open_installed(ctx.node)
        try:
            await self._configure(channel, ctx.node)
        finally:
            await channel.aclose()

    async def cluster_reconcile(self, ctx: PhaseContext) -> None:
        """Bring the deployed peers' sync configuration up to date with this node. A peer that is
        down is skipped (logged): the membership repair reconfigures it once it is back."""
        state = self._state.state
        record = self._reach.tracked(ctx.node)
        for name, server in sorted(state.tracked.servers.items()):
            execution = server.execution
            if name == ctx.node or server.cluster != record.cluster or server.role != "cluster":
                continue
            if execution is None or execution.status != "succeeded" or not host_of(server):
                continue
            try:
                channel = await self._reach.connector.open(self._reach.admin_target(name), retry=False)
            except NodeUnreachableError as exc:
                logger.warning("cluster reconcile for %s skipped peer %s: %s", ctx.node, name, exc)
                continue
            try:
                await self._configure(channel, name)
            finally:
                await channel.aclose()


def _same_sync(held: str, wanted: Mapping[str, Any]) -> bool:
    try:
        current = json.loads(held)
    except ValueError:
        return False
    return isinstance(current, dict) and all(current.get(k) == wanted.get(k) for k in _SYNC_FIELDS)
