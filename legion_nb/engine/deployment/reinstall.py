"""A reinstall's provider side: which image to rebuild from, and the rebuild itself.

The server stays the one Legion tracks (same provider id, same addresses); only its disk is reset
through the provider, then started and re-read with the node actor's own helpers
(:meth:`Resilience.until_running <legion_nb.providers.resilience.Resilience.until_running>`,
:func:`~legion_nb.engine.resources.node.record_observed`).
"""

from __future__ import annotations

from legion_nb.engine.deployment.node_reach import reopen_host_key_window
from legion_nb.engine.deployment.phases import PhaseContext
from legion_nb.engine.resources.node import record_observed, server_choice
from legion_nb.engine.resources.ports import ProviderAccess, StatePort
from legion_nb.engine.state.model import PlannedServer, TrackedServer
from legion_nb.errors import NodeError
from legion_nb.providers.records import Catalog

__all__ = ["ImageReset", "reinstall_image"]


def reinstall_image(catalog: Catalog, record: TrackedServer, planned: PlannedServer | None) -> str:
    """The image a reinstall rebuilds from: the tracked one while the latest catalog still offers
    it (the node keeps its OS line), otherwise the catalog policy's choice for the server."""
    if record.image and catalog.image(record.image) is not None:
        return record.image
    choice = server_choice(
        catalog,
        record.role,
        server_type=(planned.server_type if planned else "") or record.server_type or None,
        location=(planned.location if planned else "") or record.location or None,
        image=(planned.image if planned else "") or None,
    )
    return choice.image.id


class ImageReset:
    """The reinstall's first phase: rebuild the tracked server from :func:`reinstall_image`."""

    def __init__(self, state: StatePort, providers: ProviderAccess) -> None:
        self._state = state
        self._providers = providers

    async def image_reset(self, ctx: PhaseContext) -> None:
        record = self._state.state.tracked.servers.get(ctx.node)
        if record is None:
            raise NodeError(f"server {ctx.node} is not tracked; there is nothing to reinstall")
        planned = self._state.state.scheme.find_server(ctx.node)
        image = reinstall_image(
            self._providers.catalog(record.provider), record, planned[1] if planned else None
        )
        server_id = record.provider_id
        resilience = self._providers.resilience
        operation = await resilience.converge(
            record.provider, f"rebuild {ctx.node}", lambda a: a.rebuild_server(server_id, image)
        )
        if operation is not None:
            await self._providers.broker.wait([operation])
        # Legion reset the disk itself: the server now presents its image's key, rightly.
        await reopen_host_key_window(self._state, ctx.node, reason=f"node {ctx.node} rebuilt from {image}")
        await ctx.checkpoint("rebuilt")
        server = await resilience.until_running(record.provider, server_id, ctx.node)
        await record_observed(self._state, ctx.node, server)
