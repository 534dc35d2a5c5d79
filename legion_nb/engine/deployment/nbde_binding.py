"""Binding a node's disk unlock (NBDE) to the policy its cluster calls for.

The policy is derived from the cluster's facts (:mod:`legion_nb.engine.cluster.nbde`), with every
Tang server probed over mTLS first: a node the state counts as serving Tang but that does not
answer now is nobody's peer this time. The binding is written only when the node's recorded one
differs from the target, and the state records what was bound once the node holds it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from typing import Any

from legion_nb.engine.cluster.nbde import (
    ClusterFacts,
    NodeFacts,
    NodeUnlock,
    cluster_facts,
    derive_nbde_policy,
    select_nbde_repairs,
)
from legion_nb.engine.deployment.node_channel import NBDE_BINDING_PATH, run_step
from legion_nb.engine.deployment.node_reach import NodeReach, host_of
from legion_nb.engine.deployment.phases import PhaseContext, material_of
from legion_nb.engine.state.edits import with_material
from legion_nb.engine.state.model import LegionState, NodeMaterial, NodeNbde, utcnow
from legion_nb.errors import NodeError

__all__ = ["NbdeBinding"]

logger = logging.getLogger(__name__)


class NbdeBinding:
    """The ``nbde_reconcile`` phase and the probed NBDE facts it derives its target from."""

    def __init__(self, reach: NodeReach) -> None:
        self._reach = reach
        self._state = reach.state

    async def tang_facts(
        self, state: LegionState, cluster: str, *, deploying: str | None = None
    ) -> ClusterFacts:
        """The cluster's NBDE facts with each Tang server probed: a node the state counts as serving
        Tang must also answer ``/tang/adv`` over mTLS now, or it is nobody's peer this time."""
        facts = cluster_facts(state, cluster, deploying=deploying)
        probed: list[NodeFacts] = []
        for node in facts.nodes:
            serving = node.tang
            if serving and node.name != deploying:
                async with self._reach.admin_client(node.name) as client:
                    serving = await client.tang_serving()
                if not serving:
                    logger.warning("NBDE: node %s does not serve Tang now; left out as a peer", node.name)
            probed.append(dataclasses.replace(node, tang=serving))
        return ClusterFacts.of(cluster, probed)

    async def nbde_reconcile(self, ctx: PhaseContext) -> None:
        """Bind the node's disk unlock to the derived policy, then record what was bound."""
        node = ctx.node
        record = self._reach.tracked(node)
        state = self._state.state
        policy = derive_nbde_policy(await self.tang_facts(state, record.cluster, deploying=node))
        target = policy.for_node(node)
        if target is None:
            return  # not a healthy cluster node: nothing to bind now
        material = material_of(state, node)
        current = material.nbde if material is not None else None
        repairs = [r for r in select_nbde_repairs(policy, {node: current}) if r.node == node]
        reasons = repairs[0].reasons if repairs else await self._binding_drift(node, target)
        if not reasons:
            return
        passphrase = current.recovery_passphrase if current and current.recovery_passphrase else _passphrase()
        binding = self._binding(target, passphrase)
        channel = await self._reach.open_installed(node)
        try:
            await run_step(
                channel, node, f"legion-node write-file {NBDE_BINDING_PATH} 0600", json.dumps(binding)
            )
        finally:
            await channel.aclose()
        await ctx.checkpoint("bound")
        applied = NodeNbde(
            mode=target.mode,
            local_boot_key=target.local_boot_key,
            tang_peers=target.peers,
            threshold=target.threshold,
            reconciled=utcnow(),
            recovery_passphrase=passphrase,
        )

        def store(state: LegionState) -> tuple[LegionState, None]:
            current = material_of(state, node) or NodeMaterial(node=node)
            return with_material(state, dataclasses.replace(current, nbde=applied)), None

        await self._state.mutate(store, reason=f"node {node}: NBDE {target.mode} ({'; '.join(reasons)})")

    async def _binding_drift(self, node: str, target: NodeUnlock) -> tuple[str, ...]:
        """Why the binding on ``node``'s disk no longer matches what Legion recorded (a Tang peer
        dropped there), from its admin API; nothing when it matches or the node does not say."""
        if target.mode == "local":
            return ()
        try:
            async with self._reach.admin_client(node) as client:
                health = await client.health()
        except NodeError as exc:  # the binding Legion recorded stands; the next repair tick asks again
            logger.warning("NBDE: node %s did not report its binding: %s", node, exc)
            return ()
        nbde = health.get("nbde")
        held = nbde.get("tang") if isinstance(nbde, dict) else None
        if not isinstance(held, list):
            return ()
        missing = sorted(set(target.peers) - {str(peer) for peer in held})
        return (f"Tang peer {', '.join(missing)} missing from the disk binding",) if missing else ()

    def _binding(self, target: NodeUnlock, passphrase: str) -> dict[str, Any]:
        servers = self._state.state.tracked.servers
        port = self._reach.access.admin_port
        return {
            "mode": target.mode,
            "local_boot_key": target.local_boot_key,
            "threshold": target.threshold,
            "tang": [
                {"node": peer, "url": f"https://{_url_host(host_of(servers[peer]))}:{port}/tang"}
                for peer in target.peers
                if peer in servers
            ],
            "recovery_passphrase": passphrase,
        }


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _passphrase() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(6))
