"""Is the node ready: the ``readiness`` wait and the publication barrier.

The readiness report is trusted only over the node's admin API with mutual TLS (the node must hold
the certificate this cluster's CA issued it); the barrier re-reads the node's own report over the
pinned SSH session once its peers know it.
"""

from __future__ import annotations

from legion_nb.engine.deployment.node_channel import NodeNotReadyError, read_readiness
from legion_nb.engine.deployment.node_reach import NodeReach
from legion_nb.engine.deployment.phases import PhaseContext
from legion_nb.providers.node_admin import NodeAdminRefusedError, NodeAdminUnreachableError, Readiness

__all__ = ["ReadinessChecks"]


class ReadinessChecks:
    """The ``readiness`` and ``barrier_clear`` phases."""

    def __init__(self, reach: NodeReach) -> None:
        self._reach = reach

    async def readiness(self, ctx: PhaseContext) -> None:
        """Wait until the node reports ready on its admin API (HTTPS, mutual TLS): the report is
        trusted only from a node holding the certificate this cluster's CA issued it. A refusal of
        Legion's certificate is waited out like a restarting API; if it is the last answer, it is
        the error, since it names what to run."""
        access = self._reach.access
        policy = access.readiness
        report = Readiness(ready=False)
        refused: NodeAdminRefusedError | None = None
        async with self._reach.admin_client(ctx.node) as client:
            for attempt in range(policy.attempts):
                refused = None
                try:
                    report = await client.readiness()
                except NodeAdminRefusedError as exc:
                    report, refused = Readiness(ready=False, checks={"admin_api": False}), exc
                except NodeAdminUnreachableError:
                    report = Readiness(ready=False, checks={"admin_api": False})
                if report.ready:
                    return
                if attempt + 1 < policy.attempts:
                    await access.sleep(policy.delay)
        if refused is not None:
            raise refused
        raise NodeNotReadyError(
            f"node {ctx.node} is not ready after {policy.attempts} checks (failing: "
            f"{', '.join(report.failing()) or 'unknown'}); resume the operation once it settles"
        )

    async def barrier_clear(self, ctx: PhaseContext) -> None:
        """The publication barrier: the node must still be ready now that its peers know it. The
        barrier's record is this phase's end (a node is publishable once its execution passed it)."""
        channel = await self._reach.open_installed(ctx.node)
        try:
            report = await read_readiness(channel)
        finally:
            await channel.aclose()
        if not report.get("ready"):
            raise NodeNotReadyError(
                f"node {ctx.node} stopped being ready before publication; resume to retry"
            )
