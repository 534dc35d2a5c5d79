"""One simulated server: a real SSH server and an mTLS HTTPS admin API on the server's 127.x address.

``SimulatedNode`` is an async context manager. It listens for SSH on ``address:ssh_port`` with a
host key the "cloud image" generated, accepts the public keys it was created with for ``root``,
and answers the commands of :mod:`legion_nb.emulators.nodes.shell` (exec requests, an interactive
shell on a PTY with resize, or a piped shell). Reboots (``reboot``, ``legion-node kexec|reboot``)
really drop every connection, keep the port closed for the simulated boot time, and reopen it on
the same port; after an install the node comes back with the Legion-made host key.

Ports are ephemeral (port 0) unless given, and stay the same across reboots. Every address is
checked to be loopback before anything binds. Background work (reboots) is owned by the node and
cancelled by :meth:`SimulatedNode.aclose`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import asyncssh

from legion_nb.emulators.httpkit import ServedApp, serve_app
from legion_nb.emulators.nodes.admin_api import TangKeys, create_admin_app
from legion_nb.emulators.nodes.shell import CommandOutcome, NodeShell
from legion_nb.emulators.nodes.streams import SatelliteSenders, create_sender_app
from legion_nb.emulators.nodes.sync import SyncListener
from legion_nb.emulators.nodes.system import (
    TLS_CA_PATH,
    TLS_CERT_PATH,
    TLS_KEY_PATH,
    FaultPlan,
    NodeSystem,
    NodeTiming,
)
from legion_nb.memfile import load_cert_chain

__all__ = ["SimulatedNode"]


class SimulatedNode:
    """A sandbox machine reachable over SSH (and, once certificates are active, mTLS HTTPS)."""

    def __init__(
        self,
        address: str,
        *,
        hostname: str = "node",
        authorized_keys: Iterable[str] = (),
        ssh_port: int = 0,
        admin_port: int = 0,
        sync_port: int = 0,
        sender_port: int | None = None,
        timing: NodeTiming | None = None,
        seed: int = 0,
        history_hours: float = 0.0,
        page_limit: int | None = None,
    ) -> None:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(
                f"node address {address} is outside 127.0.0.0/8; simulated nodes live on loopback"
            )
        self.address = address
        self.timing = timing or NodeTiming()
        self.faults = FaultPlan()
        cloud_key = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode("ascii")
        self.system = NodeSystem(
            hostname=hostname,
            cloud_host_key=cloud_key,
            seed=seed,
            history_hours=history_hours,
            page_limit=page_limit,
        )
        for line in authorized_keys:
            self.system.authorize("root", line)
        self.shell = NodeShell(self.system, self, self.timing, self.faults)
        self.tang = TangKeys()
        self.ssh_port = ssh_port
        self.admin_port = admin_port
        self.sync_port = sync_port
        self.sender_port = sender_port
        """Where the satellite Sender API listens (HTTPS, mTLS) once ``legion-node satellite-setup``
        ran; None: this node serves none."""
        self.senders = SatelliteSenders()
        self._sender_api: ServedApp | None = None
        self._sender_served: dict[str, object] = {}
        self._sync: SyncListener | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._admin: ServedApp | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._reboot_pending: bool | None = None
        self._up = asyncio.Event()
        self.boots = 0

    # -- what a test or the fleet looks at -------------------------------------------------------

    @property
    def hostname(self) -> str:
        return self.system.hostname

    @property
    def host_public_key(self) -> str:
        """The public host key the node presents right now (``type base64``)."""
        key = asyncssh.import_private_key(self.system.host_key)
        return str(key.export_public_key("openssh").decode("ascii").strip())

    @property
    def is_up(self) -> bool:
        """True once a boot has opened every port, False once a power-off has closed them all
        (a watcher that sees False may dial and meet only refusals)."""
        return self._up.is_set()

    async def wait_up(self) -> None:
        """Until the SSH port accepts connections again (after a reboot)."""
        await self._up.wait()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._acceptor is not None:
            return
        self._running = True
        self.system.boot()
        await self._listen()
        self._up.set()

    async def aclose(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._go_down()
        await self.senders.aclose()
        self._running = False

    async def power_off(self) -> None:
        """Cut the power: connections drop and every port (SSH, admin API, peer sync, Sender API)
        closes, so clients meet a refused connection; stream sessions stop sending. The disk (phase,
        files, keys, the Sender's configuration and sessions) stays for the next boot."""
        await self._go_down()

    async def power_on(self, *, into_installer: bool = False) -> None:
        """Boot from whatever is on disk and return once SSH (and an activated admin API) listen."""
        if self._acceptor is not None:
            return
        if into_installer:
            self.system.phase = "installer"
        self.system.boot()
        self.boots += 1
        await self._listen()
        if self.system.certs_activated:
            await self.start_admin_api()
        if self.system.tribes_config is not None:
            await self.start_sync()
        if self.system.sender_config is not None:
            await self.start_sender()
            self.senders.boot()
        self._up.set()

    async def reboot(self, *, into_installer: bool = False) -> None:
        """Reboot now (as the provider's reset button would) and return once SSH is back."""
        await self.power_off()
        await asyncio.sleep(self.timing.kexec if into_installer else self.timing.reboot)
        await self.power_on(into_installer=into_installer)

    async def __aenter__(self) -> SimulatedNode:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- NodeControl (called by the shell) ---------------------------------------------------

    def schedule_reboot(self, *, into_installer: bool) -> None:
        """Reboot once the current command has answered (like ``systemctl reboot`` returning first)."""
        self._reboot_pending = into_installer

    async def start_admin_api(self) -> None:
        """(Re)start the HTTPS admin API with the staged TLS files; clients need a cert from the CA."""
        if self._admin is not None:
            await self._admin.aclose()
            self._admin = None
        context = self._tls_context()
        self._admin = await serve_app(
            create_admin_app(self.system, self.tang), self.address, self.admin_port, ssl_context=context
        )
        self.admin_port = self._admin.port
        self.system.admin_api_active = True
        self.system.certs_activated = True
        self.system.log("admin-api", f"listening on {self.address}:{self.admin_port} (mTLS)")

    async def start_sender(self) -> None:
        """Serve the satellite Sender API (HTTPS, mTLS with the configured CA, answering only the
        configured client names) once set up; a node given no sender port serves none. Idempotent:
        a running API with the same configuration is kept, a changed one restarts it (the stream
        sessions go on)."""
        if self.sender_port is None:
            raise RuntimeError(f"node {self.hostname} has no sender port: it is not a satellite")
        config = self.system.sender_config or {}
        if self._sender_api is not None:
            if self._sender_served == config:
                return
            await self._sender_api.aclose()
            self._sender_api = None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=str(config["ca_certificate"]))
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        load_cert_chain(context, str(config["certificate"]), str(config["private_key"]))
        clients = config.get("clients")
        allowed = frozenset(str(c) for c in clients) if isinstance(clients, list) else frozenset()
        app = create_sender_app(self.senders, self.hostname, allowed)
        self._sender_api = await serve_app(app, self.address, self.sender_port, ssl_context=context)
        self._sender_served = dict(config)
        self.sender_port = self._sender_api.port
        self.system.log("sender", f"listening on {self.address}:{self.sender_port} (mTLS)")

    async def start_sync(self) -> None:
        """(Re)start Tribes peer sync with the configured allow-list (mTLS with the node certificate)."""
        if self._sync is not None:
            await self._sync.aclose()
        listener = SyncListener(self.system, self.address, self.sync_port, self._tls_context())
        allow = (self.system.tribes_config or {}).get("allow", [])
        listener.allow([str(c) for c in allow] if isinstance(allow, list) else [])
        await listener.start()
        self._sync = listener
        self.sync_port = listener.port
        self.system.sync_listening = True
        self.system.log("tribes-sync", f"listening on {self.address}:{self.sync_port} (mTLS)")

    async def stop_service(self, service: str) -> None:
        """``systemctl stop``: stopping tribes also closes its peer sync port."""
        self.system.stop_service(service)
        if service == "tribes":
            await self._stop_sync()

    async def start_service(self, service: str) -> None:
        """``systemctl start``: tribes reopens its peer sync port."""
        self.system.start_service(service)
        running = self._acceptor is not None and self.system.certs_activated
        if service == "tribes" and self._sync is None and running:
            await self.start_sync()

    # -- faults (sandbox control calls; the shell reaches the service ones too) -------------------

    def stall_metrics(self) -> None:
        """The exporter hangs: no sample newer than now is served until :meth:`resume_metrics`."""
        self.system.telemetry.stall()
        self.system.log("node-exporter", "scrape stalled")

    def resume_metrics(self) -> None:
        self.system.telemetry.resume()
        self.system.log("node-exporter", "scrape resumed")

    def break_admin_api(self, broken: bool = True) -> None:
        """The admin API keeps listening but answers every request with HTTP 500 (until unbroken)."""
        self.system.admin_api_broken = broken
        self.system.log("admin-api", "internal error: handler crashed" if broken else "handler recovered")

    def diverge_membership(self, peer: str | None = None) -> str:
        """Drop one peer (default: the first) from the node's own membership; returns its name."""
        return self.system.diverge_membership(peer)

    def drop_tang_peer(self, peer: str | None = None) -> str:
        """Drop one Tang peer (default: the first) from the node's NBDE binding; returns its name."""
        return self.system.drop_tang_peer(peer)

    # -- internals ---------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        """The node's mTLS server context, its key loaded from memory (as Legion's own contexts are)."""
        if not self._running:
            raise RuntimeError("the node is not running")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=self.system.files[TLS_CA_PATH])
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        load_cert_chain(context, self.system.files[TLS_CERT_PATH], self.system.files[TLS_KEY_PATH])
        return context

    async def _listen(self) -> None:
        host_key = asyncssh.import_private_key(self.system.host_key)
        self._acceptor = await asyncssh.create_server(
            lambda: _NodeSshServer(self),
            self.address,
            self.ssh_port,
            server_host_keys=[host_key],
            process_factory=self._handle,
            encoding="utf-8",
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )
        if not self.ssh_port:
            self.ssh_port = int(self._acceptor.sockets[0].getsockname()[1])

    async def _stop_sync(self) -> None:
        if self._sync is not None:
            await self._sync.aclose()
            self._sync = None
        self.system.sync_listening = False

    async def _go_down(self) -> None:
        await self._stop_sync()
        if self._sender_api is not None:
            await self._sender_api.aclose()
            self._sender_api = None
            self._sender_served = {}
        await self.senders.power_off()
        if self._admin is not None:
            await self._admin.aclose()
            self._admin = None
            self.system.admin_api_active = False
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        connections, self._connections = list(self._connections), set()
        for conn in connections:
            conn.close()
        for conn in connections:
            await conn.wait_closed()
        self._up.clear()

    def _spawn_pending_reboot(self) -> None:
        into_installer, self._reboot_pending = self._reboot_pending, None
        if into_installer is None:
            return
        task = asyncio.get_running_loop().create_task(self.reboot(into_installer=into_installer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, process: asyncssh.SSHServerProcess[str]) -> None:
        user = str(process.get_extra_info("username"))
        status = 0
        try:
            if process.command is not None:
                status = await self._exec(process, user, process.command)
            elif process.get_terminal_type():
                status = await self._interactive(process, user)
            else:
                status = await self._script(process, user)
        except (asyncssh.Error, ConnectionError, asyncssh.BreakReceived, asyncssh.SignalReceived):
            status = 255  # the client went away or interrupted: nothing left to answer
        process.exit(status)
        self._spawn_pending_reboot()

    async def _exec(self, process: asyncssh.SSHServerProcess[str], user: str, command: str) -> int:
        stdin = await process.stdin.read() if self.shell.reads_stdin(command) else ""
        outcome = await self.shell.run(command, user=user, stdin=stdin)
        _write(process, outcome, merge=False)
        return outcome.status

    async def _script(self, process: asyncssh.SSHServerProcess[str], user: str) -> int:
        """A shell without a PTY (``ssh node < script``): run each line until EOF."""
        status = 0
        async for line in process.stdin:
            command = line.strip()
            if not command:
                continue  # like sh: a blank line runs nothing and leaves $? alone
            if command in ("exit", "logout"):
                break
            outcome = await self.shell.run(command, user=user)
            _write(process, outcome, merge=False)
            status = outcome.status
            if self._reboot_pending is not None:
                break
        return status

    async def _interactive(self, process: asyncssh.SSHServerProcess[str], user: str) -> int:
        """A login shell on a PTY: prompt, line editing (asyncssh's), resize-aware ``stty size``."""
        status = 0
        prompt = f"{user}@{self.hostname}:~# "
        process.stdout.write(f"Welcome to {self.hostname} ({self.system.phase})\n")
        show_prompt = True
        while True:
            if show_prompt:
                process.stdout.write(prompt)
            try:
                line = await process.stdin.readline()
            except asyncssh.TerminalSizeChanged:
                show_prompt = False  # the window changed size; keep reading the same line
                continue
            show_prompt = True
            if not line:
                break
            command = line.strip()
            if command in ("exit", "logout"):
                break
            cols, rows = process.get_terminal_size()[:2]
            outcome = await self.shell.run(command, user=user, term_size=(cols, rows))
            _write(process, outcome, merge=True)
            status = outcome.status
            if self._reboot_pending is not None:
                break
        return status


def _write(process: asyncssh.SSHServerProcess[str], outcome: CommandOutcome, *, merge: bool) -> None:
    process.stdout.write(outcome.stdout)
    if outcome.stderr:
        (process.stdout if merge else process.stderr).write(outcome.stderr)


class _NodeSshServer(asyncssh.SSHServer):
    """Public-key logins only, checked against the node's current ``authorized_keys``."""

    def __init__(self, node: SimulatedNode) -> None:
        self._node = node
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._node._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._node._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        line = key.export_public_key("openssh").decode("ascii")
        return self._node.system.is_authorized(username, line)
