"""The Scaleway adapter: :class:`legion_nb.providers.contract.ProviderAdapter` over Scaleway's HTTP APIs.

What it relies on from Scaleway (see ``/work/shared/reference/providers.md``):

* Instance resources are zonal (``/instance/v1/zones/{zone}/...``), so their ids are returned as
  ``"<zone>/<uuid>"``; lists walk every zone the adapter knows (the ``zones`` option, default
  :data:`DEFAULT_ZONES`). Instance lists page with ``page``/``per_page`` (<= 100) and report the total
  in ``X-Total-Count``; the newer IAM/Domain/Marketplace APIs use ``page_size`` and ``total_count``.
* A server is created **stopped**: :meth:`ScalewayAdapter.create_server` powers it on and returns a
  ``server_running`` operation. Scaleway has no action objects to poll, so operations are answered
  by reading the servers (one list request per zone per poll, ``?servers=id,id``). The poll is
  level-based: a server still ``stopped`` under a ``server_running`` operation is powered on again,
  which is safe because a power-on cannot happen twice.
* Names are not unique. Ownership labels travel as ``key=value`` tags, and after a create whose
  outcome is unknown the adapter re-lists by the ``legion/id`` tag: found means it landed.
  IAM SSH keys have no tags, so their ownership is encoded in the name (``name--<legion id>``,
  ``encode_owned_name``).
* Firewalls are security groups, which are zonal too: :meth:`create_firewall` creates them in the
  credentials' zone and :meth:`apply_firewall` refuses servers of another zone. SSH keys are
  Project-wide (Scaleway injects every key of the Project), so ``ServerSpec.ssh_key_ids`` needs no
  per-server wiring. ``user_data`` is stored as the ``cloud-init`` key before the first boot.
* Billing reads the Project's monthly consumption lines (``/billing/v2beta1/consumptions``).
* There is no rebuild or rescue in this adapter (capabilities say so).

Mutations are sent once; the only re-sends are the idempotent power-on settles described above.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast

import httpx

from legion_nb.errors import (
    ProviderError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from legion_nb.providers.contract import (
    Capability,
    ProviderCredentials,
    require_capability,
)
from legion_nb.providers.http import ApiClient, OutcomeUnknownError, ProviderResponseError, json_object
from legion_nb.providers.ownership import (
    LEGION_ID_LABEL,
    OwnershipLabels,
    encode_owned_name,
    labels_from_tags,
    labels_match,
)
from legion_nb.providers.records import (
    AwaitedServerState,
    BillingEntry,
    BillingPeriod,
    Catalog,
    CatalogLocation,
    DnsRecord,
    DnsRecordType,
    DnsZone,
    Firewall,
    FirewallRule,
    Operation,
    OperationState,
    PendingServer,
    PublicIp,
    PublicIpKind,
    RateLimitInfo,
    Server,
    ServerSpec,
    SshKey,
    server_state_operation,
)
from legion_nb.providers.scaleway import convert, wire
from legion_nb.providers.scaleway.convert import PROVIDER, qualified, split_id
from legion_nb.providers.scaleway.errors import REQUEST_ID_HEADER, TransientStateError, parse_error

__all__ = ["CAPABILITIES", "DEFAULT_ENDPOINT", "DEFAULT_ZONES", "ScalewayAdapter"]

DEFAULT_ENDPOINT = "https://api.scaleway.com"
DEFAULT_ZONES: tuple[str, ...] = ("fr-par-1", "fr-par-2", "nl-ams-1", "pl-waw-1")
PER_PAGE = 100
FIND_ATTEMPTS = 5
"""Reads spent looking for a create whose answer was lost, before leaving it to resilience."""
CAPABILITIES = frozenset(
    {
        Capability.COMPUTE,
        Capability.SSH_KEYS,
        Capability.FIREWALL,
        Capability.FLOATING_IP,
        Capability.DNS,
        Capability.BILLING,
    }
)

T = TypeVar("T")

_SETTLE_LATER = (ProviderUnavailableError, ProviderRateLimitedError, TransientStateError)
"""Errors after which a power-on is simply tried again by the next poll of its operation."""

KIND_RUNNING: AwaitedServerState = "server_running"
KIND_OFF: AwaitedServerState = "server_off"
KIND_DELETED: AwaitedServerState = "server_deleted"


class ScalewayAdapter:
    """Scaleway through an injected ``httpx.AsyncClient`` (which the caller owns and closes).

    Credentials: secret ``secret_key``; options ``project_id`` (required), ``zone`` (default
    ``fr-par-1``), ``zones`` (comma-separated zones to manage, default :data:`DEFAULT_ZONES` plus
    ``zone``) and ``organization_id`` (informational).
    """

    def __init__(self, client: httpx.AsyncClient, credentials: ProviderCredentials) -> None:
        secret = credentials.secret("secret_key")
        self._project = credentials.option("project_id")
        self._zone = credentials.options.get("zone") or DEFAULT_ZONES[0]
        configured = [z.strip() for z in (credentials.options.get("zones") or "").split(",") if z.strip()]
        self._zones = tuple(dict.fromkeys([self._zone, *(configured or DEFAULT_ZONES)]))
        self._image_labels: dict[str, str] = {}
        """Instance image id -> Marketplace label, learnt by :meth:`fetch_catalog`."""
        self._api = ApiClient(
            PROVIDER,
            client,
            credentials.endpoint or DEFAULT_ENDPOINT,
            parse_error=parse_error,
            request_id_header=REQUEST_ID_HEADER,
            headers={"X-Auth-Token": secret, "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ScalewayAdapter(endpoint={self._api.base_url!r}, zone={self._zone!r})"

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def capabilities(self) -> frozenset[Capability]:
        return CAPABILITIES

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        return self._api.rate_limit

    # ------------------------------------------------------------------------------------------ plumbing

    async def _instance_list(
        self, zone: str, resource: str, key: str, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Every item of an Instance API list, page by page until ``X-Total-Count`` is reached."""
        path = f"/instance/v1/zones/{zone}/{resource}"
        items: list[Any] = []
        page = 1
        while True:
            response = await self._api.request(
                "GET", path, params={**(params or {}), "page": page, "per_page": PER_PAGE}
            )
            body = json_object(PROVIDER, self._api.decode(response), path)
            chunk = body.get(key)
            if not isinstance(chunk, list):
                raise ProviderResponseError(PROVIDER, f"GET {path} lacks the {key!r} list")
            items.extend(chunk)
            total = _int_header(response.headers.get("x-total-count"))
            if not chunk or len(chunk) < PER_PAGE or (total is not None and len(items) >= total):
                return items
            page += 1

    async def _paged(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a newer-API list, page by page until ``total_count`` is reached."""
        items: list[Any] = []
        page = 1
        while True:
            body = await self._api.get_object(path, {**(params or {}), "page": page, "page_size": PER_PAGE})
            chunk = body.get(key)
            if not isinstance(chunk, list):
                raise ProviderResponseError(PROVIDER, f"GET {path} lacks the {key!r} list")
            items.extend(chunk)
            total = body.get("total_count")
            if not chunk or len(chunk) < PER_PAGE or (isinstance(total, int) and len(items) >= total):
                return items
            page += 1

    async def _settle_create(
        self, create: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T | None]]
    ) -> T:
        """Send a create once; when its outcome is unknown, re-read and accept what is visible.

        Names are not unique at Scaleway, so ``find`` looks for the ``legion/id`` tag. Nothing found,
        or a failed re-read, re-raises the original error: the outcome is still unknown, and any other
        error class would tell the broker the create never happened (it would send it again).
        """
        try:
            return await create()
        except OutcomeUnknownError:
            found = await self._find_settled(find)
            if found is None:
                raise
            return found

    async def _find_settled(self, find: Callable[[], Awaitable[T | None]]) -> T | None:
        """``find()``, repeated while the read fails temporarily; None when nothing is visible or the
        read cannot tell. Reads are safe to repeat, and a read error escaping a create would make the
        broker resend the create itself."""
        for attempt in range(FIND_ATTEMPTS):
            try:
                return await find()
            except (ProviderUnavailableError, ProviderRateLimitedError) as exc:
                if attempt + 1 < FIND_ATTEMPTS:
                    await asyncio.sleep(min(getattr(exc, "retry_after", None) or 0.05, 1.0))
            except ProviderError:  # anything else: cannot tell, resilience keeps settling
                return None
        return None

    # --------------------------------------------------------------------------------------- identity

    async def verify_credentials(self) -> None:
        await self._api.get_object(
            f"/instance/v1/zones/{self._zone}/servers", {"per_page": 1, "project": self._project}
        )

    async def fetch_catalog(self) -> Catalog:
        offers: dict[str, dict[str, wire.ServerTypeJson]] = {}
        available: dict[str, list[str]] = {}
        images: dict[tuple[str, str], list[str]] = {}
        for zone in self._zones:
            products = await self._api.get_object(
                f"/instance/v1/zones/{zone}/products/servers", {"per_page": PER_PAGE}
            )
            stock = await self._api.get_object(
                f"/instance/v1/zones/{zone}/products/servers/availability", {"per_page": PER_PAGE}
            )
            stock_by_type = stock.get("servers") or {}
            for type_name, entry in (products.get("servers") or {}).items():
                offers.setdefault(type_name, {})[zone] = entry
                status = convert.enum((stock_by_type.get(type_name) or {}).get("availability") or "available")
                if status != "shortage":
                    available.setdefault(type_name, []).append(zone)
            for local in await self._paged("/marketplace/v2/local-images", "local_images", {"zone": zone}):
                label = str(local.get("label") or "")
                if label:
                    self._image_labels[str(local.get("id"))] = label
                    images.setdefault((label, str(local.get("arch") or "x86_64")), []).append(zone)
        locations = tuple(convert.LOCATIONS.get(z) or CatalogLocation(z, z, "") for z in self._zones)
        return Catalog(
            provider=PROVIDER,
            currency="EUR",
            server_types=tuple(
                convert.server_type(name, per_zone, available.get(name, []))
                for name, per_zone in sorted(offers.items())
            ),
            locations=locations,
            images=tuple(
                convert.catalog_image(label, arch, zones, self._zones)
                for (label, arch), zones in sorted(images.items())
            ),
            source="live",
            fetched_at=datetime.now(UTC),
        )

    # ---------------------------------------------------------------------------------------- servers

    def _owned_params(self, labels: Mapping[str, str] | None) -> dict[str, Any]:
        """List filters: this Project, and the labels as tags (Scaleway filters tags server-side)."""
        params: dict[str, Any] = {"project": self._project}
        if labels:
            params["tags"] = ",".join(convert.tags_for(labels))
        return params

    async def _servers_in(self, zone: str, params: Mapping[str, Any]) -> list[Server]:
        raw = await self._instance_list(zone, "servers", "servers", params)
        return [convert.server(item, zone, self._image_labels) for item in raw]

    async def list_servers(self, labels: Mapping[str, str] | None = None) -> list[Server]:
        params = self._owned_params(labels)
        found: list[Server] = []
        for zone in self._zones:
            found.extend(s for s in await self._servers_in(zone, params) if labels_match(s.labels, labels))
        return found

    async def get_server(self, server_id: str) -> Server:
        zone, raw = split_id(server_id, "server")
        body = await self._api.get_object(f"/instance/v1/zones/{zone}/servers/{raw}")
        return convert.server(_member(body, "server"), zone, self._image_labels)

    async def find_servers_by_name(self, name: str) -> list[Server]:
        found: list[Server] = []
        for zone in self._zones:
            matches = await self._servers_in(zone, {"project": self._project, "name": name})
            found.extend(s for s in matches if s.name == name)
        return found

    async def _find_tagged(self, zone: str, resource: str, labels: Mapping[str, str]) -> Any | None:
        """The one ``resource`` item of ``zone`` tagged with the Legion id of ``labels``, else None."""
        ownership = OwnershipLabels.from_labels(labels)
        if ownership is None:
            return None
        tag = f"{LEGION_ID_LABEL}={ownership.legion_id}"
        matches = await self._instance_list(zone, resource, resource, {"project": self._project, "tags": tag})
        return matches[0] if len(matches) == 1 else None

    async def _find_owned(self, zone: str, labels: Mapping[str, str]) -> Server | None:
        raw = await self._find_tagged(zone, "servers", labels)
        return convert.server(raw, zone, self._image_labels) if raw is not None else None

    async def create_server(self, spec: ServerSpec) -> PendingServer:
        zone = spec.location
        body: dict[str, Any] = {
            "name": spec.name,
            "commercial_type": spec.server_type,
            "image": spec.image,
            "project": self._project,
            "tags": convert.tags_for(spec.labels),
            "dynamic_ip_required": True,
        }

        async def create() -> Server:
            created = await self._api.send_object("POST", f"/instance/v1/zones/{zone}/servers", body)
            return convert.server(_member(created, "server"), zone, self._image_labels)

        server = await self._settle_create(create, lambda: self._find_owned(zone, spec.labels))
        # From here on the server exists: an error escaping now must not read as "nothing happened".
        if spec.user_data is not None and server.provider_status == "stopped":
            _, raw = split_id(server.id, "server")
            try:
                await self._api.request(
                    "PATCH",
                    f"/instance/v1/zones/{zone}/servers/{raw}/user_data/cloud-init",
                    text=spec.user_data,
                )
            except ProviderError as exc:
                raise OutcomeUnknownError(
                    PROVIDER,
                    f"server {server.id} was created but its user data was not stored: {exc.message}",
                ) from exc
        if server.status == "off":
            # Whatever stops this power-on, polling the returned operation sends it again.
            with contextlib.suppress(ProviderError):
                await self._action(server.id, "poweron")
            server = dataclasses.replace(server, status="provisioning", provider_status="starting")
        return PendingServer(
            server=server, operations=(server_state_operation(PROVIDER, server.id, KIND_RUNNING),)
        )

    async def _action(self, server_id: str, action: wire.ServerAction) -> None:
        zone, raw = split_id(server_id, "server")
        await self._api.send_object(
            "POST", f"/instance/v1/zones/{zone}/servers/{raw}/action", {"action": action}
        )

    async def delete_server(self, server_id: str) -> Operation | None:
        server = await self.get_server(server_id)
        if server.status == "deleting":
            # An earlier terminate is already under way.
            return server_state_operation(PROVIDER, server_id, KIND_DELETED)
        if server.provider_status == "running":
            await self._action(server_id, "terminate")
            return server_state_operation(PROVIDER, server_id, KIND_DELETED)
        zone, raw = split_id(server_id, "server")
        await self._api.request("DELETE", f"/instance/v1/zones/{zone}/servers/{raw}")
        return None

    async def reboot_server(self, server_id: str) -> Operation | None:
        await self._action(server_id, "reboot")
        return server_state_operation(PROVIDER, server_id, KIND_RUNNING)

    async def rebuild_server(self, server_id: str, image: str) -> Operation | None:
        require_capability(PROVIDER, CAPABILITIES, Capability.REBUILD)
        return None  # unreachable: Scaleway Instances have no rebuild

    async def power_on(self, server_id: str) -> Operation | None:
        await self._action(server_id, "poweron")
        return server_state_operation(PROVIDER, server_id, KIND_RUNNING)

    async def power_off(self, server_id: str) -> Operation | None:
        await self._action(server_id, "poweroff")
        return server_state_operation(PROVIDER, server_id, KIND_OFF)

    async def poll_operations(self, operations: Sequence[Operation]) -> list[OperationState]:
        by_zone: dict[str, list[str]] = {}
        for op in operations:
            if op.resource_id:
                zone, raw = split_id(op.resource_id, "server")
                by_zone.setdefault(zone, []).append(raw)
        seen: dict[str, wire.ServerJson] = {}
        for zone, ids in by_zone.items():
            for item in await self._instance_list(
                zone, "servers", "servers", {"servers": ",".join(dict.fromkeys(ids))}
            ):
                seen[qualified(zone, str(item.get("id")))] = item
        return [await self._operation_state(op, seen.get(op.resource_id or "")) for op in operations]

    async def _operation_state(self, op: Operation, body: wire.ServerJson | None) -> OperationState:
        state = convert.enum(body.get("state")).replace("_", " ") if body is not None else None
        if op.kind == KIND_DELETED:
            return OperationState(op, "success" if body is None else "running", 100 if body is None else 50)
        if body is None:
            return OperationState(op, "error", error_code="not_found", error_message="the server disappeared")
        if state == "locked":
            return OperationState(op, "error", error_code="locked", error_message="the server is locked")
        if op.kind == KIND_RUNNING:
            if state == "running":
                return OperationState(op, "success", 100)
            if state in ("stopped", "stopped in place") and op.resource_id:
                # Level-based: if this fails too, the next poll finds it stopped and tries again.
                with contextlib.suppress(*_SETTLE_LATER):
                    await self._action(op.resource_id, "poweron")
            return OperationState(op, "running", 50)
        if op.kind == KIND_OFF:
            done = state in ("stopped", "stopped in place")
            return OperationState(op, "success" if done else "running", 100 if done else 50)
        return OperationState(op, "error", error_code="unknown_operation", error_message=f"unknown {op.kind}")

    # --------------------------------------------------------------------------------------- ssh keys

    async def list_ssh_keys(self) -> list[SshKey]:
        raw = await self._paged("/iam/v1alpha1/ssh-keys", "ssh_keys", {"project_id": self._project})
        return [convert.ssh_key(item) for item in raw]

    async def create_ssh_key(self, name: str, public_key: str, labels: Mapping[str, str]) -> SshKey:
        require_capability(PROVIDER, CAPABILITIES, Capability.SSH_KEYS)
        body = {
            "name": encode_owned_name(name, labels),
            "public_key": public_key.strip(),
            "project_id": self._project,
        }
        return convert.ssh_key(
            cast(wire.SshKeyJson, await self._api.send_object("POST", "/iam/v1alpha1/ssh-keys", body))
        )

    async def delete_ssh_key(self, key_id: str) -> None:
        await self._api.request("DELETE", f"/iam/v1alpha1/ssh-keys/{key_id}")

    # -------------------------------------------------------------------------------------- firewalls

    async def _firewall(self, zone: str, group: wire.SecurityGroupJson) -> Firewall:
        rules = await self._instance_list(zone, f"security_groups/{group.get('id')}/rules", "rules")
        return Firewall(
            provider=PROVIDER,
            id=qualified(zone, str(group.get("id"))),
            name=str(group.get("name") or ""),
            rules=convert.firewall_rules(rules),
            applied_to=tuple(qualified(zone, str(s.get("id"))) for s in group.get("servers") or []),
            labels=labels_from_tags(group.get("tags") or []),
            location=zone,
        )

    async def list_firewalls(self, labels: Mapping[str, str] | None = None) -> list[Firewall]:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        params = self._owned_params(labels)
        found: list[Firewall] = []
        for zone in self._zones:
            for group in await self._instance_list(zone, "security_groups", "security_groups", params):
                if labels_match(labels_from_tags(group.get("tags") or []), labels):
                    found.append(await self._firewall(zone, group))
        return found

    async def _get_group(self, firewall_id: str) -> tuple[str, wire.SecurityGroupJson]:
        zone, raw = split_id(firewall_id, "firewall")
        body = await self._api.get_object(f"/instance/v1/zones/{zone}/security_groups/{raw}")
        return zone, _member(body, "security_group")

    async def create_firewall(
        self, name: str, rules: Sequence[FirewallRule], labels: Mapping[str, str]
    ) -> Firewall:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        wire_rules = _checked_rules(rules)
        zone = self._zone
        body = {
            "name": name,
            "description": "managed by Legion",
            "project": self._project,
            "tags": convert.tags_for(labels),
            "stateful": True,
            "inbound_default_policy": "drop",
            "outbound_default_policy": _outbound_policy(rules),
            "enable_default_security": True,
        }

        async def create() -> wire.SecurityGroupJson:
            created = await self._api.send_object("POST", f"/instance/v1/zones/{zone}/security_groups", body)
            return cast(wire.SecurityGroupJson, _member(created, "security_group"))

        async def find() -> wire.SecurityGroupJson | None:
            return cast(
                wire.SecurityGroupJson | None, await self._find_tagged(zone, "security_groups", labels)
            )

        group = await self._settle_create(create, find)
        await self._api.send_object(
            "PUT", f"/instance/v1/zones/{zone}/security_groups/{group.get('id')}/rules", {"rules": wire_rules}
        )
        return await self._firewall(zone, group)

    async def set_firewall_rules(self, firewall_id: str, rules: Sequence[FirewallRule]) -> list[Operation]:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        wire_rules = _checked_rules(rules)
        zone, group = await self._get_group(firewall_id)
        path = f"/instance/v1/zones/{zone}/security_groups/{group.get('id')}"
        policy = _outbound_policy(rules)
        if convert.enum(group.get("outbound_default_policy")) != policy:
            await self._api.send_object("PATCH", path, {"outbound_default_policy": policy})
        await self._api.send_object("PUT", f"{path}/rules", {"rules": wire_rules})
        return []

    async def apply_firewall(self, firewall_id: str, server_ids: Sequence[str]) -> list[Operation]:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        zone, group = await self._get_group(firewall_id)
        wanted: list[str] = []
        for server_id in server_ids:
            server_zone, raw = split_id(server_id, "server")
            if server_zone != zone:
                raise ProviderInvalidInputError(
                    PROVIDER,
                    f"server {server_id} is in {server_zone} but security group {firewall_id} is in {zone}; "
                    "Scaleway security groups are zonal",
                )
            wanted.append(raw)
        current = {str(s.get("id")) for s in group.get("servers") or []}
        for raw in wanted:
            if raw not in current:
                await self._api.send_object(
                    "PATCH",
                    f"/instance/v1/zones/{zone}/servers/{raw}",
                    {"security_group": {"id": group.get("id")}},
                )
        stale = current - set(wanted)
        if stale:
            default = await self._default_group(zone)
            for raw in sorted(stale):
                await self._api.send_object(
                    "PATCH", f"/instance/v1/zones/{zone}/servers/{raw}", {"security_group": {"id": default}}
                )
        return []

    async def _default_group(self, zone: str) -> str:
        groups = await self._instance_list(
            zone, "security_groups", "security_groups", {"project": self._project, "project_default": "true"}
        )
        if not groups:
            raise ProviderNotFoundError(
                PROVIDER, f"no default security group in {zone}; create one in the console"
            )
        return str(groups[0].get("id"))

    async def delete_firewall(self, firewall_id: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        zone, raw = split_id(firewall_id, "firewall")
        await self._api.request("DELETE", f"/instance/v1/zones/{zone}/security_groups/{raw}")

    # ------------------------------------------------------------------------------------- public ips

    async def list_public_ips(self, labels: Mapping[str, str] | None = None) -> list[PublicIp]:
        """Flexible IPs in every zone; Scaleway keeps no primary IPs apart (its usage lines bill
        a server's own address)."""
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        params = self._owned_params(labels)
        found: list[PublicIp] = []
        for zone in self._zones:
            for item in await self._instance_list(zone, "ips", "ips", params):
                ip = convert.flexible_ip(item, zone)
                if labels_match(ip.labels, labels):
                    found.append(ip)
        return found

    async def create_floating_ip(
        self, name: str, ip_type: Literal["ipv4", "ipv6"], location: str, labels: Mapping[str, str]
    ) -> PublicIp:
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        body = {
            "project": self._project,
            "type": "routed_ipv6" if ip_type == "ipv6" else "routed_ipv4",
            "tags": convert.tags_for(labels, {convert.NAME_LABEL: name}),
        }

        async def create() -> PublicIp:
            created = await self._api.send_object("POST", f"/instance/v1/zones/{location}/ips", body)
            return convert.flexible_ip(_member(created, "ip"), location)

        async def find() -> PublicIp | None:
            raw = await self._find_tagged(location, "ips", labels)
            return convert.flexible_ip(raw, location) if raw is not None else None

        return await self._settle_create(create, find)

    async def assign_floating_ip(self, floating_ip_id: str, server_id: str | None) -> Operation | None:
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        zone, raw = split_id(floating_ip_id, "floating IP")
        target: str | None = None
        if server_id is not None:
            server_zone, target = split_id(server_id, "server")
            if server_zone != zone:
                raise ProviderInvalidInputError(
                    PROVIDER,
                    f"flexible IP {floating_ip_id} is in {zone} but server {server_id} is in {server_zone}",
                )
        await self._api.send_object("PATCH", f"/instance/v1/zones/{zone}/ips/{raw}", {"server": target})
        return None

    async def delete_public_ip(self, kind: PublicIpKind, ip_id: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        if kind != "floating":
            raise ProviderInvalidInputError(PROVIDER, f"no {kind} IP {ip_id}: Scaleway keeps flexible IPs")
        zone, raw = split_id(ip_id, "flexible IP")
        await self._api.request("DELETE", f"/instance/v1/zones/{zone}/ips/{raw}")

    # -------------------------------------------------------------------------------------------- dns

    async def list_zones(self) -> list[DnsZone]:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        raw = await self._paged("/domain/v2beta1/dns-zones", "dns_zones", {"project_id": self._project})
        return [_zone(item) for item in raw]

    async def create_zone(self, name: str, ttl: int, labels: Mapping[str, str]) -> DnsZone:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        labels_ = name.lower().rstrip(".").split(".")
        if len(labels_) < 2:
            raise ProviderInvalidInputError(
                PROVIDER, f"DNS zone {name!r} is not a domain name such as example.com"
            )
        body = {
            "domain": ".".join(labels_[-2:]),
            "subdomain": ".".join(labels_[:-2]),
            "project_id": self._project,
        }
        return _zone(
            cast(wire.DnsZoneJson, await self._api.send_object("POST", "/domain/v2beta1/dns-zones", body))
        )

    async def delete_zone(self, zone: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        await self._api.request(
            "DELETE", f"/domain/v2beta1/dns-zones/{zone}", params={"project_id": self._project}
        )

    async def _records(self, zone: str, name: str = "", rtype: str | None = None) -> list[wire.DnsRecordJson]:
        params: dict[str, Any] = {"name": name}
        if rtype:
            params["type"] = rtype
        return await self._paged(f"/domain/v2beta1/dns-zones/{zone}/records", "records", params)

    async def list_records(self, zone: str) -> list[DnsRecord]:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        return convert.record_sets(await self._records(zone))

    async def _patch_records(self, zone: str, change: dict[str, Any]) -> None:
        body = {"changes": [change], "return_all_records": False, "disallow_new_zone_creation": True}
        await self._api.send_object("PATCH", f"/domain/v2beta1/dns-zones/{zone}/records", body)

    async def set_records(
        self, zone: str, name: str, type: DnsRecordType, ttl: int | None, values: Sequence[str]
    ) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        if not values:
            await self.delete_records(zone, name, type)
            return
        relative = "" if name == "@" else name
        records = [{"name": relative, "type": type, "data": value, "ttl": ttl or 3600} for value in values]
        await self._patch_records(
            zone, {"set": {"id_fields": {"name": relative, "type": type}, "records": records}}
        )

    async def delete_records(self, zone: str, name: str, type: DnsRecordType) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        relative = "" if name == "@" else name
        if not [r for r in await self._records(zone, relative, type) if (r.get("name") or "") == relative]:
            return
        await self._patch_records(zone, {"delete": {"id_fields": {"name": relative, "type": type}}})

    # ---------------------------------------------------------------------------------------- billing

    async def list_invoices(self, period: BillingPeriod) -> list[BillingEntry]:
        """The Organization's invoices for the billing months the period touches
        (``/billing/v2beta1/invoices``; totals without tax, drafts included)."""
        require_capability(PROVIDER, CAPABILITIES, Capability.BILLING)
        first = period.start.replace(day=1)
        params = {
            "billing_period_start_after": f"{first.isoformat()}T00:00:00Z",
            "billing_period_start_before": f"{period.end.isoformat()}T23:59:59Z",
        }
        invoices = await self._paged("/billing/v2beta1/invoices", "invoices", params)
        return [entry for item in invoices if (entry := convert.invoice_entry(item)) is not None]

    async def forecast_billing(self) -> list[BillingEntry]:
        """No forecast is published: Legion's own forecast stands alone."""
        return []

    async def list_billing(self, period: BillingPeriod) -> list[BillingEntry]:
        """Consumption lines of every billing month (``YYYY-MM``) the period touches.

        Scaleway reports whole months, so a period starting or ending mid-month gets that month's
        lines in full, dated at the later of the month's first day and the period's start.
        """
        require_capability(PROVIDER, CAPABILITIES, Capability.BILLING)
        entries: list[BillingEntry] = []
        for month in convert.months(period.start, period.end):
            params = {"billing_period": month.strftime("%Y-%m"), "project_id": self._project}
            lines = await self._paged("/billing/v2beta1/consumptions", "consumptions", params)
            entries.extend(convert.billing_entry(line, max(month, period.start), month) for line in lines)
        return entries


def _member(body: Mapping[str, Any], key: str) -> Any:
    """The object under ``key`` of a Scaleway answer (``{"server": {...}}``), or ``{}``."""
    return body.get(key) or {}


def _zone(body: wire.DnsZoneJson) -> DnsZone:
    domain, sub = str(body.get("domain") or ""), str(body.get("subdomain") or "")
    name = f"{sub}.{domain}" if sub else domain
    return DnsZone(provider=PROVIDER, id=name, name=name)


def _checked_rules(rules: Sequence[FirewallRule]) -> list[dict[str, Any]]:
    unsupported = sorted({r.protocol for r in rules if r.protocol not in ("tcp", "udp", "icmp")})
    if unsupported:
        raise ProviderInvalidInputError(
            PROVIDER, f"security groups cannot filter {', '.join(unsupported)}; use tcp, udp or icmp rules"
        )
    return convert.rules_to_wire(rules)


def _outbound_policy(rules: Sequence[FirewallRule]) -> str:
    """Like Hetzner: outbound is open unless the firewall lists outbound rules."""
    return "drop" if any(r.direction == "out" for r in rules) else "accept"


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
