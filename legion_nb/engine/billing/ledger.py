"""Ledger rows: one resource's cost over one charge period, from one source.

The columns follow FOCUS (the FinOps cost data spec) where it has a word for them: ``billed_cost``
(what the source says is owed), ``list_cost`` (the catalog price times the quantity: for an estimate,
every started hour at the hourly price, before the monthly cap), the charge
period ``start``/``end`` (end exclusive, UTC), ``resource_id``/``resource_name``, ``sku``. Each row
names its ``source``:

``usage``     the provider's own usage figure (Scaleway consumptions, OVH cloud project usage),
              one row per resource and calendar month (the running month grows until it closes);
``invoice``   a provider invoice line;
``estimate``  Legion's estimate from catalog prices and the lifetime the provider reports
              (:mod:`legion_nb.engine.billing.hourly`), one row per resource and UTC day.

Hetzner publishes no billing API, so its rows are estimates only; Scaleway and OVH get both, so the
difference shows. ``ownership`` says how the resource relates to Legion when it was collected:
``planned`` (tracked for a planned server), ``labelled`` (carries Legion's ownership labels but is not
planned), ``unlabelled`` (no Legion labels), ``gone`` (no longer listed by its provider) or
``account`` (an invoice: the whole account's month, no one resource; kind ``invoice``).

Public IPs a provider prices apart (Hetzner's primary and floating IPs) are resources of their own
(:data:`ADDRESS_KINDS`), billed from their own creation; ``server`` names the server one is
assigned to, so an address that outlives its server keeps its rows under the same id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

from legion_nb.engine.billing.hourly import Rate, daily_costs, month_start, traffic_charge
from legion_nb.engine.orphans import held_floating_ips, legion_made
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.records import PUBLIC_IP_KINDS, BillingEntry, Catalog, PublicIp, PublicIpKind, Server

__all__ = [
    "ADDON_KINDS",
    "ADDRESS_KINDS",
    "SOURCES",
    "AddressFacts",
    "LedgerRow",
    "Ownership",
    "ServerFacts",
    "Source",
    "address_facts",
    "address_rows",
    "estimate_rows",
    "invoice_rows",
    "ownership_of",
    "public_ip_of",
    "server_facts",
    "tracked_index",
    "usage_rows",
]

Source = Literal["invoice", "usage", "estimate"]
Ownership = Literal["planned", "labelled", "unlabelled", "gone", "account"]
SOURCES: tuple[Source, ...] = ("invoice", "usage", "estimate")
ADDON_KINDS: frozenset[str] = frozenset({"primary_ipv4", "traffic"})
"""Row kinds billed beside a server; their resource id is the server's plus ``/ipv4`` or ``/traffic``."""
ADDRESS_KINDS: frozenset[str] = frozenset(f"{kind}_ip" for kind in PUBLIC_IP_KINDS)
"""Public IPs as resources of their own (:class:`~legion_nb.providers.records.PublicIp`): row kind
``floating_ip`` or ``primary_ip``, resource id ``<kind>/<provider id>``, priced (Hetzner) from their
own creation whether assigned to a server or not."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CAPPED: Mapping[str, bool] = {"hetzner": True, "scaleway": True, "ovh": False}
"""Whether a provider caps hourly servers at the monthly price (OVH's hourly instances are not)."""


class LedgerRow(NamedTuple):
    """One ledger row (module notes); a NamedTuple because a fleet's ledger has ~10^5 of them and
    a frozen dataclass costs a ``__setattr__`` per field to build."""

    provider: str
    account: str
    resource_id: str
    resource_name: str
    kind: str
    cluster: str
    role: str
    start: dt.datetime
    end: dt.datetime
    billed_cost: Decimal
    list_cost: Decimal
    currency: str
    source: Source
    sku: str
    ownership: Ownership
    server: str = ""
    """The server an address row's IP is assigned to when collected ('' for servers, unassigned IPs)."""


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What the ledger knows of one server: who it belongs to and what it is priced at."""

    provider: str
    account: str
    resource_id: str
    name: str
    cluster: str
    role: str
    sku: str
    location: str
    created: dt.datetime | None
    ownership: Ownership
    rates: tuple[Rate, ...]
    currency: str
    ipv4_rates: tuple[Rate, ...] = ()
    """The primary IPv4 address, priced apart from the server where the provider does (Hetzner)."""
    traffic: Decimal = Decimal(0)
    """Outgoing traffic beyond the included amount in the current billing month."""


def ownership_of(tracked: Mapping[str, tuple[str, str]], server: Server) -> tuple[Ownership, str, str]:
    """``(ownership, cluster, role)`` of a listed server: tracked ones (``tracked`` maps provider ids
    to cluster and role, :func:`tracked_index`) take their plan's cluster and role; otherwise its
    labels decide (cluster and role stay empty), as the orphan rule judges them
    (:func:`~legion_nb.engine.orphans.legion_made`: both of Legion's labels)."""
    found = tracked.get(server.id)
    if found is not None:
        return "planned", found[0], found[1]
    return ("labelled" if legion_made(server.labels) else "unlabelled"), "", ""


def tracked_index(state: LegionState, provider: str) -> dict[str, tuple[str, str]]:
    """Cluster and role of every server tracked at ``provider``, by provider id."""
    return {
        t.provider_id: (t.cluster, t.role) for t in state.tracked.servers.values() if t.provider == provider
    }


def server_facts(
    state: LegionState,
    provider: str,
    account: str,
    servers: Iterable[Server],
    catalog: Catalog,
    *,
    billed_apart: frozenset[str] = frozenset(),
) -> list[ServerFacts]:
    """Facts for every listed server; a server whose type or location the catalog does not price
    gets no rates (it still shows in the reconciliation, with no estimate). A server in
    ``billed_apart`` (ids of servers whose primary IPv4 is listed as a primary IP of its own, see
    :func:`address_facts`) gets no ``<id>/ipv4`` row: its address is billed once, as itself."""
    capped = CAPPED.get(provider, True)
    tracked = tracked_index(state, provider)
    out: list[ServerFacts] = []
    for server in servers:
        ownership, cluster, role = ownership_of(tracked, server)
        rates: tuple[Rate, ...] = ()
        ipv4: tuple[Rate, ...] = ()
        traffic = Decimal(0)
        location = server.location or ""
        kind = catalog.server_type(server.server_type or "")
        price = kind.price_in(location) if kind is not None else None
        if price is not None:
            rates = (Rate(_EPOCH, price.hourly, price.monthly if capped else None),)
            if price.per_tb_traffic is not None and server.outgoing_traffic is not None:
                included = server.included_traffic or 0
                traffic = traffic_charge(server.outgoing_traffic, included, price.per_tb_traffic)
        apart = server.id in billed_apart
        addon = catalog.addon("primary_ipv4", location) if server.ipv4 and not apart else None
        if addon is not None and (addon.hourly or addon.monthly):
            ipv4 = (Rate(_EPOCH, addon.hourly, addon.monthly),)
        out.append(
            ServerFacts(
                provider=provider,
                account=account,
                resource_id=server.id,
                name=server.name,
                cluster=cluster,
                role=role,
                sku=server.server_type or "",
                location=server.location or "",
                created=server.created,
                ownership=ownership,
                rates=rates,
                currency=catalog.currency,
                ipv4_rates=ipv4,
                traffic=traffic,
            )
        )
    return out


def _daily_rows(
    head: tuple[str, str, str, str, str, str, str],
    tail: tuple[str, str, Ownership, str],
    created: dt.datetime,
    *,
    since: dt.datetime,
    until: dt.datetime,
    rates: Sequence[Rate],
) -> list[LedgerRow]:
    """One estimate row per UTC day of ``[since, until)`` the lifetime from ``created`` touches:
    ``head`` is the row's fields before its period; ``tail`` is currency, sku, ownership, server."""
    day = dt.timedelta(days=1)
    return [
        LedgerRow(*head, start, min(start + day, until), amount, listed, tail[0], "estimate", *tail[1:])
        for start, amount, listed in daily_costs(created, until, rates)
        if start + day > since
    ]


@dataclass(frozen=True, slots=True)
class AddressFacts:
    """One public IP (floating or primary) as a resource of its own: its lifetime starts at its own
    creation and outlives any server it was assigned to; assigned or not, it costs the same."""

    provider: str
    account: str
    resource_id: str
    name: str
    kind: str
    sku: str
    server: str
    cluster: str
    role: str
    created: dt.datetime | None
    ownership: Ownership
    rates: tuple[Rate, ...]
    currency: str
    address: str = ""
    """The IP address itself, so an operator can recognise it in the reconciliation."""


def _address_rate(catalog: Catalog, sku: str, location: str) -> tuple[Rate, ...]:
    """The address's price; one published only monthly is owed whole for every calendar month
    the address exists in, so its "hourly" price is the monthly one, capped at the monthly one."""
    addon = catalog.addon(sku, location)
    if addon is None or not (addon.hourly or addon.monthly):
        return ()
    return (Rate(_EPOCH, addon.hourly or addon.monthly, addon.monthly),)


def address_facts(
    state: LegionState,
    provider: str,
    account: str,
    *,
    servers: Iterable[Server],
    ips: Iterable[PublicIp],
    catalog: Catalog,
) -> list[AddressFacts]:
    """Facts for every listed public IP. One assigned to a listed server takes that server's name,
    cluster, role and ownership (rows read per server; the server's line carries any cleanup flag);
    an unassigned one keeps its own name and is judged by its own labels (a floating IP a tracked
    server holds is ``planned``), so a forgotten labelled address shows as ours and the
    reconciliation flags it for cleanup."""
    tracked = tracked_index(state, provider)
    held = held_floating_ips(state, provider)
    by_id = {s.id: s for s in servers}
    out: list[AddressFacts] = []
    for ip in ips:
        host = by_id.get(ip.server_id or "")
        if host is not None:
            ownership, cluster, role = ownership_of(tracked, host)
        elif ip.kind == "floating" and ip.id in held:
            ownership, cluster, role = "planned", "", ""
        else:
            ownership, cluster, role = ("labelled" if legion_made(ip.labels) else "unlabelled"), "", ""
        sku = f"{ip.kind}_{ip.ip_type}"
        out.append(
            AddressFacts(
                provider=provider,
                account=account,
                resource_id=f"{ip.kind}_ip/{ip.id}",
                name=host.name if host is not None else ip.name,
                kind=f"{ip.kind}_ip",
                sku=sku,
                server=ip.server_id or "",
                cluster=cluster,
                role=role,
                created=ip.created,
                ownership=ownership,
                rates=_address_rate(catalog, sku, ip.location or ""),
                currency=catalog.currency,
                address=ip.ip,
            )
        )
    return out


def public_ip_of(resource_id: str) -> tuple[PublicIpKind, str] | None:
    """The kind and provider id of the public IP a ledger resource id names (``floating_ip/5``),
    or None for anything else (a server)."""
    prefix, _, ip_id = resource_id.partition("/")
    kind = next((k for k in PUBLIC_IP_KINDS if prefix == f"{k}_ip"), None)
    return (kind, ip_id) if kind is not None and ip_id else None


def address_rows(facts: Sequence[AddressFacts], since: dt.datetime, until: dt.datetime) -> list[LedgerRow]:
    """Legion's estimate per address and UTC day in ``[since, until)``, by the same hourly rules as
    servers (:func:`estimate_rows`), from the address's own creation."""
    rows: list[LedgerRow] = []
    first_month = month_start(since)
    for fact in facts:
        if not fact.rates:
            continue
        created = max(fact.created or since, first_month)
        head = (fact.provider, fact.account, fact.resource_id, fact.name, fact.kind, fact.cluster, fact.role)
        tail = (fact.currency, fact.sku, fact.ownership, fact.server)
        rows += _daily_rows(head, tail, created, since=since, until=until, rates=fact.rates)
    return rows


def estimate_rows(facts: Sequence[ServerFacts], since: dt.datetime, until: dt.datetime) -> list[LedgerRow]:
    """Legion's estimate per server and UTC day in ``[since, until)``: what the server's month total
    grew by that day, counted from its creation (an unknown creation counts from ``since``); its
    primary IPv4 address the same way (``<id>/ipv4``, living as long as the server) unless it is
    billed apart (:func:`address_rows`), and traffic
    beyond the included amount as one row for the running month (``<id>/traffic``)."""
    rows: list[LedgerRow] = []
    month = month_start(until)
    first_month = month_start(since)
    for fact in facts:
        # Counting from the first month asked for gives that month the same totals as counting from
        # a creation years earlier (each month restarts its count), without walking those years.
        created = max(fact.created or since, first_month)
        for kind, suffix, rates in (("server", "", fact.rates), ("primary_ipv4", "/ipv4", fact.ipv4_rates)):
            if not rates:
                continue
            sku = fact.sku if kind == "server" else "primary_ipv4"
            head = (
                fact.provider,
                fact.account,
                fact.resource_id + suffix,
                fact.name,
                kind,
                fact.cluster,
                fact.role,
            )
            tail = (fact.currency, sku, fact.ownership, "")
            rows += _daily_rows(head, tail, created, since=since, until=until, rates=rates)
        if fact.traffic > 0:
            rows.append(
                LedgerRow(
                    fact.provider,
                    fact.account,
                    f"{fact.resource_id}/traffic",
                    fact.name,
                    "traffic",
                    fact.cluster,
                    fact.role,
                    month,
                    until,
                    fact.traffic,
                    fact.traffic,
                    fact.currency,
                    "estimate",
                    "outgoing_traffic",
                    fact.ownership,
                )
            )
    return rows


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def usage_rows(
    provider: str,
    account: str,
    entries: Iterable[BillingEntry],
    known: Mapping[str, ServerFacts],
    *,
    until: dt.datetime,
    source: Source = "usage",
) -> list[LedgerRow]:
    """The provider's own lines as rows; lines for one resource and period add up (OVH lists hourly
    and monthly billing apart). ``known`` (facts by resource id) names cluster, role and ownership;
    a resource no longer listed is ``gone``."""
    merged: dict[tuple[str, dt.datetime], LedgerRow] = {}
    for entry in entries:
        resource = entry.resource_id or entry.id
        start = _midnight(entry.period_start or entry.date)
        end = min(_midnight(entry.period_end), until) if entry.period_end else until
        fact = known.get(resource)
        key = (resource, start)
        previous = merged.get(key)
        amount = entry.amount + (previous.billed_cost if previous is not None else Decimal(0))
        merged[key] = LedgerRow(
            provider=provider,
            account=account,
            resource_id=resource,
            resource_name=fact.name if fact is not None else (entry.resource_name or ""),
            kind="server" if entry.resource_id else "other",
            cluster=fact.cluster if fact is not None else "",
            role=fact.role if fact is not None else "",
            start=start,
            end=max(end, start),
            billed_cost=amount,
            list_cost=amount,
            currency=entry.currency,
            source=source,
            sku=(fact.sku if fact is not None else "") or (entry.sku or ""),
            ownership=fact.ownership if fact is not None else "gone",
        )
    return list(merged.values())


def invoice_rows(
    provider: str, account: str, entries: Iterable[BillingEntry], until: dt.datetime
) -> list[LedgerRow]:
    """The provider's invoices as account-level rows (kind ``invoice``, source ``invoice``), one per
    invoice over its billing month."""
    rows: list[LedgerRow] = []
    for entry in entries:
        start = _midnight(entry.period_start or entry.date)
        end = min(_midnight(entry.period_end), until) if entry.period_end else until
        rows.append(
            LedgerRow(
                provider,
                account,
                f"invoice/{entry.id}",
                entry.resource_name or entry.description or entry.id,
                "invoice",
                "",
                "",
                start,
                max(end, start),
                entry.amount,
                entry.amount,
                entry.currency,
                "invoice",
                entry.sku or "invoice",
                "account",
            )
        )
    return rows
