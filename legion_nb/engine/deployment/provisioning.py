"""The provision phase and the node's provider SSH key.

The node actor (:mod:`legion_nb.engine.resources.node`) is the one place a server is created,
tracked and started. The provision phase only waits for that: it watches the state until the
node's server is tracked and running, and never creates one, so no crash or resume can make a
second server. What the actor needs from deployment is the provider SSH key root accepts on the
fresh image (:meth:`Provisioning.provider_ssh_key`), registered once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from legion_nb.engine.deployment.node_channel import NodeAccess, NodeNotReadyError
from legion_nb.engine.deployment.node_reach import NodeReach
from legion_nb.engine.deployment.phases import PhaseContext
from legion_nb.engine.resources.ports import ProviderAccess
from legion_nb.engine.state.edits import without_pending
from legion_nb.engine.state.model import LegionState, TrackedSshKey
from legion_nb.errors import UsageError
from legion_nb.providers.ownership import LEGION_ID_LABEL, deterministic_name

__all__ = ["Provisioning"]


class Provisioning:
    """Waits for the node actor's server; registers the node's admin key at the provider."""

    def __init__(self, reach: NodeReach, providers: ProviderAccess) -> None:
        self._reach = reach
        self._state = reach.state
        self._providers = providers

    @property
    def _access(self) -> NodeAccess:
        return self._reach.access

    async def provision(self, ctx: PhaseContext) -> None:
        """Wait for the node's server: its node actor creates it (once, with the node's provider SSH
        key), tracks it and starts it; this phase never creates one. ``created`` is announced once
        the server is tracked."""
        node = ctx.node
        state = self._state.state
        if node not in state.tracked.servers and state.scheme.find_server(node) is None:
            raise UsageError(f"server {node} is not planned; plan it with `legion plan server add`")
        await self._until_state(node, lambda s: node in s.tracked.servers, "tracked")
        await ctx.checkpoint("created")
        await self._until_state(node, lambda s: _status(s, node) == "running", "running")

    async def _until_state(self, node: str, ready: Callable[[LegionState], bool], what: str) -> None:
        """Until ``ready(state)`` holds, rechecked after every state write (the node actor's), for at
        most ``NodeAccess.provisioning`` seconds."""
        changed = asyncio.Event()
        unsubscribe = self._state.subscribe(lambda _: changed.set())
        try:
            async with asyncio.timeout(self._access.provisioning):
                while not ready(self._state.state):
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            raise NodeNotReadyError(
                f"server {node} is not {what} after {self._access.provisioning:g} s; its node actor "
                "creates and starts it (`legion materialize`), then resume the operation"
            ) from None
        finally:
            unsubscribe()

    async def provider_ssh_key(self, node: str, provider: str) -> TrackedSshKey:
        """The provider SSH key root accepts on the fresh image: the node's admin key, registered
        once (found by its public key when a crash hid an earlier registration).

        The node actor creates the server with it: a server created without this key in
        ``ssh_key_ids`` cannot be reached for the install phases. The node's material must exist
        (:func:`~legion_nb.engine.deployment.material.ensure_material`).
        """
        public = self._reach.node_security(node).admin.authorized_keys_line()
        wanted = public.split()[:2]
        keys = await self._providers.broker.read(provider, "list ssh keys", lambda a: a.list_ssh_keys())
        found = next((key for key in keys if key.public_key.split()[:2] == wanted), None)
        if found is not None:
            earlier = found.labels.get(LEGION_ID_LABEL)
            if earlier is not None and earlier in self._state.state.tracked.pending:
                # A crash between the key's create and forgetting its intent: forget it now.
                await self._state.mutate(
                    lambda s: (without_pending(s, earlier), None), reason=f"server {node}: ssh key settled"
                )
            return TrackedSshKey(provider_id=found.id, name=found.name, fingerprint=found.fingerprint or "")
        legion_id = str(uuid.uuid4())
        name = deterministic_name("key", node, legion_id)
        created = await self._providers.resilience.create_ssh_key(provider, name, public, legion_id)
        await self._state.mutate(
            lambda s: (without_pending(s, legion_id), None), reason=f"server {node}: ssh key registered"
        )
        return TrackedSshKey(provider_id=created.id, name=created.name, fingerprint=created.fingerprint or "")


def _status(state: LegionState, node: str) -> str | None:
    record = state.tracked.servers.get(node)
    return record.status if record is not None else None
