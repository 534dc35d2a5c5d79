"""A node's deployment material in the state: the cluster CA and the node's identity, made once.

Why before any phase: the host key Legion pins must be the one it installs, and the admin key the
provider registers must be the one the install phases log in with, whichever process runs which
phase. So both are generated once, stored in the encrypted state, and only ever read after that.
"""

from __future__ import annotations

import dataclasses

from legion_nb.engine.deployment.phases import material_of
from legion_nb.engine.deployment.security import ClusterSecurity
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.state.edits import with_cluster_material, with_material
from legion_nb.engine.state.model import DEFAULT_CLUSTER, ClusterMaterial, LegionState, NodeMaterial
from legion_nb.errors import UsageError

__all__ = ["cluster_of", "ensure_material"]


def cluster_of(state: LegionState, node: str) -> str:
    """The cluster ``node`` belongs to: its tracked server's, else the plan's."""
    record = state.tracked.servers.get(node)
    if record is not None:
        return record.cluster
    planned = state.scheme.find_server(node)
    if planned is None:
        raise UsageError(
            f"server {node} is neither planned nor tracked; plan it with `legion plan server add`"
        )
    return planned[0] or DEFAULT_CLUSTER


async def ensure_material(state: StatePort, node: str) -> None:
    """Make the node's cluster CA and identity exist (generated once, kept; module notes)."""
    current_state = state.state
    cluster = cluster_of(current_state, node)
    material = material_of(current_state, node)
    has_cluster = cluster in current_state.deployment.clusters
    if has_cluster and material is not None and material.security:
        return
    authority = (
        ClusterSecurity.from_dict(current_state.deployment.clusters[cluster].security)
        if has_cluster
        else ClusterSecurity.create(cluster)
    )
    fresh_node = authority.provision_node(node)

    def ensure(state: LegionState) -> tuple[LegionState, None]:
        # Re-checked inside the mutation: whatever another writer stored first is kept.
        if cluster not in state.deployment.clusters:
            authority_material = ClusterMaterial(cluster=cluster, security=authority.to_dict())
            state = with_cluster_material(state, authority_material)
        current = material_of(state, node) or NodeMaterial(node=node)
        stored = ClusterSecurity.from_dict(state.deployment.clusters[cluster].security)
        if not current.security and stored.authority.certificate_pem == authority.authority.certificate_pem:
            state = with_material(state, dataclasses.replace(current, security=fresh_node.to_dict()))
        return state, None

    await state.mutate(ensure, reason=f"node {node}: deployment material")
    stored = material_of(state.state, node)
    if stored is None or not stored.security:
        await ensure_material(state, node)  # the cluster CA changed under us: issue from the stored one
