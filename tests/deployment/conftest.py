"""Fixtures for deployment tests: Legion's keys and a simulated node that trusts the client key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from legion_nb.emulators.nodes import NodeTiming, SimulatedNode
from legion_nb.engine.deployment.security import ClusterSecurity, SshKeyPair
from legion_nb.engine.ssh import ReconnectPolicy, SshTarget

NODE_ADDRESS = "127.77.0.2"


@pytest.fixture(scope="session")
def client_key() -> SshKeyPair:
    """The provider SSH key root accepts on a fresh cloud image."""
    return SshKeyPair.generate(comment="legion-provisioning")


@pytest.fixture(scope="session")
def cluster() -> ClusterSecurity:
    return ClusterSecurity.create("alpha")


@pytest.fixture
async def node(client_key: SshKeyPair) -> AsyncIterator[SimulatedNode]:
    timing = NodeTiming(kexec=0.02, install=0.02, reboot=0.02, configure_tribes=0.0, tribes_start=0.0)
    async with SimulatedNode(
        NODE_ADDRESS, hostname="n1", authorized_keys=[client_key.public_openssh], timing=timing
    ) as running:
        yield running


@pytest.fixture
def root_target(node: SimulatedNode, client_key: SshKeyPair) -> SshTarget:
    """root on the cloud image, pinned to the key the image presents."""
    return SshTarget(
        node="n1",
        host=node.address,
        port=node.ssh_port,
        username="root",
        pinned_host_key=node.host_public_key,
        client_key=client_key.private_openssh,
    )


@pytest.fixture
def quick_retry() -> ReconnectPolicy:
    """Reconnect every 20 ms for a few seconds at most: enough for a simulated reboot."""
    return ReconnectPolicy(attempts=250, initial_delay=0.02, max_delay=0.02, factor=1.0)
