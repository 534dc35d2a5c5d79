"""Reaching one node from what the state holds: its tracked address, its keys, its sessions.

Every phase that talks to a node goes through :class:`NodeReach`, so the rules for trusting a
node live in one place.

Host keys: before the OS install a node runs its provider image, whose host key Legion cannot know;
only the phases up to the installed-system reboot may read that key from the node (trust on first
use, made explicit and confined to that window: :meth:`NodeReach.open_before_install`). From the
reboot on, every session is pinned to the host key Legion generated and installed
(:meth:`NodeReach.open_installed`), and a node presenting another key is refused.

The window closes for good once the server has presented the pinned key (recorded durably as
:attr:`NodeSecurity.host_key_presented_by <legion_nb.engine.deployment.security.NodeSecurity>`): a
resumed or repeated install that then meets another key raises :class:`PinnedHostKeyRefusedError`
and never falls back to the key the impostor presents (it would be sent the node's host private
key next). Only two acts reopen it: Legion rebuilding the server itself (a reinstall's image
reset, :func:`reopen_host_key_window`) and the operator's explicit ``legion server repin``. The
same two acts drop a satellite's first-contact pin (:mod:`.satellite`).
"""

from __future__ import annotations

from dataclasses import replace

from cryptography import x509

from legion_nb.engine.deployment.identity import fingerprint
from legion_nb.engine.deployment.node_channel import (
    NodeAccess,
    NodeChannel,
    NodeConnector,
    NodeNotReadyError,
    run_step,
)
from legion_nb.engine.deployment.phases import material_of
from legion_nb.engine.deployment.security import ClusterSecurity, NodeSecurity
from legion_nb.engine.resources.ports import StatePort
from legion_nb.engine.ssh import HostKeyMismatchError, SshTarget
from legion_nb.engine.state.edits import with_material
from legion_nb.engine.state.model import LegionState, NodeMaterial, TrackedServer
from legion_nb.errors import NodeError
from legion_nb.providers.node_admin import NodeAdminClient, admin_url
from legion_nb.providers.satellite import SatelliteClient, satellite_url

__all__ = [
    "NodeReach",
    "PinnedHostKeyRefusedError",
    "host_of",
    "reopen_host_key_window",
    "satellite_endpoint",
]


class PinnedHostKeyRefusedError(NodeError):
    """A server that already presented Legion's pinned host key now presents another one."""

    code = "host_key_pinned"

    def __init__(self, node: str, pinned: str) -> None:
        super().__init__(
            f"node {node} already answered with its pinned host key {pinned} and now presents another: "
            "refusing to trust it (it could be anyone). If the server was rebuilt outside Legion, "
            f"check it at the provider and run `legion server repin {node}`, then resume"
        )


def host_of(record: TrackedServer) -> str:
    """The address Legion reaches the server at: IPv4 when it has one, else IPv6, else ``""``."""
    return record.ipv4 or record.ipv6 or ""


class NodeReach:
    """Sessions and admin API clients for nodes, built from the state's records and keys."""

    def __init__(self, state: StatePort, access: NodeAccess, connector: NodeConnector) -> None:
        self.state = state
        self.access = access
        self.connector = connector

    # -- what the state holds ------------------------------------------------------------------

    def tracked(self, node: str) -> TrackedServer:
        """The node's tracked server, once it has an address."""
        record = self.state.state.tracked.servers.get(node)
        if record is None:
            raise NodeError(f"server {node} is not tracked; provision it first (`legion materialize`)")
        if not record.ipv4 and not record.ipv6:
            raise NodeNotReadyError(f"server {node} has no address yet; wait for the provider and retry")
        return record

    def node_security(self, node: str) -> NodeSecurity:
        material = material_of(self.state.state, node)
        if material is None or not material.security:
            raise NodeError(f"node {node} has no deployment material; run the operation again")
        return NodeSecurity.from_dict(material.security)

    def cluster_security(self, cluster: str) -> ClusterSecurity:
        material = self.state.state.deployment.clusters.get(cluster)
        if material is None:
            raise NodeError(f"cluster {cluster} has no CA yet; run the node operation again")
        return ClusterSecurity.from_dict(material.security)

    # -- sessions ----------------------------------------------------------------------------------

    def admin_target(self, node: str) -> SshTarget:
        """Legion's admin user, pinned to the host key Legion generated for the node."""
        record = self.tracked(node)
        return self.node_security(node).admin_ssh_target(host_of(record), self.access.ssh_port)

    async def image_target(self, node: str) -> SshTarget:
        """root on the provider image or installer, pinned to the key the node presents now."""
        record = self.tracked(node)
        security = self.node_security(node)
        host = host_of(record)
        presented = await self.connector.scan(node, host, self.access.ssh_port)
        return SshTarget(
            node=node,
            host=host,
            port=self.access.ssh_port,
            pinned_host_key=presented,
            client_key=security.admin.ssh_key.private_openssh,
            username="root",
        )

    async def open_before_install(self, node: str) -> tuple[NodeChannel, str]:
        """A session before the installed system is up: Legion's key if it already answers with it
        (a crash after the reboot), else the image's key while the trust-on-first-use window is
        open (module notes). Returns the channel and the node's stage."""
        try:
            channel = await self.connector.open(self.admin_target(node), retry=True)
        except HostKeyMismatchError as exc:
            security = self.node_security(node)
            if security.host_key_presented_by == self.tracked(node).provider_id:
                raise PinnedHostKeyRefusedError(node, fingerprint(security.pinned_host_key)) from exc
            channel = await self.connector.open(await self.image_target(node), retry=True)
        else:
            await self._presented(node)
        stage = (await run_step(channel, node, "legion-node phase")).strip()
        return channel, stage

    async def open_installed(self, node: str) -> NodeChannel:
        """A session with the installed system, pinned to Legion's host key."""
        channel = await self.connector.open(self.admin_target(node), retry=True)
        await self._presented(node)
        return channel

    async def _presented(self, node: str) -> None:
        """Record, once, that this server answered with the pinned key: the window is closed."""
        server = self.tracked(node).provider_id
        if self.node_security(node).host_key_presented_by == server:
            return

        def close(state: LegionState) -> tuple[LegionState, None]:
            return _with_presented_by(state, node, server), None

        await self.state.mutate(close, reason=f"node {node} presented its pinned host key")

    async def certificate_for_addresses(self, node: str) -> NodeSecurity:
        """The node certificate, re-issued (and persisted) when it does not name the node's
        addresses: the admin API and a satellite's Sender API are reached, and verified, by address."""
        record = self.tracked(node)
        security = self.node_security(node)
        addresses = [a for a in (record.ipv4, record.ipv6) if a]
        if _names_addresses(security, addresses):
            return security
        cluster = self.cluster_security(record.cluster)
        fresh = cluster.reissue_node_certificate(security, dns_names=[node], ip_addresses=addresses)

        def store(state: LegionState) -> tuple[LegionState, None]:
            material = material_of(state, node) or NodeMaterial(node=node)
            return with_material(state, replace(material, security=fresh.to_dict())), None

        await self.state.mutate(store, reason=f"node {node}: certificate for {', '.join(addresses)}")
        return fresh

    def satellite_client(self, node: str, *, timeout: float = 2.0) -> SatelliteClient:
        """The satellite's Sender API over HTTPS, Legion's operator certificate against the pinned CA."""
        found = satellite_endpoint(self.state.state, node, self.access.sender_port)
        if found is None:
            raise NodeNotReadyError(
                f"satellite {node} has no address or no cluster CA yet; run its setup again"
            )
        url, cluster = found
        return SatelliteClient(node, url, cluster.operator_ssl_context(), timeout=timeout)

    def admin_client(self, node: str) -> NodeAdminClient:
        """The node's admin API over HTTPS, Legion's operator certificate against the pinned CA."""
        record = self.tracked(node)
        context = self.cluster_security(record.cluster).operator_ssl_context()
        url = admin_url(host_of(record), self.access.admin_port)
        return NodeAdminClient(node, url, context)


def satellite_endpoint(state: LegionState, node: str, port: int) -> tuple[str, ClusterSecurity] | None:
    """Where a satellite's Sender API answers (its tracked address on ``port``) and the cluster
    security whose operator certificate drives it; None before it has an address or its cluster a
    CA (it was never set up)."""
    record = state.tracked.servers.get(node)
    host = host_of(record) if record is not None else ""
    material = state.deployment.clusters.get(record.cluster) if record is not None else None
    if not host or material is None:
        return None
    return satellite_url(host, port), ClusterSecurity.from_dict(material.security)


async def reopen_host_key_window(state: StatePort, node: str, *, reason: str) -> None:
    """Let the next install sessions of ``node`` trust the key its server presents (module notes).

    For the two acts that legitimately give a server a host key Legion did not install: Legion's
    own rebuild of it, and the operator's explicit re-pin.
    """
    material = material_of(state.state, node)
    security = material.security if material is not None else {}
    if not (security.get("host_key_presented_by") or security.get("satellite_host_key")):
        return

    def reopen(current: LegionState) -> tuple[LegionState, None]:
        return _with_presented_by(current, node, ""), None

    await state.mutate(reopen, reason=reason)


def _with_presented_by(state: LegionState, node: str, server: str) -> LegionState:
    material = material_of(state, node)
    if material is None or not material.security:
        return state
    security = {**material.security, "host_key_presented_by": server}
    if not server:  # reopened: a satellite's first-contact pin goes too
        security["satellite_host_key"] = ""
    return with_material(state, replace(material, security=security))


def _names_addresses(security: NodeSecurity, addresses: list[str]) -> bool:
    try:
        sans = security.certificate.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return not addresses
    named = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(addresses) <= named
