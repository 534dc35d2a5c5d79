"""The work behind each deployment phase, on real nodes: provider calls, SSH sessions, state writes.

Every phase is idempotent because it **looks before it acts**: provisioning only waits for the
server the node actor creates, tracks and starts (:mod:`.provisioning`); ``kexec`` and
``os_install`` ask the node which stage it is at and skip what is behind it (:mod:`.install`);
certificate activation, Tribes configuration (:mod:`.configuration`) and the NBDE binding
(:mod:`.nbde_binding`) compare what the node holds with what it should hold; a satellite's short
path (:mod:`.satellite`) leaves what its node already runs. So a phase that was
running when the engine died can simply be run again. How nodes are reached and trusted is
:mod:`.node_reach`; the node command vocabulary is :mod:`.node_channel`.
"""

from __future__ import annotations

from collections.abc import Mapping

from legion_nb.engine.deployment.configuration import NodeConfiguration
from legion_nb.engine.deployment.install import OsInstall
from legion_nb.engine.deployment.material import ensure_material
from legion_nb.engine.deployment.nbde_binding import NbdeBinding
from legion_nb.engine.deployment.node_channel import NodeAccess, NodeConnector, SshNodeConnector
from legion_nb.engine.deployment.node_reach import NodeReach
from legion_nb.engine.deployment.phases import NodeOperation, Phase, PhaseHandler
from legion_nb.engine.deployment.provisioning import Provisioning
from legion_nb.engine.deployment.readiness import ReadinessChecks
from legion_nb.engine.deployment.reinstall import ImageReset
from legion_nb.engine.deployment.satellite import SatelliteSetup
from legion_nb.engine.resources.ports import ProviderAccess, StatePort
from legion_nb.engine.state.model import TrackedSshKey

__all__ = ["NodePhaseWork"]


class NodePhaseWork:
    """:class:`~legion_nb.engine.deployment.phases.PhaseWork` on real nodes (module notes)."""

    def __init__(
        self,
        state: StatePort,
        providers: ProviderAccess,
        *,
        access: NodeAccess | None = None,
        connector: NodeConnector | None = None,
    ) -> None:
        self._state = state
        reach = NodeReach(state, access or NodeAccess(), connector or SshNodeConnector())
        self.reach = reach
        """How the phases reach nodes; the repair selection reads node reports through it too."""
        self._provisioning = Provisioning(reach, providers)
        install = OsInstall(reach)
        configuration = NodeConfiguration(reach)
        readiness = ReadinessChecks(reach)
        nbde = NbdeBinding(reach)
        satellite = SatelliteSetup(reach)
        self._handlers: Mapping[Phase, PhaseHandler] = {
            Phase.PROVISION: self._provisioning.provision,
            Phase.IMAGE_RESET: ImageReset(state, providers).image_reset,
            Phase.KEXEC: install.kexec,
            Phase.OS_INSTALL: install.os_install,
            Phase.REBOOT: install.reboot,
            Phase.CERTIFICATES: configuration.certificates,
            Phase.TRIBES_CONFIG: configuration.tribes_config,
            Phase.READINESS: readiness.readiness,
            Phase.CLUSTER_RECONCILE: configuration.cluster_reconcile,
            Phase.BARRIER_CLEAR: readiness.barrier_clear,
            Phase.NBDE_RECONCILE: nbde.nbde_reconcile,
            Phase.SATELLITE_BOOTSTRAP: satellite.bootstrap,
            Phase.SATELLITE_SETUP: satellite.setup,
            Phase.SATELLITE_HEALTH: satellite.health,
        }

    @property
    def state(self) -> StatePort:
        return self._state

    def handler(self, phase: Phase) -> PhaseHandler:
        return self._handlers[phase]

    async def prepare(self, node: str, operation: NodeOperation) -> None:
        """The cluster CA and the node's identity exist before any phase (:mod:`.material`)."""
        del operation  # every operation relies on the same material
        await ensure_material(self._state, node)

    async def provider_ssh_key(self, node: str, provider: str) -> TrackedSshKey:
        """The node's admin key registered at ``provider``, for the node actor's create; call
        :meth:`prepare` first (:meth:`Provisioning.provider_ssh_key
        <legion_nb.engine.deployment.provisioning.Provisioning.provider_ssh_key>`)."""
        return await self._provisioning.provider_ssh_key(node, provider)
