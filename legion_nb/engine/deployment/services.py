"""The work behind each deployment phase: provider calls, SSH sessions to the node, state writes.

Every phase here is idempotent because it **looks before it acts**: provisioning only waits for the
server the node actor creates, tracks and starts (:mod:`legion_nb.engine.resources.node`, the one
place a server is made to exist and run); ``kexec`` and ``os_install``
ask the node which stage it is at (``legion-node phase``) and skip what is behind it; certificate
activation, Tribes configuration and the NBDE binding compare what the node holds with what it
should hold. So a phase that was running when the engine died can simply be run again.

The node side speaks the managed-node command vocabulary (``legion-node phase|write-file|kexec|
install|reboot|activate-certs|configure-tribes|readiness``; the sandbox's simulated nodes answer the
same words) over SSH through :class:`NodeConnector`. The default connector is
:class:`SshNodeConnector` on :mod:`legion_nb.engine.ssh`.

Host keys: before the OS install a node runs its provider image, whose host key Legion cannot know;
only the phases up to the installed-system reboot may read that key from the node (trust on first
use, made explicit and confined to that window). From the reboot on, every session is pinned to the
host key Legion generated and installed, and a node presenting another key is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509

from legion_nb.engine.cluster.firewall_plan import ADMIN_API_PORT
from legion_nb.engine.cluster.nbde import (
    ClusterFacts,
    NodeFacts,
    NodeUnlock,
    cluster_facts,
    derive_nbde_policy,
    select_nbde_repairs,
)
from legion_nb.engine.deployment.phases import (
    NodeOperation,
    Phase,
    PhaseContext,
    PhaseHandler,
    material_of,
)
from legion_nb.engine.deployment.security import (
    ClusterSecurity,
    NodeSecurity,
    sync_handoff,
)
from legion_nb.engine.resources.node import record_observed, server_choice
from legion_nb.engine.resources.ports import ProviderAccess, StatePort
from legion_nb.engine.ssh import (
    CommandResult,
    HostKeyMismatchError,
    NodeUnreachableError,
    ReconnectPolicy,
    SshOptions,
    SshTarget,
    connect,
    connect_with_retry,
    scan_host_key,
)
from legion_nb.engine.state.edits import with_cluster_material, with_material, without_pending
from legion_nb.engine.state.model import (
    DEFAULT_CLUSTER,
    ClusterMaterial,
    LegionState,
    NodeMaterial,
    NodeNbde,
    PlannedServer,
    TrackedServer,
    TrackedSshKey,
    utcnow,
)
from legion_nb.errors import NodeError, UsageError
from legion_nb.providers.node_admin import NodeAdminClient, NodeAdminUnreachableError, Readiness, admin_url
from legion_nb.providers.ownership import LEGION_ID_LABEL, deterministic_name
from legion_nb.providers.records import Catalog

__all__ = [
    "ADMIN_KEYS_PATH",
    "ADMIN_USER_PATH",
    "HOST_KEY_PATH",
    "NBDE_BINDING_PATH",
    "TLS_CA_PATH",
    "TLS_CERT_PATH",
    "TLS_KEY_PATH",
    "TRIBES_CONFIG_PATH",
    "DeploymentServices",
    "NodeAccess",
    "NodeChannel",
    "NodeConnector",
    "NodeNotReadyError",
    "NodeStepError",
    "ReadinessPolicy",
    "SshNodeConnector",
    "reinstall_image",
]

logger = logging.getLogger(__name__)

# Where the managed-node contract puts things (the node reads them from these paths).
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
ADMIN_KEYS_PATH = "/etc/legion/admin_authorized_keys"
ADMIN_USER_PATH = "/etc/legion/admin_user"
TLS_CA_PATH = "/etc/tribes/tls/ca.pem"
TLS_CERT_PATH = "/etc/tribes/tls/node.pem"
TLS_KEY_PATH = "/etc/tribes/tls/node.key"
TRIBES_CONFIG_PATH = "/etc/tribes/sync.json"
NBDE_BINDING_PATH = "/etc/legion/nbde.json"

_SYNC_FIELDS = ("cluster", "node", "peers", "allow", "ca_certificate", "certificate")


class NodeStepError(NodeError):
    """A node refused an install step (the node's own one-line reason is in the message)."""

    code = "node_step"


class NodeNotReadyError(NodeError):
    """The node did not report ready in time; retrying the operation later may help."""

    code = "node_not_ready"
    temporary = True


# -- reaching nodes --------------------------------------------------------------------------------


class NodeChannel(Protocol):
    """One session with a node: commands in, results out (``SshConnection`` is one)."""

    async def run(self, command: str, *, input: str | None = None) -> CommandResult: ...

    async def wait_closed(self) -> None:
        """Until the node ends the session (it went down for a reboot)."""
        ...

    async def aclose(self) -> None: ...


class NodeConnector(Protocol):
    """Opens sessions to nodes. ``open`` accepts only ``target.pinned_host_key``; ``scan`` reads the key
    a node presents, unverified, for the pre-install window only (module notes)."""

    async def open(self, target: SshTarget, *, retry: bool) -> NodeChannel: ...

    async def scan(self, node: str, host: str, port: int) -> str: ...


@dataclass(frozen=True, slots=True)
class SshNodeConnector:
    """:class:`NodeConnector` over :mod:`legion_nb.engine.ssh` (asyncssh with pinned host keys)."""

    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    options: SshOptions = field(default_factory=SshOptions)

    async def open(self, target: SshTarget, *, retry: bool) -> NodeChannel:
        if retry:
            return await connect_with_retry(target, self.reconnect, self.options)
        return await connect(target, self.options)

    async def scan(self, node: str, host: str, port: int) -> str:
        """The host key the node presents, waiting (per ``reconnect``) while it reboots."""
        delays = self.reconnect.delays()
        while True:
            try:
                return await scan_host_key(node, host, port, self.options)
            except NodeUnreachableError:
                delay = next(delays, None)
                if delay is None:
                    raise
                await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class ReadinessPolicy:
    """How long to wait for a node to report ready: ``attempts`` reads ``delay`` seconds apart."""

    attempts: int = 120
    delay: float = 2.0


@dataclass(frozen=True, slots=True)
class NodeAccess:
    """Ports and waiting policies for node sessions (the sandbox passes its nodes' SSH port)."""

    ssh_port: int = 22
    admin_port: int = ADMIN_API_PORT
    readiness: ReadinessPolicy = field(default_factory=ReadinessPolicy)
    provisioning: float = 600.0
    """Seconds the provision phase waits for the node actor to track and start the server."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


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


# -- the services ----------------------------------------------------------------------------------


class DeploymentServices:
    """Implements :class:`~legion_nb.engine.deployment.runtime.PhaseServices` (module notes)."""

    def __init__(
        self,
        state: StatePort,
        providers: ProviderAccess,
        *,
        access: NodeAccess | None = None,
        connector: NodeConnector | None = None,
    ) -> None:
        self._state = state
        self._providers = providers
        self._access = access or NodeAccess()
        self._connector: NodeConnector = connector or SshNodeConnector()
        self._handlers: Mapping[Phase, PhaseHandler] = {
            Phase.PROVISION: self.provision,
            Phase.IMAGE_RESET: self.image_reset,
            Phase.KEXEC: self.kexec,
            Phase.OS_INSTALL: self.os_install,
            Phase.REBOOT: self.reboot,
            Phase.CERTIFICATES: self.certificates,
            Phase.TRIBES_CONFIG: self.tribes_config,
            Phase.READINESS: self.readiness,
            Phase.CLUSTER_RECONCILE: self.cluster_reconcile,
            Phase.BARRIER_CLEAR: self.barrier_clear,
            Phase.NBDE_RECONCILE: self.nbde_reconcile,
        }

    def handler(self, phase: Phase) -> PhaseHandler:
        return self._handlers[phase]

    # -- material --------------------------------------------------------------------------------

    async def prepare(self, node: str, operation: NodeOperation) -> None:
        """The cluster CA and the node's identity exist before any phase (generated once, kept: the
        host key Legion pins must be the one it installs, whichever process installs it)."""
        state = self._state.state
        cluster = self._cluster_of(state, node)
        material = material_of(state, node)
        has_cluster = cluster in state.deployment.clusters
        if has_cluster and material is not None and material.security:
            return
        authority = (
            ClusterSecurity.from_dict(state.deployment.clusters[cluster].security)
            if has_cluster
            else ClusterSecurity.create(cluster)
        )
        fresh_node = authority.provision_node(node)

        def ensure(state: LegionState) -> tuple[LegionState, None]:
            # Re-checked inside the mutation: whatever another writer stored first is kept.
            if cluster not in state.deployment.clusters:
                material = ClusterMaterial(cluster=cluster, security=authority.to_dict())
                state = with_cluster_material(state, material)
            current = material_of(state, node) or NodeMaterial(node=node)
            stored = ClusterSecurity.from_dict(state.deployment.clusters[cluster].security)
            if (
                not current.security
                and stored.authority.certificate_pem == authority.authority.certificate_pem
            ):
                state = with_material(state, dataclasses.replace(current, security=fresh_node.to_dict()))
            return state, None

        await self._state.mutate(ensure, reason=f"node {node}: deployment material")
        stored = material_of(self._state.state, node)
        if stored is None or not stored.security:
            await self.prepare(node, operation)  # the cluster CA changed under us: issue from the stored one

    def _cluster_of(self, state: LegionState, node: str) -> str:
        record = state.tracked.servers.get(node)
        if record is not None:
            return record.cluster
        planned = state.scheme.find_server(node)
        if planned is None:
            raise UsageError(
                f"server {node} is neither planned nor tracked; plan it with `legion plan server add`"
            )
        return planned[0] or DEFAULT_CLUSTER

    def _node_security(self, node: str) -> NodeSecurity:
        material = material_of(self._state.state, node)
        if material is None or not material.security:
            raise NodeError(f"node {node} has no deployment material; run the operation again")
        return NodeSecurity.from_dict(material.security)

    def _cluster_security(self, cluster: str) -> ClusterSecurity:
        material = self._state.state.deployment.clusters.get(cluster)
        if material is None:
            raise NodeError(f"cluster {cluster} has no CA yet; run the node operation again")
        return ClusterSecurity.from_dict(material.security)

    def _tracked(self, node: str) -> TrackedServer:
        record = self._state.state.tracked.servers.get(node)
        if record is None:
            raise NodeError(f"server {node} is not tracked; provision it first (`legion materialize`)")
        if not record.ipv4 and not record.ipv6:
            raise NodeNotReadyError(f"server {node} has no address yet; wait for the provider and retry")
        return record

    # -- provider phases ---------------------------------------------------------------------------

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

        Public for whoever creates the server outside the provision phase (a node actor): a server
        created without this key in ``ssh_key_ids`` cannot be reached for the install phases.
        Call :meth:`prepare` first.
        """
        public = self._node_security(node).admin.authorized_keys_line()
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

    async def image_reset(self, ctx: PhaseContext) -> None:
        """Rebuild the tracked server from a current image (:func:`reinstall_image`)."""
        record = self._state.state.tracked.servers.get(ctx.node)
        if record is None:
            raise NodeError(f"server {ctx.node} is not tracked; there is nothing to reinstall")
        planned = self._state.state.scheme.find_server(ctx.node)
        image = reinstall_image(
            self._providers.catalog(record.provider), record, planned[1] if planned else None
        )
        server_id = record.provider_id
        operation = await self._providers.resilience.converge(
            record.provider, f"rebuild {ctx.node}", lambda a: a.rebuild_server(server_id, image)
        )
        if operation is not None:
            await self._providers.broker.wait([operation])
        await ctx.checkpoint("rebuilt")
        resilience = self._providers.resilience
        server = await resilience.until_running(record.provider, server_id, ctx.node)
        await record_observed(self._state, ctx.node, server)

    # -- node sessions -----------------------------------------------------------------------------

    def _host(self, record: TrackedServer) -> str:
        return record.ipv4 or record.ipv6 or ""

    def _admin_target(self, node: str) -> SshTarget:
        record = self._tracked(node)
        return self._node_security(node).admin_ssh_target(self._host(record), self._access.ssh_port)

    async def _image_target(self, node: str) -> SshTarget:
        """root on the provider image or installer, pinned to the key the node presents now."""
        record = self._tracked(node)
        security = self._node_security(node)
        host = self._host(record)
        presented = await self._connector.scan(node, host, self._access.ssh_port)
        return SshTarget(
            node=node,
            host=host,
            port=self._access.ssh_port,
            pinned_host_key=presented,
            client_key=security.admin.ssh_key.private_openssh,
            username="root",
        )

    async def _open_before_install(self, node: str) -> tuple[NodeChannel, str]:
        """A session before the installed system is up: Legion's key if it already answers with it
        (a crash after the reboot), else the image's key. Returns the channel and the node's stage."""
        try:
            channel = await self._connector.open(self._admin_target(node), retry=True)
        except HostKeyMismatchError:
            channel = await self._connector.open(await self._image_target(node), retry=True)
        stage = (await _check(channel, node, "legion-node phase")).strip()
        return channel, stage

    async def _open_installed(self, node: str) -> NodeChannel:
        return await self._connector.open(self._admin_target(node), retry=True)

    async def _reboot_step(self, channel: NodeChannel, node: str, command: str) -> None:
        """Run a step that reboots the node and wait until the node has dropped the session."""
        await _check(channel, node, command)
        await channel.wait_closed()

    # -- node phases --------------------------------------------------------------------------------

    async def kexec(self, ctx: PhaseContext) -> None:
        channel, stage = await self._open_before_install(ctx.node)
        try:
            if stage != "cloud-image":
                return  # already in the installer or beyond
            await self._reboot_step(channel, ctx.node, "legion-node kexec")
        finally:
            await channel.aclose()
        await ctx.checkpoint("kexec-sent")
        target = await self._image_target(ctx.node)
        channel = await self._connector.open(target, retry=True)
        try:
            stage = (await _check(channel, ctx.node, "legion-node phase")).strip()
        finally:
            await channel.aclose()
        if stage != "installer":
            raise NodeStepError(
                f"node {ctx.node} came back as {stage}, not in the installer; retry the operation"
            )

    async def os_install(self, ctx: PhaseContext) -> None:
        channel, stage = await self._open_before_install(ctx.node)
        try:
            if stage in ("installed-pending-reboot", "installed"):
                return
            if stage != "installer":
                raise NodeStepError(
                    f"node {ctx.node} is at {stage}, not in the installer; retry the operation"
                )
            security = self._node_security(ctx.node)
            staged = {
                HOST_KEY_PATH: security.identity.host_key.private_openssh,
                ADMIN_KEYS_PATH: security.admin.authorized_keys_line() + "\n",
                ADMIN_USER_PATH: security.admin.username,
            }
            for path, content in staged.items():
                await _check(channel, ctx.node, f"legion-node write-file {path} 0600", content)
            await ctx.checkpoint("staged")
            await _check(channel, ctx.node, "legion-node install")
        finally:
            await channel.aclose()

    async def reboot(self, ctx: PhaseContext) -> None:
        channel, stage = await self._open_before_install(ctx.node)
        try:
            if stage == "installed-pending-reboot":
                await self._reboot_step(channel, ctx.node, "legion-node reboot")
            elif stage != "installed":
                raise NodeStepError(f"node {ctx.node} is at {stage}, not installed; retry the operation")
        finally:
            await channel.aclose()
        await ctx.checkpoint("rebooting")
        channel = await self._open_installed(ctx.node)  # pinned: the host-key swap happened
        try:
            stage = (await _check(channel, ctx.node, "legion-node phase")).strip()
        finally:
            await channel.aclose()
        if stage != "installed":
            raise NodeStepError(f"node {ctx.node} rebooted into {stage}, not the installed system")

    async def certificates(self, ctx: PhaseContext) -> None:
        node = ctx.node
        security = await self._certificate_for_addresses(node)
        cluster = self._cluster_security(self._tracked(node).cluster)
        wanted = {
            TLS_CA_PATH: cluster.authority.certificate_pem,
            TLS_CERT_PATH: security.certificate.certificate_pem,
            TLS_KEY_PATH: security.certificate.private_key_pem,
        }
        channel = await self._open_installed(node)
        try:
            report = await _readiness(channel)
            held = await channel.run(f"cat {TLS_CERT_PATH}")
            if report.get("checks", {}).get("admin_api") and held.ok and held.stdout == wanted[TLS_CERT_PATH]:
                return
            for path, content in wanted.items():
                await _check(channel, node, f"legion-node write-file {path} 0600", content)
            await ctx.checkpoint("staged")
            await _check(channel, node, "legion-node activate-certs")
        finally:
            await channel.aclose()

    async def _certificate_for_addresses(self, node: str) -> NodeSecurity:
        """The node certificate, re-issued (and persisted) when it does not name the node's addresses."""
        record = self._tracked(node)
        security = self._node_security(node)
        addresses = [a for a in (record.ipv4, record.ipv6) if a]
        if _names_addresses(security, addresses):
            return security
        cluster = self._cluster_security(record.cluster)
        fresh = cluster.reissue_node_certificate(security, dns_names=[node], ip_addresses=addresses)

        def store(state: LegionState) -> tuple[LegionState, None]:
            material = material_of(state, node) or NodeMaterial(node=node)
            return with_material(state, dataclasses.replace(material, security=fresh.to_dict())), None

        await self._state.mutate(store, reason=f"node {node}: certificate for {', '.join(addresses)}")
        return fresh

    def _handoff(self, node: str) -> dict[str, Any]:
        record = self._tracked(node)
        state = self._state.state
        peers = {
            name: self._host(server)
            for name, server in state.tracked.servers.items()
            if server.cluster == record.cluster and server.role == "cluster" and self._host(server)
        }
        return sync_handoff(self._cluster_security(record.cluster), self._node_security(node), peers)

    async def _configure(self, channel: NodeChannel, node: str) -> bool:
        """Hand ``node`` its sync configuration unless it already holds the same; True if it changed."""
        handoff = self._handoff(node)
        held = await channel.run(f"cat {TRIBES_CONFIG_PATH}")
        if held.ok and _same_sync(held.stdout, handoff):
            return False
        await _check(channel, node, "legion-node configure-tribes", json.dumps(handoff, sort_keys=True))
        return True

    async def tribes_config(self, ctx: PhaseContext) -> None:
        channel = await self._open_installed(ctx.node)
        try:
            await self._configure(channel, ctx.node)
        finally:
            await channel.aclose()

    def _admin_client(self, node: str) -> NodeAdminClient:
        """The node's admin API over HTTPS, Legion's operator certificate against the pinned CA."""
        record = self._tracked(node)
        context = self._cluster_security(record.cluster).operator_ssl_context()
        url = admin_url(self._host(record), self._access.admin_port)
        return NodeAdminClient(node, url, context)

    async def readiness(self, ctx: PhaseContext) -> None:
        """Wait until the node reports ready on its admin API (HTTPS, mutual TLS): the report is
        trusted only from a node holding the certificate this cluster's CA issued it."""
        policy = self._access.readiness
        report = Readiness(ready=False)
        async with self._admin_client(ctx.node) as client:
            for attempt in range(policy.attempts):
                try:
                    report = await client.readiness()
                except NodeAdminUnreachableError:
                    report = Readiness(ready=False, checks={"admin_api": False})
                if report.ready:
                    return
                if attempt + 1 < policy.attempts:
                    await self._access.sleep(policy.delay)
        raise NodeNotReadyError(
            f"node {ctx.node} is not ready after {policy.attempts} checks (failing: "
            f"{', '.join(report.failing()) or 'unknown'}); resume the operation once it settles"
        )

    async def tang_facts(
        self, state: LegionState, cluster: str, *, deploying: str | None = None
    ) -> ClusterFacts:
        """The cluster's NBDE facts with each Tang server probed: a node the state counts as serving
        Tang must also answer ``/tang/adv`` over mTLS now, or it is nobody's peer this time."""
        facts = cluster_facts(state, cluster, deploying=deploying)
        probed: list[NodeFacts] = []
        for node in facts.nodes:
            serving = node.tang
            if serving and node.name != deploying:
                async with self._admin_client(node.name) as client:
                    serving = await client.tang_serving()
                if not serving:
                    logger.warning("NBDE: node %s does not serve Tang now; left out as a peer", node.name)
            probed.append(dataclasses.replace(node, tang=serving))
        return ClusterFacts.of(cluster, probed)

    async def cluster_reconcile(self, ctx: PhaseContext) -> None:
        """Bring the deployed peers' sync configuration up to date with this node. A peer that is
        down is skipped (logged): the membership repair reconfigures it once it is back."""
        state = self._state.state
        record = self._tracked(ctx.node)
        for name, server in sorted(state.tracked.servers.items()):
            execution = server.execution
            if name == ctx.node or server.cluster != record.cluster or server.role != "cluster":
                continue
            if execution is None or execution.status != "succeeded" or not self._host(server):
                continue
            try:
                channel = await self._connector.open(self._admin_target(name), retry=False)
            except NodeUnreachableError as exc:
                logger.warning("cluster reconcile for %s skipped peer %s: %s", ctx.node, name, exc)
                continue
            try:
                await self._configure(channel, name)
            finally:
                await channel.aclose()

    async def barrier_clear(self, ctx: PhaseContext) -> None:
        """The publication barrier: the node must still be ready now that its peers know it. The
        barrier's record is this phase's end (a node is publishable once its execution passed it)."""
        channel = await self._open_installed(ctx.node)
        try:
            report = await _readiness(channel)
        finally:
            await channel.aclose()
        if not report.get("ready"):
            raise NodeNotReadyError(
                f"node {ctx.node} stopped being ready before publication; resume to retry"
            )

    async def nbde_reconcile(self, ctx: PhaseContext) -> None:
        """Bind the node's disk unlock to the derived policy, then record what was bound."""
        node = ctx.node
        record = self._tracked(node)
        state = self._state.state
        policy = derive_nbde_policy(await self.tang_facts(state, record.cluster, deploying=node))
        target = policy.for_node(node)
        if target is None:
            return  # not a healthy cluster node: nothing to bind now
        material = material_of(state, node)
        current = material.nbde if material is not None else None
        repairs = [r for r in select_nbde_repairs(policy, {node: current}) if r.node == node]
        if not repairs:
            return
        passphrase = current.recovery_passphrase if current and current.recovery_passphrase else _passphrase()
        binding = self._binding(target, passphrase)
        channel = await self._open_installed(node)
        try:
            await _check(
                channel, node, f"legion-node write-file {NBDE_BINDING_PATH} 0600", json.dumps(binding)
            )
        finally:
            await channel.aclose()
        await ctx.checkpoint("bound")
        applied = NodeNbde(
            mode=target.mode,
            local_boot_key=target.local_boot_key,
            tang_peers=target.peers,
            threshold=target.threshold,
            reconciled=utcnow(),
            recovery_passphrase=passphrase,
        )

        def store(state: LegionState) -> tuple[LegionState, None]:
            current = material_of(state, node) or NodeMaterial(node=node)
            return with_material(state, dataclasses.replace(current, nbde=applied)), None

        await self._state.mutate(
            store, reason=f"node {node}: NBDE {target.mode} ({'; '.join(repairs[0].reasons)})"
        )

    def _binding(self, target: NodeUnlock, passphrase: str) -> dict[str, Any]:
        servers = self._state.state.tracked.servers
        return {
            "mode": target.mode,
            "local_boot_key": target.local_boot_key,
            "threshold": target.threshold,
            "tang": [
                {
                    "node": peer,
                    "url": f"https://{_url_host(self._host(servers[peer]))}:{self._access.admin_port}/tang",
                }
                for peer in target.peers
                if peer in servers
            ],
            "recovery_passphrase": passphrase,
        }


# -- helpers ----------------------------------------------------------------------------------------


async def _check(channel: NodeChannel, node: str, command: str, input: str | None = None) -> str:
    result = await channel.run(command, input=input)
    if not result.ok:
        last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        step = command.split()[:2]
        raise NodeStepError(f"node {node}: '{' '.join(step)}' failed (exit {result.exit_status}): {last}")
    return result.stdout


async def _readiness(channel: NodeChannel) -> dict[str, Any]:
    result = await channel.run("legion-node readiness")
    try:
        report = json.loads(result.stdout or "{}")
    except ValueError:
        return {"ready": False}
    return report if isinstance(report, dict) else {"ready": False}


def _same_sync(held: str, wanted: Mapping[str, Any]) -> bool:
    try:
        current = json.loads(held)
    except ValueError:
        return False
    return isinstance(current, dict) and all(current.get(k) == wanted.get(k) for k in _SYNC_FIELDS)


def _names_addresses(security: NodeSecurity, addresses: list[str]) -> bool:
    try:
        sans = security.certificate.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return not addresses
    named = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(addresses) <= named


def _status(state: LegionState, node: str) -> str | None:
    record = state.tracked.servers.get(node)
    return record.status if record is not None else None


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _passphrase() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(6))
