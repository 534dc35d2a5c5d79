"""The OS install over SSH: boot the installer, write the OS with Legion's keys, reboot into it.

Each phase asks the node which stage it is at (``legion-node phase``: ``cloud-image``,
``installer``, ``installed-pending-reboot``, ``installed``) and skips what is behind it, so a phase
that was running when the engine died is simply run again. Until the reboot the node may still
answer with its provider image's host key (:meth:`NodeReach.open_before_install
<legion_nb.engine.deployment.node_reach.NodeReach.open_before_install>`); after it, only with the
key Legion staged here.
"""

from __future__ import annotations

from legion_nb.engine.deployment.node_channel import (
    ADMIN_KEYS_PATH,
    ADMIN_USER_PATH,
    HOST_KEY_PATH,
    NodeChannel,
    NodeStepError,
    run_step,
)
from legion_nb.engine.deployment.node_reach import NodeReach
from legion_nb.engine.deployment.phases import PhaseContext

__all__ = ["OsInstall"]


class OsInstall:
    """The ``kexec``, ``os_install`` and ``reboot`` phases."""

    def __init__(self, reach: NodeReach) -> None:
        self._reach = reach

    async def kexec(self, ctx: PhaseContext) -> None:
        channel, stage = await self._reach.open_before_install(ctx.node)
        try:
            if stage != "cloud-image":
                return  # already in the installer or beyond
            await _reboot_step(channel, ctx.node, "legion-node kexec")
        finally:
            await channel.aclose()
        await ctx.checkpoint("kexec-sent")
        target = await self._reach.image_target(ctx.node)
        channel = await self._reach.connector.open(target, retry=True)
        try:
            stage = (await run_step(channel, ctx.node, "legion-node phase")).strip()
        finally:
            await channel.aclose()
        if stage != "installer":
            raise NodeStepError(
                f"node {ctx.node} came back as {stage}, not in the installer; retry the operation"
            )

    async def os_install(self, ctx: PhaseContext) -> None:
        channel, stage = await self._reach.open_before_install(ctx.node)
        try:
            if stage in ("installed-pending-reboot", "installed"):
                return
            if stage != "installer":
                raise NodeStepError(
                    f"node {ctx.node} is at {stage}, not in the installer; retry the operation"
                )
            security = self._reach.node_security(ctx.node)
            staged = {
                HOST_KEY_PATH: security.identity.host_key.private_openssh,
                ADMIN_KEYS_PATH: security.admin.authorized_keys_line() + "\n",
                ADMIN_USER_PATH: security.admin.username,
            }
            for path, content in staged.items():
                await run_step(channel, ctx.node, f"legion-node write-file {path} 0600", content)
            await ctx.checkpoint("staged")
            await run_step(channel, ctx.node, "legion-node install")
        finally:
            await channel.aclose()

    async def reboot(self, ctx: PhaseContext) -> None:
        channel, stage = await self._reach.open_before_install(ctx.node)
        try:
            if stage == "installed-pending-reboot":
                await _reboot_step(channel, ctx.node, "legion-node reboot")
            elif stage != "installed":
                raise NodeStepError(f"node {ctx.node} is at {stage}, not installed; retry the operation")
        finally:
            await channel.aclose()
        await ctx.checkpoint("rebooting")
        channel = await self._reach.open_installed(ctx.node)  # pinned: the host-key swap happened
        try:
            stage = (await run_step(channel, ctx.node, "legion-node phase")).strip()
        finally:
            await channel.aclose()
        if stage != "installed":
            raise NodeStepError(f"node {ctx.node} rebooted into {stage}, not the installed system")


async def _reboot_step(channel: NodeChannel, node: str, command: str) -> None:
    """Run a step that reboots the node and wait until the node has dropped the session."""
    await run_step(channel, node, command)
    await channel.wait_closed()
