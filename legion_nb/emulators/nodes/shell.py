"""The commands a simulated node answers, over SSH ``exec`` or in its small interactive shell.

Ordinary commands (enough for health checks and an operator poking around)::

    echo ARGS...   hostname   uptime   whoami   id -un   true   false   stty size
    cat /etc/os-release | cat PATH   systemctl reboot   reboot
    systemctl status|is-active|stop|start|restart UNIT   (tribes, tangd, prometheus-node-exporter)
    logger [-p PRIORITY] [-t TAG] TEXT...                a journal line (unit: TAG, else the user)
    ls [PATH]   uname [-a]   df -h   free -m   ps   ip addr   journalctl [-u UNIT] [-n N]
                (from the node's state: :mod:`legion_nb.emulators.nodes.everyday`)

Stopping a unit is a fault a runbook can inject from the node's own shell, as on a real node:
``systemctl stop tribes`` stops the service, closes peer sync and shows in the node's telemetry;
``systemctl stop prometheus-node-exporter`` stalls its metrics.

The install vocabulary Legion's deployment runtime drives, one verb per phase. Each verb exits 0 on
success and 1 with one line on stderr otherwise; :class:`~legion_nb.emulators.nodes.system.FaultPlan`
can make any of them fail on purpose::

    legion-node phase                      print the phase (cloud-image, installer, ...)
    legion-node write-file PATH [MODE]     stdin -> PATH (stage keys, certificates, config)
    legion-node kexec                      boot into the installer (the connection drops)
    legion-node install                    write the OS; needs the host key staged at HOST_KEY_PATH
    legion-node reboot                     reboot; a pending install takes effect (host-key swap)
    legion-node activate-certs             check the staged CA/cert/key and start the mTLS admin API
    legion-node configure-tribes           stdin: the sync handoff JSON; starts Tribes and peer sync
    legion-node readiness                  JSON readiness report; exit 0 only when ready
    legion-node satellite-bootstrap        stdin: {admin_user, authorized_key, hostname} (root only)
    legion-node satellite-setup            stdin: {node, sender_port, ca_certificate, certificate,
                                           private_key, clients}; installs and starts the Sender
                                           (HTTPS, mTLS: only the named client certificates)

A satellite keeps its cloud image: its two verbs run there and are idempotent (a repeat leaves what
is set up); the Sender API answers only once ``satellite-setup`` ran.

Commands that take a while (``install``, ``configure-tribes``) really take that long
(:class:`~legion_nb.emulators.nodes.system.NodeTiming`), so timeouts and progress are exercised.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from legion_nb.emulators.nodes.everyday import everyday
from legion_nb.emulators.nodes.system import (
    HOST_KEY_PATH,
    SENDER_CONFIG_PATH,
    TLS_CA_PATH,
    TLS_CERT_PATH,
    TLS_KEY_PATH,
    TRIBES_CONFIG_PATH,
    NodeSystem,
    NodeTiming,
    UnknownServiceError,
    service_unit,
)
from legion_nb.emulators.nodes.system import FaultPlan as NodeFaults

__all__ = ["CommandOutcome", "NodeControl", "NodeShell"]

_OS_RELEASE = {
    "cloud-image": (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
    ),
    "installer": 'PRETTY_NAME="Legion installer"\nNAME="Legion installer"\nID=legion-installer\n',
    "installed": 'PRETTY_NAME="Tribes OS 1"\nNAME="Tribes OS"\nVERSION_ID="1"\nID=tribes\nID_LIKE=debian\n',
}
_PRIORITIES = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
_REQUIRED_SYNC_KEYS = ("cluster", "node", "peers", "allow", "ca_certificate", "certificate", "private_key")


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    status: int
    stdout: str = ""
    stderr: str = ""


class NodeControl(Protocol):
    """What the shell needs from the running node: reboots, the admin API, the session's terminal."""

    def schedule_reboot(self, *, into_installer: bool) -> None: ...

    async def start_admin_api(self) -> None: ...

    async def start_sync(self) -> None: ...

    async def stop_service(self, service: str) -> None: ...

    async def start_service(self, service: str) -> None: ...

    async def start_sender(self) -> None: ...


def _ok(text: str = "") -> CommandOutcome:
    return CommandOutcome(0, text if not text or text.endswith("\n") else text + "\n")


def _fail(message: str, status: int = 1) -> CommandOutcome:
    return CommandOutcome(status, "", message.rstrip("\n") + "\n")


class NodeShell:
    """Runs one command line against a node's :class:`NodeSystem`."""

    def __init__(
        self, system: NodeSystem, control: NodeControl, timing: NodeTiming, faults: NodeFaults
    ) -> None:
        self.system = system
        self.control = control
        self.timing = timing
        self.faults = faults

    @staticmethod
    def reads_stdin(command: str) -> bool:
        """Whether ``command`` consumes stdin (the SSH server then reads it to EOF first)."""
        words = _split(command) or []
        return words[:1] == ["legion-node"] and words[1:2] in (
            ["write-file"],
            ["configure-tribes"],
            ["satellite-bootstrap"],
            ["satellite-setup"],
        )

    async def run(
        self,
        command: str,
        *,
        user: str,
        stdin: str = "",
        term_size: tuple[int, int] | None = None,
    ) -> CommandOutcome:
        words = _split(command)
        if words is None:
            return _fail(f"sh: syntax error in {command!r}", 2)
        if not words:
            return _ok()
        name, args = words[0], words[1:]
        self.system.log("sshd", f"{user}: {name}")
        if name == "legion-node":
            return await self._legion_node(args, stdin, user)
        simple: dict[str, Callable[[], CommandOutcome]] = {
            "echo": lambda: _ok(" ".join(args)),
            "hostname": lambda: _ok(self.system.hostname),
            "uptime": self._uptime,
            "whoami": lambda: _ok(user),
            "true": lambda: CommandOutcome(0),
            "false": lambda: CommandOutcome(1),
        }
        if name in simple:
            return simple[name]()
        if words == ["id", "-un"]:
            return _ok(user)
        if words == ["stty", "size"]:
            if term_size is None:
                return _fail("stty: 'standard input': Inappropriate ioctl for device")
            cols, rows = term_size
            return _ok(f"{rows} {cols}")
        if name == "cat":
            return self._cat(args)
        if name == "systemctl":
            return await self._systemctl(args)
        if name == "logger":
            return self._logger(args, user)
        if name == "reboot":
            return self._reboot(into_installer=False)
        # the node's own address; a stand-in control (tests) may have none
        answer = everyday(self.system, getattr(self.control, "address", "127.0.0.1"), name, args)
        if answer is not None:
            return CommandOutcome(*answer)
        return _fail(f"sh: {name}: command not found", 127)

    # -- ordinary commands -------------------------------------------------------------------

    def _uptime(self) -> CommandOutcome:
        minutes = int(self.system.uptime() // 60)
        return _ok(f" {time.strftime('%H:%M:%S')} up {minutes} min,  1 user,  load average: 0.00, 0.01, 0.05")

    def _cat(self, args: list[str]) -> CommandOutcome:
        out = []
        for path in args:
            if path == "/etc/os-release":
                phase = "installed" if self.system.phase == "installed" else self.system.phase
                out.append(_OS_RELEASE.get(phase, _OS_RELEASE["installer"]))
            elif path == "/etc/hostname":
                out.append(self.system.hostname + "\n")
            elif path in self.system.files:
                out.append(self.system.files[path])
            else:
                return _fail(f"cat: {path}: No such file or directory")
        return CommandOutcome(0, "".join(out))

    async def _systemctl(self, args: list[str]) -> CommandOutcome:
        if args == ["reboot"]:
            return self._reboot(into_installer=False)
        if len(args) != 2 or args[0] not in ("status", "is-active", "stop", "start", "restart"):
            return _fail(f"systemctl: unsupported here: {' '.join(args)}")
        verb, unit = args
        try:
            service = service_unit(unit)
            if verb in ("stop", "restart"):
                await self.control.stop_service(service)
            if verb in ("start", "restart"):
                await self.control.start_service(service)
        except UnknownServiceError as exc:
            return _fail(str(exc), 4 if verb in ("status", "is-active") else 5)
        if verb in ("stop", "start", "restart"):
            return CommandOutcome(0)
        state = self.system.service_state(service)
        if verb == "is-active":
            return CommandOutcome(0 if state == "active" else 3, state + "\n")
        sub = {"active": "running", "activating": "start", "inactive": "dead"}[state]
        text = (
            f"● {service}.service\n"
            f"     Loaded: loaded (/lib/systemd/system/{service}.service; enabled)\n"
            f"     Active: {state} ({sub})\n"
        )
        return CommandOutcome(0 if state == "active" else 3, text)

    def _logger(self, args: list[str], user: str) -> CommandOutcome:
        """``logger [-p PRIORITY] [-t TAG] TEXT...``: one journal line, priority notice by default."""
        tag, priority, words = user, 5, list(args)
        while len(words) >= 2 and words[0] in ("-t", "-p"):
            flag, value, words = words[0], words[1], words[2:]
            if flag == "-t":
                tag = value
            else:
                level = value.rsplit(".", 1)[-1]
                if level not in _PRIORITIES:
                    return _fail(f"logger: unknown priority name: {value}")
                priority = _PRIORITIES[level]
        if not words:
            return _fail("logger: usage: logger [-p PRIORITY] [-t TAG] TEXT...", 1)
        self.system.log(tag, " ".join(words), priority=priority)
        return CommandOutcome(0)

    def _reboot(self, *, into_installer: bool) -> CommandOutcome:
        self.control.schedule_reboot(into_installer=into_installer)
        return _ok()

    # -- the install vocabulary ---------------------------------------------------------------

    async def _legion_node(self, args: list[str], stdin: str, user: str) -> CommandOutcome:
        if not args:
            return _fail(
                "legion-node: name a step (phase, write-file, kexec, install, reboot, "
                "activate-certs, configure-tribes, readiness, satellite-bootstrap, satellite-setup)",
                2,
            )
        verb, rest = args[0], args[1:]
        steps: dict[str, Callable[[list[str], str], Awaitable[CommandOutcome]]] = {
            "phase": self._phase,
            "write-file": self._write_file,
            "kexec": self._kexec,
            "install": self._install,
            "reboot": self._reboot_step,
            "activate-certs": self._activate_certs,
            "configure-tribes": self._configure_tribes,
            "readiness": self._readiness,
            "satellite-setup": self._satellite_setup,
        }
        if verb == "satellite-bootstrap":
            steps[verb] = lambda rest, text: self._satellite_bootstrap(user, text)
        step = steps.get(verb)
        if step is None:
            return _fail(f"legion-node: unknown step {verb!r}", 2)
        injected = self.faults.take(verb)
        if injected is not None:
            self.system.log("legion-node", f"{verb} failed: {injected}")
            return _fail(f"legion-node {verb}: {injected}")
        outcome = await step(rest, stdin)
        self.system.log("legion-node", f"{verb} exit {outcome.status}")
        return outcome

    async def _phase(self, args: list[str], stdin: str) -> CommandOutcome:
        return _ok(self.system.phase)

    async def _write_file(self, args: list[str], stdin: str) -> CommandOutcome:
        if len(args) not in (1, 2) or not args[0].startswith("/"):
            return _fail("legion-node write-file: usage: write-file /ABSOLUTE/PATH [MODE] < content", 2)
        self.system.files[args[0]] = stdin
        return _ok()

    async def _kexec(self, args: list[str], stdin: str) -> CommandOutcome:
        if self.system.phase != "cloud-image":
            return _fail(f"legion-node kexec: only from the cloud image (node is {self.system.phase})")
        return self._reboot(into_installer=True)

    async def _install(self, args: list[str], stdin: str) -> CommandOutcome:
        if self.system.phase != "installer":
            return _fail(f"legion-node install: run kexec first (node is {self.system.phase})")
        staged = self.system.files.get(HOST_KEY_PATH, "")
        if "PRIVATE KEY" not in staged:
            return _fail(f"legion-node install: no host key staged at {HOST_KEY_PATH}")
        try:
            serialization.load_ssh_private_key(staged.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            return _fail(f"legion-node install: the host key at {HOST_KEY_PATH} cannot be read")
        await asyncio.sleep(self.timing.install)
        self.system.finish_install()
        return _ok("installed; reboot to activate")

    async def _reboot_step(self, args: list[str], stdin: str) -> CommandOutcome:
        return self._reboot(into_installer=False)

    async def _activate_certs(self, args: list[str], stdin: str) -> CommandOutcome:
        if self.system.phase != "installed":
            return _fail(
                f"legion-node activate-certs: install and reboot first (node is {self.system.phase})"
            )
        problem = _check_tls(self.system.files)
        if problem:
            return _fail(f"legion-node activate-certs: {problem}")
        await asyncio.sleep(self.timing.activate_certs)
        await self.control.start_admin_api()
        return _ok("admin api active")

    async def _configure_tribes(self, args: list[str], stdin: str) -> CommandOutcome:
        if not self.system.admin_api_active:
            return _fail("legion-node configure-tribes: activate-certs first")
        try:
            config = json.loads(stdin)
        except ValueError:
            return _fail("legion-node configure-tribes: stdin is not JSON")
        missing = [k for k in _REQUIRED_SYNC_KEYS if not isinstance(config, dict) or k not in config]
        if missing:
            return _fail(f"legion-node configure-tribes: missing {', '.join(missing)}")
        await asyncio.sleep(self.timing.configure_tribes)
        self.system.files[TRIBES_CONFIG_PATH] = stdin
        self.system.tribes_config = config
        self.system.telemetry.peers = len(config.get("peers", []))
        self.system.tribes_active_since = time.monotonic() + self.timing.tribes_start
        await self.control.start_sync()
        return _ok(f"tribes configured with {len(config['peers'])} peer(s)")

    async def _readiness(self, args: list[str], stdin: str) -> CommandOutcome:
        report = self.system.readiness()
        return CommandOutcome(0 if report["ready"] else 1, json.dumps(report, sort_keys=True) + "\n")

    async def _satellite_bootstrap(self, user: str, stdin: str) -> CommandOutcome:
        if user != "root":
            return _fail("legion-node satellite-bootstrap: run it as root")
        if self.system.phase != "cloud-image":
            phase = self.system.phase
            return _fail(f"legion-node satellite-bootstrap: satellites keep their image (node is {phase})")
        handoff = _json_object(stdin)
        fields = ("admin_user", "authorized_key", "hostname")
        if handoff is None or not all(isinstance(handoff.get(k), str) and handoff[k] for k in fields):
            return _fail(f"legion-node satellite-bootstrap: stdin must be JSON with {', '.join(fields)}")
        self.system.bootstrap_satellite(
            str(handoff["admin_user"]), str(handoff["authorized_key"]), str(handoff["hostname"])
        )
        return _ok(f"admin user {handoff['admin_user']} ready")

    async def _satellite_setup(self, args: list[str], stdin: str) -> CommandOutcome:
        if self.system.admin_user is None or self.system.phase != "cloud-image":
            return _fail("legion-node satellite-setup: run satellite-bootstrap first")
        config = _json_object(stdin)
        if config is None or not isinstance(config.get("sender_port"), int):
            return _fail("legion-node satellite-setup: stdin must be JSON with node and sender_port")
        problem = _check_sender_tls(config)
        if problem:
            return _fail(f"legion-node satellite-setup: {problem}")
        await asyncio.sleep(self.timing.install)  # installing the Sender takes an install step's time
        self.system.files[SENDER_CONFIG_PATH] = stdin
        self.system.sender_config = config
        try:
            await self.control.start_sender()
        except RuntimeError as exc:
            return _fail(f"legion-node satellite-setup: {exc}")
        return _ok("sender active")


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _check_tls(files: dict[str, str]) -> str | None:
    """Why the staged TLS material cannot serve mTLS, or ``None`` when it can."""
    for path in (TLS_CA_PATH, TLS_CERT_PATH, TLS_KEY_PATH):
        if path not in files:
            return f"nothing staged at {path}"
    try:
        ca = x509.load_pem_x509_certificate(files[TLS_CA_PATH].encode("ascii"))
        cert = x509.load_pem_x509_certificate(files[TLS_CERT_PATH].encode("ascii"))
        key = serialization.load_pem_private_key(files[TLS_KEY_PATH].encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        return "staged certificate material cannot be read"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the node certificate was not issued by the staged CA"
    if cert.public_key() != key.public_key():
        return "the node key does not match the node certificate"
    return None


def _check_sender_tls(config: dict[str, object]) -> str | None:
    """Why a Sender configuration cannot serve mTLS, or ``None`` when it can."""
    fields = ("ca_certificate", "certificate", "private_key")
    if not all(isinstance(config.get(k), str) for k in fields):
        return f"stdin must carry {', '.join(fields)} as PEM text"
    clients = config.get("clients")
    if not isinstance(clients, list) or not clients or not all(isinstance(c, str) for c in clients):
        return "stdin must name the client certificates the Sender answers (clients)"
    paths = (TLS_CA_PATH, TLS_CERT_PATH, TLS_KEY_PATH)
    return _check_tls({path: str(config[k]) for path, k in zip(paths, fields, strict=True)})


def _split(command: str) -> list[str] | None:
    try:
        return shlex.split(command)
    except ValueError:
        return None
