"""The emulated Scaleway account: one Organization with one Project, and every resource in it.

Resources are plain dataclasses; the API modules render them into wire JSON. Ids come from an rng
seeded with the world's seed, so a seeded sandbox hands out the same ids run after run.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from legion_nb.emulators.history import past_servers
from legion_nb.emulators.scaleway.catalog import SERVER_TYPES, ZONES
from legion_nb.emulators.scaleway.errors import ScwApiError
from legion_nb.emulators.world import SandboxWorld

__all__ = [
    "DEFAULT_SERVERS_PER_ZONE",
    "DnsRecordEntry",
    "DnsZoneEntry",
    "FlexibleIp",
    "InstanceServer",
    "ScalewayAccount",
    "SecurityGroup",
    "ServerUsage",
    "SshKeyEntry",
]

DEFAULT_SERVERS_PER_ZONE = 200
"""Instances a Project may hold per zone before ``quotas_exceeded`` (unless told otherwise)."""


@dataclass
class InstanceServer:
    id: str
    zone: str
    name: str
    commercial_type: str
    image: dict[str, Any] | None
    tags: list[str]
    security_group_id: str
    dynamic_ip_required: bool
    created: datetime
    modified: datetime
    arch: str
    volumes: dict[str, Any]
    state: str = "stopped"
    state_detail: str = ""
    dynamic_ip: str | None = None
    dynamic_ip_id: str | None = None
    flexible_ip_ids: list[str] = field(default_factory=list)
    user_data: dict[str, bytes] = field(default_factory=dict, repr=False)
    """Cloud-init and other user data by key; may hold bootstrap secrets, hence no repr."""
    generation: int = 0
    """Bumped on every state change, so a finishing background transition can tell it is stale."""


@dataclass
class ServerUsage:
    """One Instance's billable lifetime, kept after the server is deleted."""

    server_id: str
    name: str
    commercial_type: str
    zone: str
    started: datetime
    ended: datetime | None = None


@dataclass
class SecurityGroup:
    id: str
    zone: str
    name: str
    description: str
    tags: list[str]
    stateful: bool
    inbound_default_policy: str
    outbound_default_policy: str
    enable_default_security: bool
    project_default: bool
    created: datetime
    modified: datetime
    rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FlexibleIp:
    id: str
    zone: str
    address: str
    ip_type: str
    tags: list[str]
    server_id: str | None = None
    reverse: str | None = None


@dataclass
class SshKeyEntry:
    id: str
    name: str
    public_key: str
    fingerprint: str
    created: datetime
    updated: datetime
    disabled: bool = False


@dataclass
class DnsRecordEntry:
    id: str
    name: str
    type: str
    data: str
    ttl: int
    priority: int = 0
    comment: str | None = None

    def matches(self, name: str, rtype: str, data: str | None = None, ttl: int | None = None) -> bool:
        return (
            self.name == name
            and self.type == rtype
            and (data is None or self.data == data)
            and (ttl is None or self.ttl == ttl)
        )


@dataclass
class DnsZoneEntry:
    domain: str
    subdomain: str
    updated: datetime
    records: list[DnsRecordEntry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.subdomain}.{self.domain}" if self.subdomain else self.domain


class ScalewayAccount:
    """Everything the emulated account holds, plus the identity the credentials block hands out."""

    def __init__(self, world: SandboxWorld, *, servers_per_zone: int = DEFAULT_SERVERS_PER_ZONE) -> None:
        self.world = world
        self.servers_per_zone = servers_per_zone
        self._ids = random.Random(f"{world.seed}:scaleway:ids")  # noqa: S311 - reproducible ids, not secrets
        self.access_key = "SCW" + "".join(
            world.rng.choice("ABCDEFGHJKMNPQRSTVWXYZ0123456789") for _ in range(17)
        )
        self.secret_key = self._uuid(world.rng)
        self.organization_id = self._uuid(world.rng)
        self.project_id = self._uuid(world.rng)
        self.servers: dict[str, InstanceServer] = {}
        self.security_groups: dict[str, SecurityGroup] = {}
        self.ips: dict[str, FlexibleIp] = {}
        self.ssh_keys: dict[str, SshKeyEntry] = {}
        self.dns_zones: dict[str, DnsZoneEntry] = {}
        self.usage: list[ServerUsage] = [
            ServerUsage(
                str(uuid.uuid5(uuid.UUID(self.project_id), past.name)),
                past.name,
                past.server_type,
                ZONES[0],
                past.created,
                past.deleted,
            )
            for past in past_servers(
                world.seed, "scaleway", world.history_days, world.now(), [t.name for t in SERVER_TYPES[:3]]
            )
        ]
        """Every Instance's billable lifetime, deleted ones and back-dated history included (for the
        Billing API)."""

    @staticmethod
    def _uuid(rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def new_id(self) -> str:
        return self._uuid(self._ids)

    def check_project(self, project: object, organization: object = None) -> None:
        """Refuse a request naming a Project or Organization this key has no rights on."""
        if project not in (None, "", self.project_id) or organization not in (None, "", self.organization_id):
            raise ScwApiError(
                403,
                "permissions_denied",
                "insufficient permissions",
                details=[{"resource": "project", "action": "write"}],
            )

    def owner_fields(self) -> dict[str, str]:
        return {"organization": self.organization_id, "project": self.project_id}
