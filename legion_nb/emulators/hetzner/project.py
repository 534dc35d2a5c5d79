"""One Hetzner project: every resource the emulator holds, and the lookups that cross resources.

Records are plain dataclasses; ``*_wire`` functions render them in the API's JSON shape. Cross-resource
facts (which firewalls protect a server, which floating IPs point at it) are computed on read, so there
is one source of truth per relation.

Addresses: a server's IPv4 address is its simulated machine's identity in the world, always in
``127.0.0.0/8``. Its public addresses are primary IPs (records of their own, as on the real platform).
IPv6 is a ``/64`` block per server, as Hetzner gives by default, but a loopback ``/64`` does not exist
(``::1`` is a single address), so blocks come from the documentation prefix ``2001:db8::/32``
(RFC 3849, never routed): a server's block embeds its loopback IPv4 address
(``127.20.0.7`` -> ``2001:db8:7f14:7::/64``), a standalone IPv6 primary IP gets ``2001:db8:0:N::/64``.
Nothing in the sandbox listens on these addresses and clients dial the IPv4 address; the IPv6 block
exists so that the server record has the real shape and DNS/firewall code sees an IPv6 address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from legion_nb.emulators.hetzner.actions import ActionStore
from legion_nb.emulators.hetzner.catalog import IMAGES, LOCATIONS, SERVER_TYPES, Image, Location, ServerType
from legion_nb.emulators.hetzner.labels import parse_selector
from legion_nb.emulators.hetzner.wire import ApiError, Json, by_id, invalid_input
from legion_nb.emulators.httpkit import isoformat
from legion_nb.emulators.world import SandboxWorld

OUTGOING_BYTES_PER_SECOND = 40_000
"""Every sandbox server sends about 100 GB a month (well inside its included traffic)."""

__all__ = [
    "FirewallRecord",
    "FloatingIpRecord",
    "HetznerProject",
    "PrimaryIpRecord",
    "RRset",
    "ServerRecord",
    "SshKeyRecord",
    "Zone",
]


@dataclass
class ServerRecord:
    id: int
    name: str
    status: str
    created: str
    server_type: ServerType
    location: Location
    image: Image | None
    ipv4: str
    ipv4_id: int
    labels: dict[str, str]
    ssh_keys: list[int]
    ipv6_id: int | None = None
    user_data: str | None = field(default=None, repr=False)
    protection: dict[str, bool] = field(default_factory=lambda: {"delete": False, "rebuild": False})
    rescue_enabled: bool = False


@dataclass
class SshKeyRecord:
    id: int
    name: str
    fingerprint: str
    public_key: str
    labels: dict[str, str]
    created: str


@dataclass
class FirewallRecord:
    id: int
    name: str
    labels: dict[str, str]
    rules: list[Json]
    created: str
    servers: list[int] = field(default_factory=list)
    selectors: list[str] = field(default_factory=list)


@dataclass
class FloatingIpRecord:
    id: int
    name: str
    description: str | None
    ip: str
    type: str
    home_location: Location
    server: int | None
    labels: dict[str, str]
    created: str


@dataclass
class PrimaryIpRecord:
    """A primary IP: an IPv4 address or an IPv6 ``/64`` block (``ip`` is then ``"prefix::/64"``)."""

    id: int
    name: str
    type: str
    ip: str
    location: Location
    labels: dict[str, str]
    created: str
    assignee_id: int | None = None
    auto_delete: bool = False

    def dns_ptr(self) -> list[Json]:
        if self.type == "ipv6":
            return []
        return [{"ip": self.ip, "dns_ptr": f"static.{self.ip}.clients.your-server.de"}]

    def wire(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "ip": self.ip,
            "type": self.type,
            "dns_ptr": self.dns_ptr(),
            "location": self.location.wire(),
            "blocked": False,
            "protection": {"delete": False},
            "labels": dict(self.labels),
            "created": self.created,
            "assignee_id": self.assignee_id,
            "assignee_type": "server",
            "auto_delete": self.auto_delete,
        }


def ipv6_block_for(ipv4: str) -> str:
    """The ``/64`` a server with loopback address ``ipv4`` gets: its address embedded in ``2001:db8::/32``."""
    embedded = int(ipaddress.IPv4Address(ipv4))
    return str(ipaddress.IPv6Network(((0x20010DB8 << 96) | (embedded << 64), 64)))


@dataclass
class RRset:
    name: str
    type: str
    ttl: int | None
    labels: dict[str, str]
    records: list[Json]
    protection: dict[str, bool] = field(default_factory=lambda: {"change": False})


@dataclass
class Zone:
    id: int
    name: str
    mode: str
    ttl: int
    labels: dict[str, str]
    created: str
    rrsets: dict[tuple[str, str], RRset] = field(default_factory=dict)
    protection: dict[str, bool] = field(default_factory=lambda: {"delete": False})
    deleting: bool = False


class HetznerProject:
    """The state of one emulated project plus id allocation."""

    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        self.actions = ActionStore(world)
        self.servers: dict[int, ServerRecord] = {}
        self.ssh_keys: dict[int, SshKeyRecord] = {}
        self.firewalls: dict[int, FirewallRecord] = {}
        self.floating_ips: dict[int, FloatingIpRecord] = {}
        self.primary_ips: dict[int, PrimaryIpRecord] = {}
        self.zones: dict[int, Zone] = {}
        self._ids: dict[str, int] = {}
        self._standalone_blocks = 0

    def new_id(self, kind: str) -> int:
        """Ids look like the real platform's (large, increasing) and differ per resource kind."""
        start = {
            "server": 55_000_001,
            "ssh_key": 21_000_001,
            "firewall": 1_400_001,
            "floating_ip": 8_400_001,
            "primary_ip": 77_000_001,
            "zone": 310_001,
        }.get(kind, 1)
        value = self._ids.get(kind, start)
        self._ids[kind] = value + 1
        return value

    # -- catalog lookups (by id or name, as the API accepts both) -------------------------------

    @staticmethod
    def server_type(value: object, field_name: str = "server_type") -> ServerType:
        for st in SERVER_TYPES:
            if value in (st.id, st.name, str(st.id)):
                return st
        raise invalid_input(field_name, f"server type {value!r} not found")

    @staticmethod
    def location(value: object, field_name: str = "location") -> Location:
        for loc in LOCATIONS:
            if value in (loc.id, loc.name, str(loc.id)):
                return loc
        raise invalid_input(field_name, f"location {value!r} not found")

    @staticmethod
    def image(value: object, architecture: str, field_name: str = "image") -> Image:
        for image in IMAGES:
            if value in (image.id, str(image.id)):
                if image.architecture != architecture:
                    raise invalid_input(
                        field_name, f"image {value} is for {image.architecture}, not {architecture}"
                    )
                return image
        for image in IMAGES:
            if value == image.name and image.architecture == architecture:
                return image
        raise invalid_input(field_name, f"image {value!r} not found for architecture {architecture}")

    # -- resource lookups ------------------------------------------------------------------

    def get_server(self, raw_id: str) -> ServerRecord:
        return by_id(self.servers, raw_id, "server")

    def server_by_ref(self, value: object, field_name: str) -> ServerRecord:
        server = self.servers.get(value) if isinstance(value, int) else None
        if server is None:
            raise invalid_input(field_name, f"server {value!r} not found")
        return server

    def ssh_key_by_ref(self, value: object, field_name: str = "ssh_keys") -> SshKeyRecord:
        for key in self.ssh_keys.values():
            if value in (key.id, key.name, str(key.id)):
                return key
        raise invalid_input(field_name, f"SSH key {value!r} not found")

    def ensure_unlocked(self, kind: str, resource_id: int) -> None:
        """423 locked while another action runs on the resource, as the real API does."""
        if self.actions.running_for(kind, resource_id):
            raise ApiError(423, "locked", f"{kind} {resource_id} is locked: an action is still running")

    # -- primary IPs -------------------------------------------------------------------------

    def add_primary_ip(
        self,
        kind: str,
        location: Location,
        *,
        name: str | None = None,
        ip: str | None = None,
        assignee_id: int | None = None,
        auto_delete: bool = False,
        labels: dict[str, str] | None = None,
    ) -> PrimaryIpRecord:
        """A new primary IP; without ``ip`` it gets a fresh loopback address or a standalone ``/64``."""
        pid = self.new_id("primary_ip")
        if ip is None and kind == "ipv4":
            ip = self.world.addresses.allocate()
        elif ip is None:
            self._standalone_blocks += 1
            ip = str(ipaddress.IPv6Network(((0x20010DB8 << 96) | (self._standalone_blocks << 64), 64)))
        record = PrimaryIpRecord(
            id=pid,
            name=name or f"primary_ip-{pid}",
            type=kind,
            ip=ip,
            location=location,
            labels=dict(labels or {}),
            created=self._now(),
            assignee_id=assignee_id,
            auto_delete=auto_delete,
        )
        self.primary_ips[pid] = record
        return record

    def drop_primary_ip(self, record: PrimaryIpRecord) -> None:
        """Forget ``record``; an IPv4 address goes back to the world's pool."""
        if self.primary_ips.pop(record.id, None) is not None and record.type == "ipv4":
            self.world.addresses.release(record.ip)

    def release_primary_ips(self, server: ServerRecord) -> None:
        """A deleted server's primary IPs: deleted when ``auto_delete`` is set, otherwise unassigned."""
        for pid in (server.ipv4_id, server.ipv6_id):
            record = self.primary_ips.get(pid) if pid is not None else None
            if record is None:
                continue
            if record.auto_delete:
                self.drop_primary_ip(record)
            else:
                record.assignee_id = None

    def _now(self) -> str:
        return isoformat(self.world.now())

    def _traffic(self, server: ServerRecord, per_second: int) -> int:
        """Bytes moved in the current billing period (the calendar month), at a steady rate."""
        now = self.world.now()
        since = max(
            datetime.fromisoformat(server.created),
            now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        )
        return max(0, int((now - since).total_seconds())) * per_second

    # -- cross-resource views --------------------------------------------------------------

    def firewalls_of(self, server: ServerRecord) -> list[int]:
        ids: list[int] = []
        for fw in self.firewalls.values():
            by_selector = any(parse_selector(s)(server.labels) for s in fw.selectors)
            if server.id in fw.servers or by_selector:
                ids.append(fw.id)
        return ids

    def servers_matching(self, selector: str) -> list[int]:
        match = parse_selector(selector)
        return [s.id for s in self.servers.values() if match(s.labels)]

    def _ipv6_wire(self, server: ServerRecord) -> Json | None:
        record = self.primary_ips.get(server.ipv6_id) if server.ipv6_id is not None else None
        if record is None:
            return None
        return {"id": record.id, "ip": record.ip, "blocked": False, "dns_ptr": []}

    def server_wire(self, server: ServerRecord) -> Json:
        return {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "created": server.created,
            "public_net": {
                "ipv4": {
                    "id": server.ipv4_id,
                    "ip": server.ipv4,
                    "blocked": False,
                    "dns_ptr": f"static.{server.ipv4}.clients.your-server.de",
                },
                "ipv6": self._ipv6_wire(server),
                "floating_ips": [f.id for f in self.floating_ips.values() if f.server == server.id],
                "firewalls": [{"id": fid, "status": "applied"} for fid in self.firewalls_of(server)],
            },
            "private_net": [],
            "server_type": server.server_type.wire(),
            "location": server.location.wire(),
            "image": server.image.wire() if server.image else None,
            "iso": None,
            "rescue_enabled": server.rescue_enabled,
            "locked": bool(self.actions.running_for("server", server.id)),
            "backup_window": None,
            "outgoing_traffic": self._traffic(server, OUTGOING_BYTES_PER_SECOND),
            "ingoing_traffic": self._traffic(server, 2 * OUTGOING_BYTES_PER_SECOND),
            "included_traffic": server.server_type.included_tb * 1024**4,
            "protection": dict(server.protection),
            "labels": dict(server.labels),
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": server.server_type.disk,
            "placement_group": None,
        }
