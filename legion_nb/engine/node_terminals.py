"""Terminals to managed nodes, opened by node name from what the encrypted state knows.

The engine API (``terminal_open`` and friends) takes only a node name: where the node is (its tracked
address), which host key to pin and which key to log in with (the node security material deployment
stored) all come from the state, so no caller - a notebook, a daemon client - ever handles a node's
private key. :class:`NodeTerminals` is the session service that owns the terminals: it builds its
:class:`~legion_nb.engine.terminal.TerminalService` on first use and closes every open session when
the session ends (logout, or the engine closes), because a shell must not outlive the unlocked state
whose key opened it.

The SSH port is a setting, not state: real nodes listen on 22; the sandbox's simulated nodes share
one loopback port, which a sandbox engine passes as ``TerminalSettings(ssh_port=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from legion_nb.engine.state.model import LegionState
from legion_nb.engine.state.validation import normalize_hostname
from legion_nb.errors import NodeError, NotTrackedError

if TYPE_CHECKING:  # asyncssh loads only when a terminal is first used, not with the engine
    from legion_nb.engine.resources.ports import StatePort
    from legion_nb.engine.ssh import SshOptions, SshTarget
    from legion_nb.engine.terminal import Connector, ServerTerminalManager, TerminalService

__all__ = ["NodeTargetError", "NodeTerminals", "TerminalSettings", "node_target"]


class NodeTargetError(NodeError):
    """The state does not (yet) say how to reach a tracked node: no address, no node material."""

    code = "node_target"


def node_target(state: LegionState, name: str, *, port: int = 22) -> SshTarget:
    """How Legion logs in to node ``name``: the admin user, its key and the pinned host key."""
    from legion_nb.engine.deployment.security import NodeSecurity  # noqa: PLC0415 - loads asyncssh

    node = normalize_hostname(name, what="server name")
    record = state.tracked.servers.get(node)
    if record is None:
        raise NotTrackedError(f"server {node} is not tracked: materialize it before opening a terminal")
    host = record.ipv4 or record.ipv6
    if not host:
        raise NodeTargetError(
            f"server {node} has no address in the state yet: wait for materialize, then retry"
        )
    material = state.deployment.nodes.get(node)
    if material is None or not material.security:
        raise NodeTargetError(
            f"server {node} has no node security material (host key, admin key) in the state: "
            "deploy it with materialize first"
        )
    return NodeSecurity.from_dict(material.security).admin_ssh_target(host, port)


@dataclass(frozen=True, slots=True)
class TerminalSettings:
    """How terminals reach the nodes: the SSH port (22 on real nodes; the sandbox's simulated nodes
    share another), and optional SSH options and connector (tests)."""

    ssh_port: int = 22
    options: SshOptions | None = None
    connector: Connector | None = None


class NodeTerminals:
    """The session service owning every terminal session (see the module notes)."""

    def __init__(self, state: StatePort, settings: TerminalSettings | None = None) -> None:
        self._state = state
        self.settings = settings or TerminalSettings()
        self._service: TerminalService | None = None
        self._manager: ServerTerminalManager | None = None

    async def __aenter__(self) -> NodeTerminals:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every open terminal: a shell must not outlive the unlocked state that opened it."""
        manager, self._manager, self._service = self._manager, None, None
        if manager is not None:
            await manager.aclose()

    @property
    def service(self) -> TerminalService:
        """The terminal service, created on first use (asyncssh loads only then)."""
        if self._service is None:
            from legion_nb.engine.terminal import ServerTerminalManager, TerminalService  # noqa: PLC0415

            settings = self.settings
            self._manager = ServerTerminalManager(options=settings.options, connector=settings.connector)
            self._service = TerminalService(self._manager, self._resolve)
        return self._service

    async def _resolve(self, name: str) -> SshTarget:
        return node_target(self._state.state, name, port=self.settings.ssh_port)
