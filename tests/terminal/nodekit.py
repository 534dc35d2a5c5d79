"""A simulated node recorded in an engine's state the way deployment records it.

Deployment (issue 5) stores each node's tracked address and its security material (pinned host key,
admin user and key); the engine's terminals read exactly those records. For focused tests (a node in
a second, no provider emulator) these helpers seed the same records through the engine's persistence
supervisor, and make the simulated node present the recorded host key and accept the admin key, as
an installed node would; ``test_terminal_sandbox.py`` covers the records materialize itself writes.
Also copied next to the browser test's notebook, so it imports only legion_nb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.deployment.security import ClusterSecurity, NodeIdentity, NodeSecurity, SshKeyPair
from legion_nb.engine.node_terminals import TerminalSettings
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.engine.state.model import LegionState, NodeMaterial, TrackedServer

__all__ = ["node_engine", "record_node"]


@contextlib.asynccontextmanager
async def node_engine(state_path: Path, node: SimulatedNode, password: str) -> AsyncIterator[Engine]:
    """A new unlocked engine whose terminals dial the node's SSH port (simulated nodes use a
    loopback port of their own instead of 22)."""
    engine = create_engine(state_path, SessionSettings(terminals=TerminalSettings(ssh_port=node.ssh_port)))
    try:
        await engine.bootstrap(password)
        yield engine
    finally:
        await engine.aclose()


async def record_node(engine: Engine, node: SimulatedNode, name: str) -> NodeSecurity:
    """Track ``node`` as server ``name`` with its node material; the node accepts the admin key."""
    provisioned = ClusterSecurity.create("default").provision_node(name, ip_addresses=[node.address])
    host_key = SshKeyPair(public_openssh=node.host_public_key, private_openssh=node.system.host_key)
    security = dataclasses.replace(provisioned, identity=NodeIdentity(node=name, host_key=host_key))
    node.system.authorize(security.admin.username, security.admin.authorized_keys_line())
    server = TrackedServer(
        name=name,
        provider="hetzner",
        provider_id=f"sim-{name}",
        created=dt.datetime.now(dt.UTC),
        ipv4=node.address,
        status="running",
    )

    def track(state: LegionState) -> tuple[LegionState, Any]:
        tracked = dataclasses.replace(state.tracked, servers={**state.tracked.servers, name: server})
        nodes = {**state.deployment.nodes, name: NodeMaterial(node=name, security=security.to_dict())}
        deployment = dataclasses.replace(state.deployment, nodes=nodes)
        return dataclasses.replace(state, tracked=tracked, deployment=deployment), None

    await engine.assert_unlocked().mutate(track, reason=f"deployment recorded node {name}")
    return security
