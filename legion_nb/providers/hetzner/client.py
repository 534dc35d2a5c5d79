"""The Hetzner Cloud adapter: :class:`legion_nb.providers.contract.ProviderAdapter` over API v1.

What it relies on from Hetzner (see ``/work/shared/reference/providers.md``):

* list endpoints page with ``page``/``per_page`` (max 50) and ``meta.pagination.next_page``; the adapter
  loops until ``next_page`` is null, so callers always get every item;
* labels live on every resource and ``label_selector`` filters server-side (comma is AND);
* long work is an *action*; the adapter returns actions as ``Operation`` data and polls many at once
  with ``GET /actions?id=..&id=..`` (``poll_operations``); it never waits itself;
* names of servers, SSH keys, firewalls and zones are unique per project: a create that collides is a
  ``UniquenessConflictError``, which resilience reads as "the first attempt landed";
* DNS is part of the Cloud API: ``/zones`` and RRsets keyed by (name, type);
* ``remove_from_resources`` naming a server that no longer exists is refused whole (404
  ``firewall_resource_not_found``), so the servers still listed would stay attached.

Mutations are sent once; the adapter never retries (see ``resilience.py``), except a firewall detach
refused because a server it named was deleted meanwhile: that one is re-read and sent again for the
servers still attached, at most ``DETACH_ATTEMPTS`` times in all. Every response's
``RateLimit-*`` headers are kept in :attr:`HetznerAdapter.rate_limit` for the broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, cast
from urllib.parse import quote

import httpx

from legion_nb.errors import ProviderNotFoundError
from legion_nb.providers.contract import (
    Capability,
    ProviderCredentials,
    capability_missing,
    require_capability,
)
from legion_nb.providers.hetzner import convert, wire
from legion_nb.providers.hetzner.errors import REQUEST_ID_HEADER, parse_error
from legion_nb.providers.http import ApiClient, ProviderResponseError
from legion_nb.providers.records import (
    BillingEntry,
    BillingPeriod,
    Catalog,
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
)

__all__ = ["CAPABILITIES", "DEFAULT_ENDPOINT", "HetznerAdapter"]

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
PER_PAGE = 50
DETACH_ATTEMPTS = 3
CAPABILITIES = frozenset(
    {
        Capability.COMPUTE,
        Capability.SSH_KEYS,
        Capability.FIREWALL,
        Capability.FLOATING_IP,
        Capability.DNS,
        Capability.REBUILD,
    }
)
PROVIDER = convert.PROVIDER


def _int_id(value: str, what: str) -> int:
    """Hetzner ids are integers; anything else cannot name an existing resource."""
    try:
        return int(value)
    except ValueError:
        raise ProviderNotFoundError(
            PROVIDER, f"no {what} with id {value!r}; Hetzner ids are numbers"
        ) from None


def _key_ref(value: str) -> int | str:
    """An SSH key reference: Hetzner accepts the numeric id or the key's name."""
    return int(value) if value.isdigit() else value


class HetznerAdapter:
    """Hetzner Cloud through an injected ``httpx.AsyncClient`` (which the caller owns and closes)."""

    def __init__(self, client: httpx.AsyncClient, credentials: ProviderCredentials) -> None:
        token = credentials.secret("token")
        self._api = ApiClient(
            PROVIDER,
            client,
            credentials.endpoint or DEFAULT_ENDPOINT,
            parse_error=parse_error,
            request_id_header=REQUEST_ID_HEADER,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"HetznerAdapter(endpoint={self._api.base_url!r})"

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

    async def _paginate(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paged list, following ``meta.pagination.next_page`` until it is null."""
        items: list[Any] = []
        page: int | None = 1
        while page is not None:
            body = await self._api.get_object(path, {**(params or {}), "page": page, "per_page": PER_PAGE})
            chunk = body.get(key)
            if not isinstance(chunk, list):
                raise ProviderResponseError(PROVIDER, f"GET {path} lacks the {key!r} list")
            items.extend(chunk)
            pagination = (body.get("meta") or {}).get("pagination") or {}
            next_page = pagination.get("next_page")
            page = int(next_page) if next_page is not None and chunk else None
        return items

    def _operation(self, action: Any) -> Operation:
        return convert.convert(convert.operation, action, "action")

    def _operations(self, body: Mapping[str, Any], *keys: str) -> list[Operation]:
        ops: list[Operation] = []
        for key in keys:
            value = body.get(key)
            if isinstance(value, list):
                ops.extend(self._operation(item) for item in value)
            elif value is not None:
                ops.append(self._operation(value))
        return ops

    # --------------------------------------------------------------------------------------- identity

    async def verify_credentials(self) -> None:
        await self._api.get_object("/servers", {"per_page": 1})

    async def fetch_catalog(self) -> Catalog:
        server_types = await self._paginate("/server_types", "server_types")
        locations = await self._paginate("/locations", "locations")
        images = await self._paginate("/images", "images", {"type": "system", "status": "available"})
        answer = (await self._api.get_object("/pricing")).get("pricing")
        pricing = cast(wire.Pricing, answer) if isinstance(answer, dict) else None
        currency = str(pricing.get("currency") or "EUR") if pricing is not None else "EUR"
        now = datetime.now(UTC)
        return convert.convert(
            lambda _: convert.catalog(server_types, locations, images, currency, now, pricing=pricing),
            None,
            "catalog",
        )

    # ---------------------------------------------------------------------------------------- servers

    def _servers(self, items: Sequence[Any]) -> list[Server]:
        return [convert.convert(convert.server, item, "server") for item in items]

    async def list_servers(self, labels: Mapping[str, str] | None = None) -> list[Server]:
        params = {"label_selector": convert.label_selector(labels)} if labels else None
        return self._servers(await self._paginate("/servers", "servers", params))

    async def get_server(self, server_id: str) -> Server:
        body = await self._api.get_object(f"/servers/{_int_id(server_id, 'server')}")
        return convert.convert(convert.server, body.get("server"), "server")

    async def find_servers_by_name(self, name: str) -> list[Server]:
        return self._servers(await self._paginate("/servers", "servers", {"name": name}))

    async def create_server(self, spec: ServerSpec) -> PendingServer:
        require_capability(PROVIDER, CAPABILITIES, Capability.COMPUTE)
        body: dict[str, Any] = {
            "name": spec.name,
            "server_type": spec.server_type,
            "image": spec.image,
            "location": spec.location,
            "ssh_keys": [_key_ref(k) for k in spec.ssh_key_ids],
            "labels": dict(spec.labels),
            "start_after_create": True,
            "public_net": {"enable_ipv4": True, "enable_ipv6": True},
        }
        if spec.user_data is not None:
            body["user_data"] = spec.user_data
        reply = await self._api.send_object("POST", "/servers", body)
        created = convert.convert(convert.server, reply.get("server"), "server")
        return PendingServer(
            server=created, operations=tuple(self._operations(reply, "action", "next_actions"))
        )

    async def delete_server(self, server_id: str) -> Operation | None:
        reply = await self._api.send_object("DELETE", f"/servers/{_int_id(server_id, 'server')}")
        ops = self._operations(reply, "action")
        return ops[0] if ops else None

    async def _server_action(self, server_id: str, action: str, body: Any = None) -> Operation | None:
        reply = await self._api.send_object(
            "POST", f"/servers/{_int_id(server_id, 'server')}/actions/{action}", body
        )
        ops = self._operations(reply, "action")
        return ops[0] if ops else None

    async def reboot_server(self, server_id: str) -> Operation | None:
        return await self._server_action(server_id, "reboot")

    async def rebuild_server(self, server_id: str, image: str) -> Operation | None:
        require_capability(PROVIDER, CAPABILITIES, Capability.REBUILD)
        # The reply may carry a root password (no SSH key on the server): it is deliberately dropped.
        return await self._server_action(server_id, "rebuild", {"image": image})

    async def power_on(self, server_id: str) -> Operation | None:
        return await self._server_action(server_id, "poweron")

    async def power_off(self, server_id: str) -> Operation | None:
        return await self._server_action(server_id, "poweroff")

    async def poll_operations(self, operations: Sequence[Operation]) -> list[OperationState]:
        """One ``GET /actions?id=..`` per 50 operations, whatever their kind."""
        found: dict[str, Any] = {}
        ids = list(dict.fromkeys(op.id for op in operations))
        for start in range(0, len(ids), PER_PAGE):
            chunk = ids[start : start + PER_PAGE]
            params = {"id": [_int_id(i, "action") for i in chunk]}
            for action in await self._paginate("/actions", "actions", params):
                found[str(action.get("id"))] = action
        states: list[OperationState] = []
        for op in operations:
            action = found.get(op.id)
            if action is None:
                states.append(
                    OperationState(op, "error", error_code="not_found", error_message="action vanished")
                )
            else:
                states.append(convert.convert(partial(convert.operation_state, op), action, "action"))
        return states

    # --------------------------------------------------------------------------------------- ssh keys

    async def list_ssh_keys(self) -> list[SshKey]:
        items = await self._paginate("/ssh_keys", "ssh_keys")
        return [convert.convert(convert.ssh_key, item, "ssh key") for item in items]

    async def create_ssh_key(self, name: str, public_key: str, labels: Mapping[str, str]) -> SshKey:
        require_capability(PROVIDER, CAPABILITIES, Capability.SSH_KEYS)
        reply = await self._api.send_object(
            "POST", "/ssh_keys", {"name": name, "public_key": public_key, "labels": dict(labels)}
        )
        return convert.convert(convert.ssh_key, reply.get("ssh_key"), "ssh key")

    async def delete_ssh_key(self, key_id: str) -> None:
        await self._api.send_object("DELETE", f"/ssh_keys/{_int_id(key_id, 'ssh key')}")

    # -------------------------------------------------------------------------------------- firewalls

    async def list_firewalls(self, labels: Mapping[str, str] | None = None) -> list[Firewall]:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        params = {"label_selector": convert.label_selector(labels)} if labels else None
        items = await self._paginate("/firewalls", "firewalls", params)
        return [convert.convert(convert.firewall, item, "firewall") for item in items]

    async def _get_firewall(self, firewall_id: str) -> Firewall:
        body = await self._api.get_object(f"/firewalls/{_int_id(firewall_id, 'firewall')}")
        return convert.convert(convert.firewall, body.get("firewall"), "firewall")

    async def create_firewall(
        self, name: str, rules: Sequence[FirewallRule], labels: Mapping[str, str]
    ) -> Firewall:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        body = {"name": name, "labels": dict(labels), "rules": [convert.rule_to_wire(r) for r in rules]}
        reply = await self._api.send_object("POST", "/firewalls", body)
        return convert.convert(convert.firewall, reply.get("firewall"), "firewall")

    async def set_firewall_rules(self, firewall_id: str, rules: Sequence[FirewallRule]) -> list[Operation]:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        path = f"/firewalls/{_int_id(firewall_id, 'firewall')}/actions/set_rules"
        reply = await self._api.send_object("POST", path, {"rules": [convert.rule_to_wire(r) for r in rules]})
        return self._operations(reply, "actions")

    async def apply_firewall(self, firewall_id: str, server_ids: Sequence[str]) -> list[Operation]:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        current = set((await self._get_firewall(firewall_id)).applied_to)
        wanted = {str(_int_id(s, "server")) for s in server_ids}
        fid = _int_id(firewall_id, "firewall")
        ops: list[Operation] = []

        def refs(ids: set[str]) -> list[dict[str, Any]]:
            return [{"type": "server", "server": {"id": int(i)}} for i in sorted(ids, key=int)]

        if wanted - current:
            reply = await self._api.send_object(
                "POST", f"/firewalls/{fid}/actions/apply_to_resources", {"apply_to": refs(wanted - current)}
            )
            ops.extend(self._operations(reply, "actions"))
        stale = current - wanted
        for attempt in range(1, DETACH_ATTEMPTS + 1):
            if not stale:
                break
            try:
                reply = await self._api.send_object(
                    "POST", f"/firewalls/{fid}/actions/remove_from_resources", {"remove_from": refs(stale)}
                )
            except ProviderNotFoundError as exc:
                if exc.provider_code != "firewall_resource_not_found" or attempt == DETACH_ATTEMPTS:
                    raise
                # A server named was deleted since the read: Hetzner refuses the whole remove, so
                # read the applied set again and detach the servers that are still there.
                stale = set((await self._get_firewall(firewall_id)).applied_to) - wanted
                continue
            ops.extend(self._operations(reply, "actions"))
            break
        return ops

    async def delete_firewall(self, firewall_id: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.FIREWALL)
        await self._api.send_object("DELETE", f"/firewalls/{_int_id(firewall_id, 'firewall')}")

    # ------------------------------------------------------------------------------------- public ips

    async def list_public_ips(self, labels: Mapping[str, str] | None = None) -> list[PublicIp]:
        """Floating IPs, then primary IPs (standalone or on a server: billing prices them apart)."""
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        params = {"label_selector": convert.label_selector(labels)} if labels else None
        floating = await self._paginate("/floating_ips", "floating_ips", params)
        primary = await self._paginate("/primary_ips", "primary_ips", params)
        return [
            *(convert.convert(convert.floating_ip, item, "floating ip") for item in floating),
            *(convert.convert(convert.primary_ip, item, "primary ip") for item in primary),
        ]

    async def create_floating_ip(
        self, name: str, ip_type: Literal["ipv4", "ipv6"], location: str, labels: Mapping[str, str]
    ) -> PublicIp:
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        body = {"type": ip_type, "home_location": location, "name": name, "labels": dict(labels)}
        reply = await self._api.send_object("POST", "/floating_ips", body)
        return convert.convert(convert.floating_ip, reply.get("floating_ip"), "floating ip")

    async def assign_floating_ip(self, floating_ip_id: str, server_id: str | None) -> Operation | None:
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        fid = _int_id(floating_ip_id, "floating ip")
        if server_id is None:
            reply = await self._api.send_object("POST", f"/floating_ips/{fid}/actions/unassign")
        else:
            body = {"server": _int_id(server_id, "server")}
            reply = await self._api.send_object("POST", f"/floating_ips/{fid}/actions/assign", body)
        ops = self._operations(reply, "action")
        return ops[0] if ops else None

    async def delete_public_ip(self, kind: PublicIpKind, ip_id: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.FLOATING_IP)
        await self._api.send_object("DELETE", f"/{kind}_ips/{_int_id(ip_id, f'{kind} ip')}")

    # -------------------------------------------------------------------------------------------- dns

    @staticmethod
    def _rrset_path(zone: str, name: str, type: str) -> str:
        return f"/zones/{quote(zone, safe='')}/rrsets/{quote(name, safe='@')}/{quote(type, safe='')}"

    async def list_zones(self) -> list[DnsZone]:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        items = await self._paginate("/zones", "zones")
        return [convert.convert(convert.zone, item, "zone") for item in items]

    async def create_zone(self, name: str, ttl: int, labels: Mapping[str, str]) -> DnsZone:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        body = {"name": name, "mode": "primary", "ttl": ttl, "labels": dict(labels)}
        reply = await self._api.send_object("POST", "/zones", body)
        return convert.convert(convert.zone, reply.get("zone"), "zone")

    async def delete_zone(self, zone: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        await self._api.send_object("DELETE", f"/zones/{quote(zone, safe='')}")

    async def list_records(self, zone: str) -> list[DnsRecord]:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        items = await self._paginate(f"/zones/{quote(zone, safe='')}/rrsets", "rrsets")
        return [convert.convert(convert.rrset, item, "rrset") for item in items]

    async def _get_rrset(self, zone: str, name: str, type: str) -> DnsRecord | None:
        try:
            body = await self._api.get_object(self._rrset_path(zone, name, type))
        except ProviderNotFoundError:
            return None
        return convert.convert(convert.rrset, body.get("rrset"), "rrset")

    async def set_records(
        self, zone: str, name: str, type: DnsRecordType, ttl: int | None, values: Sequence[str]
    ) -> None:
        """Create the RRset, or replace its records (and TTL) when it exists; no call when it already
        matches, so a level-based reconciler can call this on every pass."""
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        wanted = DnsRecord(name=name, type=type, ttl=ttl, values=tuple(values))
        records = [{"value": v} for v in wanted.values]
        current = await self._get_rrset(zone, name, type)
        if current is None:
            body: dict[str, Any] = {"name": name, "type": type, "records": records}
            if ttl is not None:
                body["ttl"] = ttl
            await self._api.send_object("POST", f"/zones/{quote(zone, safe='')}/rrsets", body)
            return
        path = self._rrset_path(zone, name, type)
        if current.values != wanted.values:
            await self._api.send_object("POST", f"{path}/actions/set_records", {"records": records})
        if current.ttl != ttl:
            await self._api.send_object("POST", f"{path}/actions/change_ttl", {"ttl": ttl})

    async def delete_records(self, zone: str, name: str, type: DnsRecordType) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        try:
            await self._api.send_object("DELETE", self._rrset_path(zone, name, type))
        except ProviderNotFoundError:
            return  # already absent: the desired state holds

    # ---------------------------------------------------------------------------------------- billing

    async def list_invoices(self, period: BillingPeriod) -> list[BillingEntry]:
        """Hetzner's invoices live in its console only."""
        return []

    async def forecast_billing(self) -> list[BillingEntry]:
        """No forecast is published: Legion's own forecast stands alone."""
        return []

    async def list_billing(self, period: BillingPeriod) -> list[BillingEntry]:
        """Hetzner publishes no billing API (invoices live in the console only)."""
        raise capability_missing(PROVIDER, Capability.BILLING)
