"""What a simulated machine *is*: its phase, host keys, users' keys, files, services and journal.

A sandbox node goes through the same life a real cloud server does when Legion turns it into a
Tribes node, in phases::

    cloud-image --kexec--> installer --install--> installed-pending-reboot --reboot--> installed

* ``cloud-image``: what the provider booted. Its SSH host key was made by the image itself
  (Legion cannot know it in advance) and root accepts the keys given at server creation.
* ``installer``: the kexec'd install environment (same host key; files may be staged).
* ``install`` writes the OS: it needs the Legion-made host key staged at :data:`HOST_KEY_PATH`;
  admin keys staged at :data:`ADMIN_KEYS_PATH` become the admin user's ``authorized_keys``.
* after the ``reboot`` the node answers with Legion's host key: the *host-key swap*.
* ``installed``: certificates can be activated (the admin API starts) and Tribes configured.

This module holds state only; :mod:`legion_nb.emulators.nodes.shell` maps commands onto it and
:mod:`legion_nb.emulators.nodes.node` does the I/O. Nothing here imports another legion_nb layer.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from legion_nb.emulators.nodes.journal_history import JournalHistory
from legion_nb.emulators.nodes.telemetry import NodeTelemetry

__all__ = [
    "ADMIN_KEYS_PATH",
    "ADMIN_USER_PATH",
    "HOST_KEY_PATH",
    "PHASES",
    "SENDER_CONFIG_PATH",
    "TLS_CA_PATH",
    "TLS_CERT_PATH",
    "TLS_KEY_PATH",
    "TRIBES_CONFIG_PATH",
    "FaultPlan",
    "JournalEntry",
    "NodeSystem",
    "NodeTiming",
    "Phase",
    "UnknownServiceError",
    "service_unit",
]

Phase = Literal["cloud-image", "installer", "installed-pending-reboot", "installed"]
PHASES: tuple[Phase, ...] = ("cloud-image", "installer", "installed-pending-reboot", "installed")

HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
ADMIN_KEYS_PATH = "/etc/legion/admin_authorized_keys"
ADMIN_USER_PATH = "/etc/legion/admin_user"
TLS_CA_PATH = "/etc/tribes/tls/ca.pem"
TLS_CERT_PATH = "/etc/tribes/tls/node.pem"
TLS_KEY_PATH = "/etc/tribes/tls/node.key"
TRIBES_CONFIG_PATH = "/etc/tribes/sync.json"
NBDE_BINDING_PATH = "/etc/legion/nbde.json"
SENDER_CONFIG_PATH = "/etc/legion/sender.json"

_JOURNAL_LIMIT = 2000

_UNITS: dict[str, str] = {
    "tribes": "tribes",
    "tribes.service": "tribes",
    "tang": "tang",
    "tangd": "tang",
    "tangd.socket": "tang",
    "node-exporter": "node-exporter",
    "prometheus-node-exporter": "node-exporter",
    "prometheus-node-exporter.service": "node-exporter",
}
"""The systemd unit names a node answers to, mapped onto the services it simulates."""


class UnknownServiceError(ValueError):
    """A unit name the simulated node does not run (``systemctl`` answers "could not be found")."""


def service_unit(name: str) -> str:
    """The simulated service behind a unit name: ``tribes``, ``tang`` or ``node-exporter``."""
    try:
        return _UNITS[name]
    except KeyError:
        raise UnknownServiceError(f"Unit {name} could not be found.") from None


@dataclass
class NodeTiming:
    """How long simulated steps take, in seconds (small by default so tests stay quick)."""

    kexec: float = 0.05
    install: float = 0.1
    reboot: float = 0.1
    activate_certs: float = 0.0
    configure_tribes: float = 0.02
    tribes_start: float = 0.02
    """After configure, how long until the Tribes service reports ready."""


class FaultPlan:
    """Per-step failure injection: ``fail("install", "disk not found", times=2)``.

    Steps are the ``legion-node`` verbs (``kexec``, ``install``, ``reboot``, ``write-file``,
    ``activate-certs``, ``configure-tribes``, ``readiness``). A planned failure makes the next
    ``times`` runs of that step exit 1 with the message on stderr, without changing the node.
    """

    def __init__(self) -> None:
        self._planned: dict[str, list[str]] = {}

    def fail(self, step: str, message: str = "simulated failure", *, times: int = 1) -> None:
        self._planned.setdefault(step, []).extend([message] * times)

    def take(self, step: str) -> str | None:
        queue = self._planned.get(step)
        return queue.pop(0) if queue else None

    def clear(self) -> None:
        self._planned.clear()


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    time: float
    unit: str
    message: str
    priority: int = 6
    """Syslog priority: 3 err, 4 warning, 6 info."""


@dataclass
class NodeSystem:
    """The mutable machine state of one simulated node."""

    hostname: str
    cloud_host_key: str = field(repr=False)
    """OpenSSH private key the cloud image generated for itself."""
    authorized: dict[str, set[str]] = field(default_factory=dict, repr=False)
    """user -> public key lines (``type base64``, comments dropped)."""
    phase: Phase = "cloud-image"
    files: dict[str, str] = field(default_factory=dict, repr=False)
    installed_host_key: str | None = field(default=None, repr=False)
    admin_user: str | None = None
    tribes_config: dict[str, object] | None = field(default=None, repr=False)
    tribes_active_since: float | None = None
    admin_api_active: bool = False
    """The admin API is listening right now."""
    certs_activated: bool = False
    """Certificates were activated: the admin API comes back on every boot."""
    boot_time: float = field(default_factory=time.monotonic)
    stopped: set[str] = field(default_factory=set)
    """Services an operator stopped (``systemctl stop``); enabled units start again at boot."""
    sync_listening: bool = False
    """Peer sync accepts connections on its port right now."""
    sender_config: dict[str, object] | None = field(default=None, repr=False)
    """A satellite's Sender configuration (``legion-node satellite-setup``): the Sender service
    runs, and comes back at every boot."""
    admin_api_broken: bool = False
    """A fault: the admin API answers every request with HTTP 500."""
    journal: deque[JournalEntry] = field(default_factory=lambda: deque(maxlen=_JOURNAL_LIMIT))
    seed: int = 0
    """Makes the node's metrics and back-dated journal reproducible."""
    history_hours: float = 0.0
    """How far back the node's metrics and journal reach before it started (the sandbox's fleet
    gives its nodes a day and more, so an analyst has something to explore)."""
    page_limit: int | None = None
    """The most journal lines, or sampling steps (one sample of every series at one time), one
    admin API page carries; None: the API's own caps. A small limit makes a backfill many small
    pages, as from a node that answers slowly or caps its pages harder than Legion asks."""
    telemetry: NodeTelemetry = field(init=False, repr=False)
    history: JournalHistory = field(init=False, repr=False)
    _seq: int = 0

    def __post_init__(self) -> None:
        now = time.time()
        self.telemetry = NodeTelemetry(
            self.hostname, seed=self.seed, history_hours=self.history_hours, started_ms=int(now * 1000)
        )
        self.history = JournalHistory(self.hostname, seed=self.seed, end=now, hours=self.history_hours)
        self._seq = self.history.count

    @property
    def host_key(self) -> str:
        """The private host key sshd presents right now (Legion's once installed)."""
        return (
            self.installed_host_key
            if self.phase == "installed" and self.installed_host_key
            else (self.cloud_host_key)
        )

    def authorize(self, user: str, public_line: str) -> None:
        self.authorized.setdefault(user, set()).add(_key_id(public_line))

    def is_authorized(self, user: str, public_line: str) -> bool:
        return _key_id(public_line) in self.authorized.get(user, set())

    def log(self, unit: str, message: str, *, priority: int = 6) -> None:
        self._seq += 1
        self.journal.append(JournalEntry(self._seq, time.time(), unit, message, priority))

    def journal_after(self, seq: int, limit: int) -> list[JournalEntry]:
        """Journal entries with a sequence number above ``seq``, oldest first: the back-dated
        history, then what the node logged since it started (the newest ``_JOURNAL_LIMIT``)."""
        entries = [
            JournalEntry(line.seq, line.time, line.unit, line.message, line.priority)
            for line in self.history.lines(after=seq, limit=limit)
        ]
        if len(entries) < limit:
            entries.extend(e for e in self.journal if e.seq > seq)
        return entries[:limit]

    def uptime(self) -> float:
        return time.monotonic() - self.boot_time

    def tribes_state(self) -> str:
        """``active``, ``activating`` or ``inactive`` (systemd words)."""
        if self.tribes_active_since is None:
            return "inactive"
        return "active" if time.monotonic() >= self.tribes_active_since else "activating"

    # -- services (systemctl) and the faults a runbook can inject ---------------------------------

    def service_state(self, service: str) -> str:
        """``active``, ``activating`` or ``inactive``, as ``systemctl is-active`` says it."""
        if service == "tribes":
            return self.tribes_state()
        return "inactive" if service in self.stopped else "active"

    def stop_service(self, service: str) -> None:
        """Stop a service: its telemetry shows the outage (tribes) or stops (node-exporter)."""
        if service in self.stopped:
            return
        self.stopped.add(service)
        if service == "tribes":
            self.tribes_active_since = None
            self.telemetry.service_down()
        elif service == "node-exporter":
            self.telemetry.stall()
        self.log("systemd", f"Stopped {service}.")

    def start_service(self, service: str) -> None:
        """Start a stopped service again (tribes needs its configuration)."""
        self.stopped.discard(service)
        if service == "tribes":
            if self.tribes_config is None:
                raise UnknownServiceError("tribes is not configured yet: run legion-node configure-tribes")
            if self.tribes_active_since is None:
                self.tribes_active_since = time.monotonic()
            self.telemetry.service_up()
        elif service == "node-exporter":
            self.telemetry.resume()
        self.log("systemd", f"Started {service}.")

    def membership(self) -> list[str]:
        """The peers this node's Tribes configuration names (its view of the cluster)."""
        return sorted(str(p.get("name", "")) for p in _dicts((self.tribes_config or {}).get("peers")))

    def diverge_membership(self, peer: str | None = None) -> str:
        """A fault: drop ``peer`` (default: the first) from the node's own membership and
        allow-list, so its view of the cluster no longer matches the one Legion stored."""
        config = dict(self.tribes_config or {})
        peers = _dicts(config.get("peers"))
        if not peers:
            raise UnknownServiceError(f"node {self.hostname} has no cluster peers to diverge from")
        victim = peer or str(peers[0].get("name", ""))
        kept = [p for p in peers if str(p.get("name", "")) != victim]
        if len(kept) == len(peers):
            raise UnknownServiceError(f"node {self.hostname} has no peer {victim}")
        config["peers"] = kept
        self.tribes_config = config
        self.files[TRIBES_CONFIG_PATH] = json.dumps(config)
        self.telemetry.peers = len(kept)
        self.log("tribes", f"membership changed: {victim} left the peer list")
        return victim

    def nbde_binding(self) -> dict[str, object]:
        """The NBDE binding on disk (empty when none was written)."""
        try:
            binding = json.loads(self.files.get(NBDE_BINDING_PATH, "{}"))
        except ValueError:
            return {}
        return binding if isinstance(binding, dict) else {}

    def drop_tang_peer(self, peer: str | None = None) -> str:
        """A fault: remove one Tang peer (default: the first) from the node's NBDE binding."""
        binding = self.nbde_binding()
        tang = _dicts(binding.get("tang"))
        if not tang:
            raise UnknownServiceError(f"node {self.hostname} has no Tang peer in its NBDE binding")
        victim = peer or str(tang[0].get("node", ""))
        kept = [t for t in tang if str(t.get("node", "")) != victim]
        if len(kept) == len(tang):
            raise UnknownServiceError(f"node {self.hostname} has no Tang peer {victim}")
        binding["tang"] = kept
        self.files[NBDE_BINDING_PATH] = json.dumps(binding)
        self.log("clevis", f"Tang peer {victim} dropped from the disk binding")
        return victim

    def health(self) -> dict[str, object]:
        """What ``/v1/health`` reports: services, membership and the NBDE peers (never a secret)."""
        binding = self.nbde_binding()
        return {
            "status": "ok",
            "node": self.hostname,
            "phase": self.phase,
            "uptime_seconds": round(self.uptime(), 3),
            "services": {
                "tribes": self.service_state("tribes"),
                "tribes-sync": "active" if self.sync_listening else "inactive",
                "tang": self.service_state("tang"),
                "node-exporter": self.service_state("node-exporter"),
            },
            "membership": self.membership(),
            "nbde": {
                "mode": binding.get("mode"),
                "tang": sorted(str(t.get("node", "")) for t in _dicts(binding.get("tang"))),
            },
        }

    def readiness(self) -> dict[str, object]:
        checks = {
            "installed": self.phase == "installed",
            "host_key_swapped": self.phase == "installed" and self.installed_host_key is not None,
            "admin_api": self.admin_api_active,
            "tribes": self.tribes_state() == "active",
        }
        return {"node": self.hostname, "phase": self.phase, "ready": all(checks.values()), "checks": checks}

    def bootstrap_satellite(self, admin_user: str, authorized_key: str, hostname: str) -> None:
        """A satellite keeps its image: Legion's admin user and key and the hostname take effect now."""
        self.admin_user = admin_user
        self.files[ADMIN_USER_PATH] = admin_user
        self.files[ADMIN_KEYS_PATH] = authorized_key + "\n"
        self.authorize(admin_user, authorized_key)
        self.hostname = hostname

    def finish_install(self) -> None:
        """``install`` succeeded: the OS is on disk, effective at the next boot."""
        self.installed_host_key = self.files[HOST_KEY_PATH]
        self.admin_user = self.files.get(ADMIN_USER_PATH, "legion-admin").strip() or "legion-admin"
        self.phase = "installed-pending-reboot"

    def boot(self) -> None:
        """A (re)boot: the pending install takes effect, running services come back."""
        self.boot_time = time.monotonic()
        if self.phase == "installed-pending-reboot":
            self.phase = "installed"
            for line in self.files.get(ADMIN_KEYS_PATH, "").splitlines():
                if line.strip() and self.admin_user:
                    self.authorize(self.admin_user, line)
        self.stopped.clear()  # every unit is enabled: a boot starts them all again
        self.telemetry.resume()
        if self.tribes_config is not None:
            self.tribes_active_since = time.monotonic()
            self.telemetry.service_up()
        self.log("kernel", f"booted into {self.phase}")


def _dicts(value: object) -> list[dict[str, object]]:
    """The mappings in a JSON list (anything else: none)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _key_id(public_line: str) -> str:
    return " ".join(public_line.split()[:2])
