"""Fixtures for terminal tests: a simulated node at 127.78.0.2 and the admin key it accepts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from legion_nb.emulators.nodes import SimulatedNode
from legion_nb.engine.deployment.security import SshKeyPair
from legion_nb.engine.ssh import SshTarget


@pytest.fixture(scope="session")
def admin_key() -> SshKeyPair:
    return SshKeyPair.generate(comment="legion-admin@t1")


@pytest.fixture
async def node(admin_key: SshKeyPair) -> AsyncIterator[SimulatedNode]:
    async with SimulatedNode("127.78.0.2", hostname="t1") as running:
        running.system.authorize("legion-admin", admin_key.public_openssh)
        yield running


@pytest.fixture
def target(node: SimulatedNode, admin_key: SshKeyPair) -> SshTarget:
    return SshTarget(
        node="t1",
        host=node.address,
        port=node.ssh_port,
        username="legion-admin",
        pinned_host_key=node.host_public_key,
        client_key=admin_key.private_openssh,
    )
