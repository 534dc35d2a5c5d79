"""Talking to a node: sessions, the managed-node command vocabulary, and how long to wait.

The node side speaks the managed-node command vocabulary (``legion-node phase|write-file|kexec|
install|reboot|activate-certs|configure-tribes|readiness``; the sandbox's simulated nodes answer the
same words) over SSH through a :class:`NodeConnector`. The default connector is
:class:`SshNodeConnector` on :mod:`legion_nb.engine.ssh`. A step the node refuses is a
:class:`NodeStepError` carrying the node's own last line of error output.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from legion_nb.engine.cluster.firewall_plan import ADMIN_API_PORT
from legion_nb.engine.ssh import (
    CommandResult,
    NodeUnreachableError,
    ReconnectPolicy,
    SshOptions,
    SshTarget,
    connect,
    connect_with_retry,
    scan_host_key,
)
from legion_nb.errors import NodeError

__all__ = [
    "ADMIN_KEYS_PATH",
    "ADMIN_USER_PATH",
    "HOST_KEY_PATH",
    "NBDE_BINDING_PATH",
    "SENDER_PORT",
    "TLS_CA_PATH",
    "TLS_CERT_PATH",
    "TLS_KEY_PATH",
    "TRIBES_CONFIG_PATH",
    "NodeAccess",
    "NodeChannel",
    "NodeConnector",
    "NodeNotReadyError",
    "NodeStepError",
    "ReadinessPolicy",
    "SshNodeConnector",
    "read_readiness",
    "run_step",
]

# Where the managed-node contract puts things (the node reads them from these paths).
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
ADMIN_KEYS_PATH = "/etc/legion/admin_authorized_keys"
ADMIN_USER_PATH = "/etc/legion/admin_user"
TLS_CA_PATH = "/etc/tribes/tls/ca.pem"
TLS_CERT_PATH = "/etc/tribes/tls/node.pem"
TLS_KEY_PATH = "/etc/tribes/tls/node.key"
TRIBES_CONFIG_PATH = "/etc/tribes/sync.json"
NBDE_BINDING_PATH = "/etc/legion/nbde.json"
SENDER_PORT = 8470
"""A satellite's Sender API port (HTTPS, mutual TLS with the cluster CA)."""


class NodeStepError(NodeError):
    """A node refused an install step (the node's own one-line reason is in the message)."""

    code = "node_step"


class NodeNotReadyError(NodeError):
    """The node did not report ready in time; retrying the operation later may help."""

    code = "node_not_ready"
    temporary = True


class NodeChannel(Protocol):
    """One session with a node: commands in, results out (``SshConnection`` is one)."""

    async def run(self, command: str, *, input: str | None = None) -> CommandResult: ...

    async def wait_closed(self) -> None:
        """Until the node ends the session (it went down for a reboot)."""
        ...

    async def aclose(self) -> None: ...


class NodeConnector(Protocol):
    """Opens sessions to nodes. ``open`` accepts only ``target.pinned_host_key``; ``scan`` reads the key
    a node presents, unverified, for the pre-install window only (see :mod:`.node_reach`)."""

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
    sender_port: int = SENDER_PORT
    """Where a satellite's Sender API (its HTTP health) listens."""
    provisioning: float = 600.0
    """Seconds the provision phase waits for the node actor to track and start the server."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def run_step(channel: NodeChannel, node: str, command: str, input: str | None = None) -> str:
    """Run one managed-node command; its output, or :class:`NodeStepError` with the node's reason."""
    result = await channel.run(command, input=input)
    if not result.ok:
        last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        step = command.split()[:2]
        raise NodeStepError(f"node {node}: '{' '.join(step)}' failed (exit {result.exit_status}): {last}")
    return result.stdout


async def read_readiness(channel: NodeChannel) -> dict[str, Any]:
    """The node's own readiness report; ``{"ready": False}`` when it gives none that parses."""
    result = await channel.run("legion-node readiness")
    try:
        report = json.loads(result.stdout or "{}")
    except ValueError:
        return {"ready": False}
    return report if isinstance(report, dict) else {"ready": False}
