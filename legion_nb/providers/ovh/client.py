"""The OVHcloud adapter: :class:`legion_nb.providers.contract.ProviderAdapter` over API v1 (``/1.0``).

What it relies on from OVHcloud (see ``/work/shared/reference/providers.md``):

* every call but ``/auth/time`` is signed (``signing.py``) with the server's clock, measured once per
  adapter; a refused timestamp makes the next call measure it again;
* Public Cloud lives under ``/cloud/project/{serviceName}``; instance, flavor, image and SSH key lists
  return objects, but DNS records and zones return **ids only** and usage history only period stubs,
  so those reads are N+1, run with at most :data:`READ_CONCURRENCY` requests in flight;
* flavors and images exist once per region with their own ids: the engine names them (``b2-7``,
  ``Debian 12``) and the adapter resolves the id in the server's region;
* instance names are not unique and there are no labels: ownership is encoded in the name (see
  ``encode_owned_name``), which is also how an ambiguous create is settled;
* there is no action model: operations are awaited resource states (``server_running``,
  ``server_off``, ``server_deleted``), polled with one instance list per tick;
* DNS changes are drafts until ``POST /domain/zone/{zone}/refresh``: every change is followed by one;
* costs per instance come from Public Cloud usage (``usage/history`` + ``usage/current``), not from
  bills, which carry only totals;
* there are no provider firewalls or public IPs in this adapter (OVH's additional, or failover, IPs
  are not modelled): those calls raise
  ``CapabilityMissingError`` before any I/O (the cluster firewall is enforced on the node).

Mutations are sent once; the adapter never retries (see ``resilience.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast
from urllib.parse import quote

import httpx

from legion_nb.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
)
from legion_nb.providers.contract import (
    Capability,
    ProviderCredentials,
    capability_missing,
    require_capability,
)
from legion_nb.providers.http import ApiClient, Params, ProviderResponseError
from legion_nb.providers.ovh import convert, wire
from legion_nb.providers.ovh.errors import CLOCK_REFUSED, REQUEST_ID_HEADER, parse_error
from legion_nb.providers.ovh.signing import AUTH_TIME_PATH, Signer
from legion_nb.providers.ownership import (
    encode_owned_name,
    labels_match,
)
from legion_nb.providers.records import (
    BillingEntry,
    BillingPeriod,
    Catalog,
    CatalogImage,
    CatalogLocation,
    CatalogPrice,
    CatalogServerType,
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

__all__ = ["CAPABILITIES", "DEFAULT_ENDPOINT", "READ_CONCURRENCY", "OvhAdapter"]

DEFAULT_ENDPOINT = "https://eu.api.ovh.com/1.0"
READ_CONCURRENCY = 8
"""Reads in flight at once for N+1 lists (OVHcloud publishes no limit; stay polite)."""
CAPABILITIES = frozenset(
    {Capability.COMPUTE, Capability.SSH_KEYS, Capability.DNS, Capability.BILLING, Capability.REBUILD}
)
PROVIDER = convert.PROVIDER

_CITIES = {
    "GRA": "Gravelines",
    "SBG": "Strasbourg",
    "RBX": "Roubaix",
    "BHS": "Beauharnois",
    "WAW": "Warsaw",
    "LON": "London",
    "DE": "Frankfurt",
    "SGP": "Singapore",
    "SYD": "Sydney",
}
_PRICE_UNIT = Decimal(100_000_000)
"""The order catalog counts prices in 1e-8 of the currency unit."""

T = TypeVar("T")
R = TypeVar("R")


def _credential(credentials: ProviderCredentials, key: str) -> str:
    """A credential field, wherever ``legion credentials set`` put it (secrets first, then options)."""
    if credentials.secrets.get(key):
        return credentials.secret(key)
    return credentials.option(key)


class OvhAdapter:
    """OVHcloud through an injected ``httpx.AsyncClient`` (which the caller owns and closes)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: ProviderCredentials,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = _credential(credentials, "service_name")
        self.signer = Signer(
            _credential(credentials, "application_key"),
            credentials.secret("application_secret"),
            credentials.secret("consumer_key"),
            self._server_time,
            clock=clock,
        )
        self._api = ApiClient(
            PROVIDER,
            client,
            credentials.endpoint or DEFAULT_ENDPOINT,
            parse_error=parse_error,
            request_id_header=REQUEST_ID_HEADER,
            headers={"Accept": "application/json"},
            prepare=self.signer,
        )
        self._flavors: dict[str, wire.FlavorWire] = {}
        self._images: dict[str, wire.ImageWire] = {}
        self._unresolvable: set[str] = set()
        self._catalog_loaded = False

    def __repr__(self) -> str:
        return f"OvhAdapter(endpoint={self._api.base_url!r}, service_name={self._service!r})"

    # ------------------------------------------------------------------------------------- plumbing

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def capabilities(self) -> frozenset[Capability]:
        return CAPABILITIES

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        """OVHcloud publishes no rate-limit headers."""
        return None

    async def _server_time(self) -> int:
        value = await self._api.request_json("GET", AUTH_TIME_PATH)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProviderResponseError(PROVIDER, f"GET {AUTH_TIME_PATH} returned {value!r}, not a unix time")
        return value

    async def _call(self, method: str, path: str, *, params: Params = None, body: Any = None) -> Any:
        try:
            return await self._api.request_json(method, path, params=params, json=body)
        except ProviderError as exc:
            if exc.provider_code == CLOCK_REFUSED:
                self.signer.forget_clock()
            raise

    async def _get_list(self, path: str, params: Params = None) -> list[Any]:
        value = await self._call("GET", path, params=params)
        if not isinstance(value, list):
            raise ProviderResponseError(
                PROVIDER, f"GET {path} returned {type(value).__name__}, expected a list"
            )
        return value

    async def _read_each(self, items: Sequence[T], read: Callable[[T], Awaitable[R]]) -> list[R]:
        """The N+1 half of a list: ``read`` every item, at most READ_CONCURRENCY at a time, in order.

        An item that vanished between the list and its read (404) is left out, as if the list had been
        taken a moment later.
        """
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(item: T) -> R | None:
            async with gate:
                try:
                    return await read(item)
                except ProviderNotFoundError:
                    return None

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
        return [result for task in tasks if (result := task.result()) is not None]

    @property
    def _project(self) -> str:
        return f"/cloud/project/{quote(self._service, safe='')}"

    async def verify_credentials(self) -> None:
        try:
            await self._call("GET", self._project)
        except ProviderNotFoundError as exc:
            raise ProviderAuthError(
                PROVIDER,
                f"the credentials do not reach Public Cloud project {self._service!r}; check service_name",
                provider_code=exc.provider_code,
                request_id=exc.request_id,
                status=exc.status,
            ) from exc

    # -------------------------------------------------------------------------------------- catalog

    async def _load_catalog_maps(self, *, force: bool = False) -> None:
        """Flavors and images of every region, read once per adapter (again when ``force``)."""
        if self._catalog_loaded and not force:
            return
        flavors: list[wire.FlavorWire] = await self._get_list(f"{self._project}/flavor")
        images: list[wire.ImageWire] = await self._get_list(f"{self._project}/image")
        self._flavors = {f["id"]: f for f in flavors}
        self._images = {i["id"]: i for i in images}
        self._catalog_loaded = True

    async def _names(self, items: Sequence[wire.InstanceWire]) -> tuple[dict[str, str], dict[str, str]]:
        """Flavor and image names by id, re-reading the catalog once when an id is new.

        An id still unknown after that (a private image, a retired flavor) is remembered, so that
        polling a list containing it does not re-read the catalog on every tick.
        """
        await self._load_catalog_maps()
        ids = {i.get("flavorId", "") for i in items} | {i.get("imageId", "") for i in items}
        new = ids - set(self._flavors) - set(self._images) - self._unresolvable - {""}
        if new:
            await self._load_catalog_maps(force=True)
            self._unresolvable |= new - set(self._flavors) - set(self._images)
        return (
            {fid: f.get("name", "") for fid, f in self._flavors.items()},
            {iid: i.get("name", "") for iid, i in self._images.items()},
        )

    async def _resolve(self, kind: Literal["flavor", "image"], region: str, wanted: str) -> str:
        """The id of flavor/image ``wanted`` (a name, or already an id) in ``region``."""
        await self._load_catalog_maps()
        table = cast(Mapping[str, Mapping[str, Any]], self._flavors if kind == "flavor" else self._images)
        for item_id, item in table.items():
            if item.get("region") == region and wanted in (item_id, item.get("name")):
                return item_id
        names = sorted({str(i.get("name")) for i in table.values() if i.get("region") == region})
        if not names:
            regions = sorted({str(i.get("region")) for i in table.values()})
            raise ProviderInvalidInputError(
                PROVIDER, f"unknown region {region!r}; choose one of {', '.join(regions) or 'none'}"
            )
        raise ProviderInvalidInputError(
            PROVIDER, f"no {kind} {wanted!r} in region {region}; choose one of {', '.join(names)}"
        )

    async def fetch_catalog(self) -> Catalog:
        region_names: list[str] = await self._get_list(f"{self._project}/region")
        regions: list[wire.RegionWire] = await self._read_each(
            region_names, lambda name: self._call("GET", f"{self._project}/region/{quote(name, safe='')}")
        )
        await self._load_catalog_maps(force=True)
        order: wire.OrderCatalogWire = await self._call(
            "GET", "/order/catalog/public/cloud", params={"ovhSubsidiary": "FR"}
        )
        prices = _plan_prices(order)
        locations = tuple(
            CatalogLocation(
                name=r["name"],
                city=_CITIES.get(r.get("datacenterLocation", ""), r.get("datacenterLocation", "")),
                country=_country(r.get("ipCountries", [])),
                description=f"{_CITIES.get(r.get('datacenterLocation', ''), r['name'])} ({r['name']})",
            )
            for r in regions
        )
        return Catalog(
            provider=PROVIDER,
            currency=str(order.get("locale", {}).get("currencyCode", "EUR")),
            server_types=_server_types(self._flavors.values(), prices, region_names),
            locations=locations,
            images=_images(self._images.values(), region_names),
            source="live",
        )

    # -------------------------------------------------------------------------------------- servers

    def _instance_path(self, server_id: str) -> str:
        return f"{self._project}/instance/{quote(server_id, safe='')}"

    async def _servers(self) -> list[Server]:
        items: list[wire.InstanceWire] = await self._get_list(f"{self._project}/instance")
        flavors, images = await self._names(items)
        return [convert.server(item, flavors, images) for item in items]

    async def list_servers(self, labels: Mapping[str, str] | None = None) -> list[Server]:
        return [s for s in await self._servers() if labels_match(s.labels, labels)]

    async def get_server(self, server_id: str) -> Server:
        item: wire.InstanceWire = await self._call("GET", self._instance_path(server_id))
        flavors, images = await self._names([item])
        return convert.server(item, flavors, images)

    async def find_servers_by_name(self, name: str) -> list[Server]:
        return [s for s in await self._servers() if s.name == name]

    async def create_server(self, spec: ServerSpec) -> PendingServer:
        if len(spec.ssh_key_ids) > 1:
            raise ProviderInvalidInputError(
                PROVIDER, f"an OVHcloud instance takes one SSH key; got {len(spec.ssh_key_ids)}, pass one"
            )
        body: wire.InstanceCreateWire = {
            "name": encode_owned_name(spec.name, spec.labels),
            "flavorId": await self._resolve("flavor", spec.location, spec.server_type),
            "imageId": await self._resolve("image", spec.location, spec.image),
            "region": spec.location,
            "monthlyBilling": False,
        }
        if spec.ssh_key_ids:
            body["sshKeyId"] = spec.ssh_key_ids[0]
        if spec.user_data is not None:
            body["userData"] = spec.user_data
        item: wire.InstanceWire = await self._call("POST", f"{self._project}/instance", body=body)
        flavors, images = await self._names([item])
        created = convert.server(item, flavors, images)
        return PendingServer(created, (server_state_operation(PROVIDER, created.id, "server_running"),))

    async def delete_server(self, server_id: str) -> Operation | None:
        await self._call("DELETE", self._instance_path(server_id))
        return server_state_operation(PROVIDER, server_id, "server_deleted")

    async def reboot_server(self, server_id: str) -> Operation | None:
        await self._call("POST", f"{self._instance_path(server_id)}/reboot", body={"type": "soft"})
        return server_state_operation(PROVIDER, server_id, "server_running")

    async def rebuild_server(self, server_id: str, image: str) -> Operation | None:
        current = await self.get_server(server_id)
        image_id = await self._resolve("image", current.location or "", image)
        await self._call("POST", f"{self._instance_path(server_id)}/reinstall", body={"imageId": image_id})
        return server_state_operation(PROVIDER, server_id, "server_running")

    async def power_on(self, server_id: str) -> Operation | None:
        await self._call("POST", f"{self._instance_path(server_id)}/start")
        return server_state_operation(PROVIDER, server_id, "server_running")

    async def power_off(self, server_id: str) -> Operation | None:
        await self._call("POST", f"{self._instance_path(server_id)}/stop")
        return server_state_operation(PROVIDER, server_id, "server_off")

    async def poll_operations(self, operations: Sequence[Operation]) -> list[OperationState]:
        """One instance list answers every operation (OVHcloud has no action ids)."""
        if not operations:
            return []
        items: list[wire.InstanceWire] = await self._get_list(f"{self._project}/instance")
        statuses = {item["id"]: item.get("status", "UNKNOWN") for item in items}
        return [_operation_state(op, statuses.get(op.resource_id or "")) for op in operations]

    # ------------------------------------------------------------------------------------- ssh keys

    async def list_ssh_keys(self) -> list[SshKey]:
        require_capability(PROVIDER, CAPABILITIES, Capability.SSH_KEYS)
        items: list[wire.SshKeyWire] = await self._get_list(f"{self._project}/sshkey")
        return [convert.ssh_key(item) for item in items]

    async def create_ssh_key(self, name: str, public_key: str, labels: Mapping[str, str]) -> SshKey:
        require_capability(PROVIDER, CAPABILITIES, Capability.SSH_KEYS)
        body = {"name": encode_owned_name(name, labels), "publicKey": public_key.strip()}
        item: wire.SshKeyWire = await self._call("POST", f"{self._project}/sshkey", body=body)
        return convert.ssh_key(item)

    async def delete_ssh_key(self, key_id: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.SSH_KEYS)
        await self._call("DELETE", f"{self._project}/sshkey/{quote(key_id, safe='')}")

    # ------------------------------------------------------------------- firewalls and floating ips

    async def list_firewalls(self, labels: Mapping[str, str] | None = None) -> list[Firewall]:
        raise capability_missing(PROVIDER, Capability.FIREWALL)

    async def create_firewall(
        self, name: str, rules: Sequence[FirewallRule], labels: Mapping[str, str]
    ) -> Firewall:
        raise capability_missing(PROVIDER, Capability.FIREWALL)

    async def set_firewall_rules(self, firewall_id: str, rules: Sequence[FirewallRule]) -> list[Operation]:
        raise capability_missing(PROVIDER, Capability.FIREWALL)

    async def apply_firewall(self, firewall_id: str, server_ids: Sequence[str]) -> list[Operation]:
        raise capability_missing(PROVIDER, Capability.FIREWALL)

    async def delete_firewall(self, firewall_id: str) -> None:
        raise capability_missing(PROVIDER, Capability.FIREWALL)

    async def list_public_ips(self, labels: Mapping[str, str] | None = None) -> list[PublicIp]:
        raise capability_missing(PROVIDER, Capability.FLOATING_IP)

    async def create_floating_ip(
        self, name: str, ip_type: Literal["ipv4", "ipv6"], location: str, labels: Mapping[str, str]
    ) -> PublicIp:
        raise capability_missing(PROVIDER, Capability.FLOATING_IP)

    async def assign_floating_ip(self, floating_ip_id: str, server_id: str | None) -> Operation | None:
        raise capability_missing(PROVIDER, Capability.FLOATING_IP)

    async def delete_public_ip(self, kind: PublicIpKind, ip_id: str) -> None:
        raise capability_missing(PROVIDER, Capability.FLOATING_IP)

    # ------------------------------------------------------------------------------------------ dns

    def _zone_path(self, zone: str) -> str:
        return f"/domain/zone/{quote(zone, safe='')}"

    async def list_zones(self) -> list[DnsZone]:
        """Zone ids are the zone names, so the list alone is enough (no per-zone read)."""
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        names: list[str] = await self._get_list("/domain/zone")
        return [DnsZone(provider=PROVIDER, id=name, name=name) for name in names]

    async def create_zone(self, name: str, ttl: int, labels: Mapping[str, str]) -> DnsZone:
        """OVHcloud zones come with a domain, not from an API call: adopt the zone if the account has it."""
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        for zone in await self.list_zones():
            if zone.name == name.rstrip("."):
                return zone
        raise ProviderInvalidInputError(
            PROVIDER,
            f"zone {name} is not in this OVHcloud account; zones come with a domain, "
            "so order or transfer the domain first",
        )

    async def delete_zone(self, zone: str) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        raise ProviderInvalidInputError(
            PROVIDER,
            f"zone {zone} cannot be deleted through the OVHcloud API (it goes with its domain); "
            "remove Legion's records instead, or terminate the domain in the OVHcloud manager",
        )

    async def _records(self, zone: str, params: Params = None) -> list[wire.RecordWire]:
        path = f"{self._zone_path(zone)}/record"
        ids: list[int] = await self._get_list(path, params)
        return await self._read_each(ids, lambda rid: self._call("GET", f"{path}/{rid}"))

    async def list_records(self, zone: str) -> list[DnsRecord]:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        return convert.record_sets(await self._records(zone))

    async def _refresh(self, zone: str) -> None:
        await self._call("POST", f"{self._zone_path(zone)}/refresh")

    async def set_records(
        self, zone: str, name: str, type: DnsRecordType, ttl: int | None, values: Sequence[str]
    ) -> None:
        """Make (name, type) hold exactly ``values``: delete extra records, add missing ones, fix
        ttls, then publish with one refresh (only when something changed)."""
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        sub = convert.sub_domain(name)
        path = f"{self._zone_path(zone)}/record"
        current = await self._records(zone, {"fieldType": type, "subDomain": sub})
        wanted = list(dict.fromkeys(values))
        wire_ttl = ttl or 0
        kept: set[str] = set()
        changed = False
        for record in current:
            if record["target"] in wanted and record["target"] not in kept:
                kept.add(record["target"])
                if record["ttl"] != wire_ttl:
                    await self._call("PUT", f"{path}/{record['id']}", body={"ttl": wire_ttl})
                    changed = True
            else:
                await self._call("DELETE", f"{path}/{record['id']}")
                changed = True
        for target in wanted:
            if target not in kept:
                create: wire.RecordCreateWire = {
                    "fieldType": type,
                    "subDomain": sub,
                    "target": target,
                    "ttl": wire_ttl,
                }
                await self._call("POST", path, body=create)
                changed = True
        if changed:
            await self._refresh(zone)

    async def delete_records(self, zone: str, name: str, type: DnsRecordType) -> None:
        require_capability(PROVIDER, CAPABILITIES, Capability.DNS)
        path = f"{self._zone_path(zone)}/record"
        ids: list[int] = await self._get_list(
            path, {"fieldType": type, "subDomain": convert.sub_domain(name)}
        )
        for record_id in ids:
            try:
                await self._call("DELETE", f"{path}/{record_id}")
            except ProviderNotFoundError:
                continue  # already gone: the desired state holds
        if ids:
            await self._refresh(zone)

    # -------------------------------------------------------------------------------------- billing

    async def list_billing(self, period: BillingPeriod) -> list[BillingEntry]:
        """What each instance cost, per month, for the months overlapping the period.

        Bills (``/me/bill``) carry totals only; Public Cloud *usage* names the instance, so entries
        come from ``usage/history`` (one read per closed month, N+1) and ``usage/current`` (the
        running month, provisional until it closes). The amounts are the provider's, without tax.
        """
        require_capability(PROVIDER, CAPABILITIES, Capability.BILLING)
        me = await self._call("GET", "/me")
        currency = str(((me or {}).get("currency") or {}).get("code") or "EUR")
        usage = f"{self._project}/usage"
        history: list[wire.UsageWire] = await self._get_list(f"{usage}/history")
        wanted = [h for h in history if _overlaps(convert.usage_period(h), period)]
        months: list[wire.UsageWire] = await self._read_each(
            [h.get("id", "") for h in wanted],
            lambda uid: self._call("GET", f"{usage}/history/{quote(uid, safe='')}"),
        )
        current: wire.UsageWire = await self._call("GET", f"{usage}/current")
        if _overlaps(convert.usage_period(current), period):
            months.append(current)
        return [entry for month in months for entry in convert.usage_entries(month, currency)]

    async def list_invoices(self, period: BillingPeriod) -> list[BillingEntry]:
        """The account's bills (``/me/bill``, one read each) dated within the period or the month
        after it (a month's bill is dated when the month closes); totals without tax."""
        require_capability(PROVIDER, CAPABILITIES, Capability.BILLING)
        until = period.end + timedelta(days=32)
        ids: list[str] = await self._get_list(
            "/me/bill", {"date.from": period.start.isoformat(), "date.to": until.isoformat()}
        )
        bills: list[dict[str, Any]] = await self._read_each(
            ids, lambda bill_id: self._call("GET", f"/me/bill/{quote(bill_id, safe='')}")
        )
        return [entry for bill in bills if (entry := convert.bill_entry(bill)) is not None]

    async def forecast_billing(self) -> list[BillingEntry]:
        """``usage/forecast``: the running month as OVHcloud expects it to end, per instance."""
        require_capability(PROVIDER, CAPABILITIES, Capability.BILLING)
        me = await self._call("GET", "/me")
        currency = str(((me or {}).get("currency") or {}).get("code") or "EUR")
        forecast: wire.UsageWire = await self._call("GET", f"{self._project}/usage/forecast")
        return convert.usage_entries(forecast, currency)


# ---------------------------------------------------------------------------------------- helpers


def _operation_state(op: Operation, status: str | None) -> OperationState:
    """Whether the awaited state of ``op`` holds, given the instance's current status (None: gone)."""
    if op.kind == "server_deleted":
        return OperationState(op, "success" if status is None else "running")
    if status is None:
        return OperationState(
            op, "error", error_code="not_found", error_message=f"instance {op.resource_id} no longer exists"
        )
    if status in wire.ERROR_STATUSES:
        return OperationState(op, "error", error_code=status, error_message=f"instance is {status}")
    target = wire.ACTIVE_STATUSES if op.kind == "server_running" else wire.OFF_STATUSES
    return OperationState(op, "success", progress=100) if status in target else OperationState(op, "running")


def _overlaps(covered: tuple[date, date] | None, period: BillingPeriod) -> bool:
    return covered is not None and covered[0] <= period.end and covered[1] >= period.start


def _country(codes: Sequence[str]) -> str:
    code = (codes[0] if codes else "").upper()
    return "GB" if code == "UK" else code


def _plan_prices(order: wire.OrderCatalogWire) -> dict[str, Decimal]:
    """Price per plan code (hourly ``<flavor>.consumption``, monthly ``<flavor>.monthly.postpaid``)."""
    prices: dict[str, Decimal] = {}
    for addon in order.get("addons", []):
        pricings = addon.get("pricings") or []
        if pricings and "planCode" in addon and "price" in pricings[0]:
            prices[addon["planCode"]] = (Decimal(pricings[0]["price"]) / _PRICE_UNIT).quantize(
                Decimal("0.0001")
            )
    return prices


def _server_types(
    flavors: Iterable[wire.FlavorWire], prices: Mapping[str, Decimal], region_order: Sequence[str]
) -> tuple[CatalogServerType, ...]:
    """One server type per flavor *name*, sold in every region that lists it (in the API's order)."""
    by_name: dict[str, list[wire.FlavorWire]] = {}
    for flavor in flavors:
        if flavor.get("available", True) and flavor.get("osType", "linux") == "linux":
            by_name.setdefault(flavor["name"], []).append(flavor)
    types: list[CatalogServerType] = []
    for name, items in by_name.items():
        first = items[0]
        plans = first.get("planCodes", {})
        hourly = prices.get(str(plans.get("hourly")), Decimal(0))
        monthly = prices.get(str(plans.get("monthly")), Decimal(0))
        regions = _in_order({f["region"] for f in items}, region_order)
        types.append(
            CatalogServerType(
                name=name,
                cores=first.get("vcpus", 0),
                memory_gb=first.get("ram", 0) / 1000,
                disk_gb=first.get("disk", 0),
                arch="x86",
                prices=tuple(CatalogPrice(r, hourly, monthly) for r in regions),
                locations=regions,
                description=name,
            )
        )
    return tuple(types)


def _images(images: Iterable[wire.ImageWire], region_order: Sequence[str]) -> tuple[CatalogImage, ...]:
    """One catalog image per *name* (OVHcloud ids are per region; ``create_server`` resolves them)."""
    regions: dict[str, set[str]] = {}
    for image in images:
        if image.get("type", "linux") == "linux" and image.get("status", "active") == "active":
            regions.setdefault(image["name"], set()).add(image["region"])
    out: list[CatalogImage] = []
    for name, where in regions.items():
        os_flavor, _, version = name.partition(" ")
        out.append(
            CatalogImage(
                id=name,
                name=name,
                os_flavor=os_flavor.lower(),
                os_version=version,
                locations=_in_order(where, region_order),
            )
        )
    return tuple(out)


def _in_order(names: set[str], order: Sequence[str]) -> tuple[str, ...]:
    """``names`` in the provider's region order (regions it did not list last, alphabetically)."""
    known = [n for n in order if n in names]
    return tuple(known + sorted(names - set(known)))
