"""The deployment phase machine, declared: which phases each node operation walks, and in what order.

A node operation (add, reinstall, Tribes reconfigure, NBDE promotion, NBDE reconcile, and a
satellite's short ``satellite_add`` and ``satellite_reinstall``) is a fixed
sequence of phases, and :data:`PLANS` says which. Each operation belongs to one role
(:data:`ROLES`): a cluster operation never runs on a satellite, nor the other way round
(:func:`check_role` raises :class:`WrongRoleError`). The machine is this table plus one rule: after a
phase ends, the next phase of the same plan starts; after the last one, the execution succeeded.
There is no branching to hand-roll: what differs between runs (a server already provisioned, a node
already installed) is decided inside each phase, which checks reality first and does nothing when
its work is already done. That is what makes a resume after a crash safe: the phase that was
running is simply run again.

Where the durable record lives (the crash-recovery unit): on the tracked server
(``TrackedServer.execution``). Before an ``add`` has a tracked server (its provision phase), the
record sits in the node's deployment material (``NodeMaterial.execution``) and moves onto the
tracked server in the same state write that tracks it
(:func:`~legion_nb.engine.state.edits.track_server`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from legion_nb.engine.state.model import LegionState, NodeExecution, NodeMaterial, Role
from legion_nb.errors import UsageError

__all__ = [
    "INSTALL_PHASES",
    "PLANS",
    "REINSTALLS",
    "ROLES",
    "SATELLITE_PHASES",
    "NodeOperation",
    "Phase",
    "PhaseContext",
    "PhaseHandler",
    "PhaseWork",
    "UnknownOperationError",
    "WrongRoleError",
    "check_role",
    "execution_of",
    "first_phase",
    "material_of",
    "next_phase",
    "operation_of",
    "resume_phase",
    "role_of",
]


class Phase(enum.StrEnum):
    """One durable step of a node operation; the value is what ``NodeExecution.phase`` holds."""

    PROVISION = "provision"
    """Wait for the cloud server its node actor creates (once), tracks and starts."""
    IMAGE_RESET = "image_reset"
    """Reinstall: rebuild the server from a current provider image (kept if still in the catalog)."""
    KEXEC = "kexec"
    """Boot the cloud image into the installer."""
    OS_INSTALL = "os_install"
    """Stage Legion's host key and admin keys, write the OS."""
    REBOOT = "reboot"
    """Boot the installed system; from here on the node answers with Legion's host key."""
    CERTIFICATES = "certificates"
    """Stage the cluster CA and node certificate, start the mTLS admin API."""
    TRIBES_CONFIG = "tribes_config"
    """Hand the node its peer-sync configuration and start Tribes."""
    READINESS = "readiness"
    """Wait until the node reports itself ready."""
    CLUSTER_RECONCILE = "cluster_reconcile"
    """Bring the other nodes' peer lists up to date with this node."""
    BARRIER_CLEAR = "barrier_clear"
    """Let the node be published (DNS, endpoints): it is ready and its peers know it."""
    NBDE_RECONCILE = "nbde_reconcile"
    """Bind the disk unlock to the derived NBDE policy (a no-op when already there)."""
    SATELLITE_BOOTSTRAP = "satellite_bootstrap"
    """Satellite: pin the host key it presents on first contact, add Legion's admin user and key,
    set its hostname."""
    SATELLITE_SETUP = "satellite_setup"
    """Satellite: install the Sender service with its configuration and start it."""
    SATELLITE_HEALTH = "satellite_health"
    """Satellite: wait until its Sender API answers its HTTP health check."""


class NodeOperation(enum.StrEnum):
    ADD = "add"
    REINSTALL = "reinstall"
    RECONFIGURE = "reconfigure"
    NBDE_PROMOTE = "nbde_promote"
    NBDE_RECONCILE = "nbde_reconcile"
    SATELLITE_ADD = "satellite_add"
    SATELLITE_REINSTALL = "satellite_reinstall"


INSTALL_PHASES: tuple[Phase, ...] = (
    Phase.KEXEC,
    Phase.OS_INSTALL,
    Phase.REBOOT,
    Phase.CERTIFICATES,
    Phase.TRIBES_CONFIG,
    Phase.READINESS,
    Phase.CLUSTER_RECONCILE,
    Phase.BARRIER_CLEAR,
    Phase.NBDE_RECONCILE,
)

SATELLITE_PHASES: tuple[Phase, ...] = (
    Phase.PROVISION,
    Phase.SATELLITE_BOOTSTRAP,
    Phase.SATELLITE_SETUP,
    Phase.SATELLITE_HEALTH,
)
"""The satellite's short path: it keeps its provider image (no kexec, OS install, certificates,
Tribes or NBDE); it only needs Legion's admin access and a running Sender."""

PLANS: Mapping[NodeOperation, tuple[Phase, ...]] = MappingProxyType(
    {
        NodeOperation.ADD: (Phase.PROVISION, *INSTALL_PHASES),
        NodeOperation.REINSTALL: (Phase.IMAGE_RESET, *INSTALL_PHASES),
        NodeOperation.RECONFIGURE: (
            Phase.TRIBES_CONFIG,
            Phase.READINESS,
            Phase.CLUSTER_RECONCILE,
            Phase.BARRIER_CLEAR,
        ),
        NodeOperation.NBDE_PROMOTE: (Phase.READINESS, Phase.NBDE_RECONCILE, Phase.CLUSTER_RECONCILE),
        NodeOperation.NBDE_RECONCILE: (Phase.NBDE_RECONCILE,),
        NodeOperation.SATELLITE_ADD: SATELLITE_PHASES,
        NodeOperation.SATELLITE_REINSTALL: (Phase.IMAGE_RESET, *SATELLITE_PHASES[1:]),
    }
)

ROLES: Mapping[NodeOperation, Role] = MappingProxyType(
    {
        operation: "satellite" if operation.value.startswith("satellite_") else "cluster"
        for operation in NodeOperation
    }
)
"""The role of the nodes each operation is for: the cluster install, Tribes and NBDE phases mean
nothing on a satellite (it keeps its image and runs no Tribes), and a satellite's short path would
leave a cluster node without certificates, Tribes or NBDE."""

REINSTALLS: Mapping[Role, NodeOperation] = MappingProxyType(
    {"cluster": NodeOperation.REINSTALL, "satellite": NodeOperation.SATELLITE_REINSTALL}
)
"""What ``reinstall`` means for each role: a rebuild from a current image, then that role's own
setup (a satellite: bootstrap, Sender setup and health again, pinned to the new image's key)."""


# -- what a phase is given, and who performs it ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhaseContext:
    """What a phase handler gets: which node, which operation and phase, and the checkpoint hook."""

    node: str
    operation: NodeOperation
    phase: Phase
    checkpoint: Callable[[str], Awaitable[None]] = field(repr=False)


PhaseHandler = Callable[[PhaseContext], Awaitable[None]]


class PhaseWork(Protocol):
    """The work behind the phases (on real nodes: :mod:`legion_nb.engine.deployment.phase_work`)."""

    async def prepare(self, node: str, operation: NodeOperation) -> None:
        """Make sure what every phase relies on exists (the node's identity and cluster CA)."""
        ...

    def handler(self, phase: Phase) -> PhaseHandler:
        """The async function that performs ``phase``; it must be idempotent."""
        ...


class UnknownOperationError(UsageError):
    code = "unknown_node_operation"


class WrongRoleError(UsageError):
    """A node operation was asked of a node of the other role (a cluster reinstall on a satellite)."""

    code = "wrong_node_role"


def role_of(state: LegionState, node: str) -> Role:
    """The node's role: its tracked server's, else the plan's (a cluster node when neither says)."""
    record = state.tracked.servers.get(node)
    if record is not None:
        return record.role
    planned = state.scheme.find_server(node)
    return planned[1].role if planned is not None else "cluster"


def check_role(node: str, role: Role, operation: NodeOperation) -> None:
    """Refuse ``operation`` on a node of another role with one line naming what to run instead."""
    wanted = ROLES[operation]
    if wanted == role:
        return
    raise WrongRoleError(
        f"node {node} is a {role} node and {operation} runs {wanted} phases, which it has none of; "
        f"`legion server reinstall {node}` reinstalls it as a {role} ({REINSTALLS[role]})"
    )


def operation_of(name: str) -> NodeOperation:
    try:
        return NodeOperation(name)
    except ValueError:
        known = ", ".join(op.value for op in NodeOperation)
        raise UnknownOperationError(f"unknown node operation {name!r}; use one of {known}") from None


def first_phase(operation: NodeOperation) -> Phase:
    return PLANS[operation][0]


def next_phase(operation: NodeOperation, phase: Phase) -> Phase | None:
    """The phase after ``phase`` in ``operation``'s plan; ``None`` after the last one."""
    plan = PLANS[operation]
    index = plan.index(phase)
    return plan[index + 1] if index + 1 < len(plan) else None


def resume_phase(execution: NodeExecution) -> Phase | None:
    """Where a retry of ``execution`` starts: the recorded phase again if it had not ended (it is
    idempotent), else the one after it; ``None`` when nothing is left to do."""
    operation = operation_of(execution.operation)
    try:
        phase = Phase(execution.phase)
    except ValueError:
        return first_phase(operation)  # written by another version: start over, phases are idempotent
    if phase not in PLANS[operation]:
        return first_phase(operation)
    return next_phase(operation, phase) if execution.phase_done else phase


# -- where the record lives -----------------------------------------------------------------------


def material_of(state: LegionState, node: str) -> NodeMaterial | None:
    return state.deployment.nodes.get(node)


def execution_of(state: LegionState, node: str) -> NodeExecution | None:
    """The node's current execution record: the tracked server's, else the pre-tracking one."""
    server = state.tracked.servers.get(node)
    if server is not None:
        return server.execution
    material = material_of(state, node)
    return material.execution if material is not None else None
