"""Planning actions: pure functions from a state and arguments to a new state.

They change only the planned scheme (editing a plan never touches a cloud resource; materialization
does that) and share every untouched record with the old state. Each validates its input and the
references it creates, raising one :class:`~legion_nb.errors.ValidationError` line; on error nothing
changes.

A server's explicit choices (server type, location, image) are checked against the provider's
catalog when the caller knows one read from the provider: what it does not sell is refused here,
with the nearest valid names. Without one (only the embedded snapshot, which may predate what the
provider sells now) the plan is accepted and the diff warns about what the snapshot lacks.

"add" is an upsert: planning the same name again replaces its choices. Removal never cascades: an
operator removing a zone that DNS hosts still use, or a server that DNS hosts or firewalls still
name, gets an error listing those users, because silently dropping other plan entries is the kind of
surprise a plan must not have. Remove the users first (or re-plan them without the server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from legion_nb.engine.state.model import (
    DEFAULT_CLUSTER,
    LegionState,
    PlannedAccess,
    PlannedCluster,
    PlannedDnsHost,
    PlannedDnsZone,
    PlannedDomain,
    PlannedFirewall,
    PlannedRule,
    PlannedServer,
    PlannedStream,
    host_fqdn,
)
from legion_nb.engine.state.validation import (
    normalize_cluster_name,
    normalize_host,
    normalize_hostname,
    normalize_label,
    normalize_operator_cidrs,
    normalize_server_name,
    normalize_zone,
    rule_direction,
    rule_protocol,
    validate_firewall_rule,
    validate_provider,
)
from legion_nb.errors import ValidationError
from legion_nb.providers.catalog import catalog_misses
from legion_nb.providers.records import Catalog
from legion_nb.readonly import with_item

__all__ = [
    "clear_operator_cidrs",
    "parse_firewall_rule",
    "remove_dns_host",
    "remove_dns_zone",
    "remove_domain",
    "remove_firewall",
    "remove_server",
    "set_operator_cidrs",
    "stop_stream",
    "upsert_dns_host",
    "upsert_dns_zone",
    "upsert_domain",
    "upsert_firewall",
    "upsert_server",
    "upsert_stream",
]

V = TypeVar("V")
_ROLES = ("cluster", "satellite")


def _without(mapping: Mapping[str, V], key: str) -> dict[str, V]:
    return {k: v for k, v in mapping.items() if k != key}


def _scheme(state: LegionState, **changes: Any) -> LegionState:
    return replace(state, scheme=replace(state.scheme, **changes))


def _choice(value: str | None, what: str) -> str:
    """A catalog choice (server type, location, image): free text checked by the catalog later,
    but never with spaces or control characters; empty means "policy default"."""
    text = (value or "").strip()
    if any(c.isspace() or not c.isprintable() for c in text) or len(text) > 128:
        raise ValidationError(f"{what} {value!r} must be one word of printable characters (at most 128)")
    return text


# -- servers ---------------------------------------------------------------------------------


def upsert_server(
    state: LegionState,
    *,
    name: str,
    provider: str,
    server_type: str | None = None,
    location: str | None = None,
    image: str | None = None,
    cluster: str | None = None,
    role: str = "cluster",
    catalog_of: Callable[[str], Catalog | None] | None = None,
) -> LegionState:
    """Plan a server (or change its choices). ``cluster`` defaults to the server's current cluster,
    else ``default``; moving a server to another cluster drops it from the old one.
    ``catalog_of(provider)`` is the catalog read from the provider, or None when there is none:
    a choice it does not offer raises :class:`~legion_nb.providers.catalog.CatalogChoiceError`."""
    server_name = normalize_server_name(name)
    if role not in _ROLES:
        raise ValidationError(f"server role {role!r} must be 'cluster' or 'satellite'")
    current = state.scheme.find_server(server_name)
    if cluster is None:
        cluster_name = current[0] if current else DEFAULT_CLUSTER
    else:
        cluster_name = normalize_cluster_name(cluster)
    server = PlannedServer(
        name=server_name,
        provider=validate_provider(provider),
        server_type=_choice(server_type, "server type"),
        location=_choice(location, "location"),
        image=_choice(image, "image"),
        role="satellite" if role == "satellite" else "cluster",
    )
    catalog = catalog_of(server.provider) if catalog_of is not None else None
    if catalog is not None:
        misses = catalog_misses(
            catalog, server_type=server.server_type, location=server.location, image=server.image
        )
        if misses:
            raise misses[0].error()
    if current and current[1].provider != server.provider:
        users = [f.name for f in state.scheme.firewalls.values() if server_name in f.servers]
        if users:
            raise ValidationError(
                f"server {server_name} is in the {current[1].provider} firewall(s) "
                f"{', '.join(sorted(users))}: take it out of them before moving it to another provider"
            )
    clusters = dict(state.scheme.clusters)
    if current and current[0] != cluster_name:
        clusters = _drop_server(clusters, current[0], server_name)
    target = clusters.get(cluster_name) or PlannedCluster(name=cluster_name)
    clusters[cluster_name] = replace(target, servers=with_item(target.servers, server_name, server))
    return _scheme(state, clusters=clusters)


def _drop_server(
    clusters: dict[str, PlannedCluster], cluster_name: str, server: str
) -> dict[str, PlannedCluster]:
    """Remove a server from its cluster; a cluster exists through its servers, so an empty one goes."""
    remaining = _without(clusters[cluster_name].servers, server)
    if remaining:
        clusters[cluster_name] = replace(clusters[cluster_name], servers=remaining)
    else:
        del clusters[cluster_name]
    return clusters


def remove_server(state: LegionState, *, name: str) -> LegionState:
    server_name = normalize_hostname(name, what="server name")
    current = state.scheme.find_server(server_name)
    if current is None:
        raise ValidationError(
            f"server {server_name} is not planned: nothing to remove (see 'legion plan show')"
        )
    users = sorted(
        [f"DNS host {h.fqdn}" for h in state.scheme.dns_hosts.values() if server_name in h.servers]
        + [f"firewall {f.name}" for f in state.scheme.firewalls.values() if server_name in f.servers]
    )
    if users:
        raise ValidationError(
            f"server {server_name} is still used by {', '.join(users)}: remove it from them first"
        )
    return _scheme(state, clusters=_drop_server(dict(state.scheme.clusters), current[0], server_name))


# -- domains and zones -----------------------------------------------------------------------


def upsert_domain(state: LegionState, *, name: str, provider: str) -> LegionState:
    domain = PlannedDomain(name=normalize_zone(name, what="domain"), provider=validate_provider(provider))
    return _scheme(state, domains=with_item(state.scheme.domains, domain.name, domain))


def remove_domain(state: LegionState, *, name: str) -> LegionState:
    domain = normalize_zone(name, what="domain")
    if domain not in state.scheme.domains:
        raise ValidationError(f"domain {domain} is not planned: nothing to remove")
    return _scheme(state, domains=_without(state.scheme.domains, domain))


def upsert_dns_zone(state: LegionState, *, zone: str, provider: str) -> LegionState:
    planned = PlannedDnsZone(zone=normalize_zone(zone), provider=validate_provider(provider))
    return _scheme(state, dns_zones=with_item(state.scheme.dns_zones, planned.zone, planned))


def remove_dns_zone(state: LegionState, *, zone: str) -> LegionState:
    name = normalize_zone(zone)
    if name not in state.scheme.dns_zones:
        raise ValidationError(f"DNS zone {name} is not planned: nothing to remove")
    hosts = sorted(fqdn for fqdn, host in state.scheme.dns_hosts.items() if host.zone == name)
    if hosts:
        raise ValidationError(f"DNS zone {name} still has DNS host(s) {', '.join(hosts)}: remove them first")
    return _scheme(state, dns_zones=_without(state.scheme.dns_zones, name))


# -- DNS hosts -------------------------------------------------------------------------------


def _server_names(state: LegionState, servers: Iterable[str], owner: str) -> tuple[str, ...]:
    names = tuple(normalize_hostname(s, what="server name") for s in servers if s.strip())
    if len(set(names)) != len(names):
        raise ValidationError(f"{owner} lists a server twice")
    planned = state.scheme.servers()
    unknown = sorted(n for n in names if n not in planned)
    if unknown:
        raise ValidationError(f"{owner} refers to unplanned server(s) {', '.join(unknown)}: plan them first")
    return names


def upsert_dns_host(state: LegionState, *, host: str, zone: str, servers: Sequence[str]) -> LegionState:
    zone_name = normalize_zone(zone)
    if zone_name not in state.scheme.dns_zones:
        raise ValidationError(
            f"DNS zone {zone_name} is not planned: add it with 'legion plan dns-zone add' first"
        )
    relative = normalize_host(host, zone_name)
    fqdn = host_fqdn(relative, zone_name)
    names = _server_names(state, servers, f"DNS host {fqdn}")
    if not names:
        raise ValidationError(f"DNS host {fqdn} needs at least one server (--servers a,b)")
    planned = PlannedDnsHost(host=relative, zone=zone_name, servers=names)
    return _scheme(state, dns_hosts=with_item(state.scheme.dns_hosts, fqdn, planned))


def remove_dns_host(state: LegionState, *, host: str, zone: str) -> LegionState:
    zone_name = normalize_zone(zone)
    fqdn = host_fqdn(normalize_host(host, zone_name), zone_name)
    if fqdn not in state.scheme.dns_hosts:
        raise ValidationError(f"DNS host {fqdn} is not planned: nothing to remove")
    return _scheme(state, dns_hosts=_without(state.scheme.dns_hosts, fqdn))


# -- firewalls -------------------------------------------------------------------------------


def parse_firewall_rule(spec: str | Mapping[str, Any]) -> PlannedRule:
    """A rule from ``"in tcp 22 0.0.0.0/0 ::/0"`` (direction, protocol, port for tcp/udp, addresses)
    or from a mapping with ``direction``, ``protocol``, ``port`` and ``sources``."""
    if isinstance(spec, str):
        words = spec.split()
        if len(words) < 2:
            raise ValidationError(
                f"firewall rule {spec!r} should read 'DIRECTION PROTOCOL [PORT] ADDRESS...', "
                "e.g. 'in tcp 22 0.0.0.0/0'"
            )
        direction, protocol, rest = rule_direction(words[0]), rule_protocol(words[1]), words[2:]
        port = rest.pop(0) if protocol in ("tcp", "udp") and rest else ""
        rule = PlannedRule(direction=direction, protocol=protocol, port=port, sources=tuple(rest))
    else:
        try:
            rule = PlannedRule(
                direction=rule_direction(str(spec["direction"])),
                protocol=rule_protocol(str(spec["protocol"])),
                port=str(spec.get("port") or ""),
                sources=tuple(str(s) for s in spec.get("sources") or ()),
            )
        except KeyError as exc:
            raise ValidationError(f"firewall rule {dict(spec)!r} lacks {exc.args[0]!r}") from None
    return validate_firewall_rule(rule)


def upsert_firewall(
    state: LegionState,
    *,
    name: str,
    provider: str,
    rules: Sequence[str | Mapping[str, Any]] = (),
    servers: Sequence[str] = (),
) -> LegionState:
    firewall_name = normalize_label(name, what="firewall name")
    provider_name = validate_provider(provider)
    names = _server_names(state, servers, f"firewall {firewall_name}")
    planned = state.scheme.servers()
    foreign = sorted(n for n in names if planned[n][1].provider != provider_name)
    if foreign:
        raise ValidationError(
            f"firewall {firewall_name} is a {provider_name} firewall but server(s) {', '.join(foreign)} "
            "are planned elsewhere: a provider firewall guards only its own servers"
        )
    firewall = PlannedFirewall(
        name=firewall_name,
        provider=provider_name,
        rules=tuple(parse_firewall_rule(r) for r in rules),
        servers=names,
    )
    return _scheme(state, firewalls=with_item(state.scheme.firewalls, firewall_name, firewall))


def remove_firewall(state: LegionState, *, name: str) -> LegionState:
    firewall_name = normalize_label(name, what="firewall name")
    if firewall_name not in state.scheme.firewalls:
        raise ValidationError(f"firewall {firewall_name} is not planned: nothing to remove")
    return _scheme(state, firewalls=_without(state.scheme.firewalls, firewall_name))


# -- operator access -------------------------------------------------------------------------


def set_operator_cidrs(state: LegionState, *, cidrs: Iterable[str]) -> LegionState:
    """Plan the addresses SSH (22) and the node admin API are open to on every cluster firewall."""
    return _scheme(state, access=PlannedAccess(operator_cidrs=normalize_operator_cidrs(cidrs)))


def clear_operator_cidrs(state: LegionState) -> LegionState:
    """Forget the planned operator CIDRs: the cluster firewalls fall back to ``LEGION_OPERATOR_CIDRS``
    or open SSH and the admin API to anywhere (with a warning)."""
    if not state.scheme.access.operator_cidrs:
        return state
    return _scheme(state, access=PlannedAccess())


# -- Sender streams ----------------------------------------------------------------------------


def upsert_stream(state: LegionState, *, name: str, satellite: str, endpoint: str) -> LegionState:
    """Plan stream ``name`` on ``satellite`` (a planned or tracked satellite server), running, to
    ``endpoint`` (``tcp://host:port``, ``http://`` or ``https://`` with a host and a port)."""
    stream = normalize_label(name, what="stream name")
    node = normalize_server_name(satellite)
    role = _role_of(state, node)
    if role is None:
        raise ValidationError(f"server {node} is neither planned nor tracked: plan it with --role satellite")
    if role != "satellite":
        raise ValidationError(f"server {node} is a {role} node: streams run on satellites (--role satellite)")
    target = endpoint.strip()
    parts = urlsplit(target)
    if parts.scheme not in ("tcp", "http", "https") or not parts.hostname:
        raise ValidationError(
            f"stream endpoint {endpoint!r} must be a tcp://, http:// or https:// URL with a host"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None or any(c.isspace() or not c.isprintable() for c in target) or len(target) > 512:
        raise ValidationError(f"stream endpoint {endpoint!r} needs an explicit port and printable characters")
    planned = PlannedStream(name=stream, satellite=node, endpoint=target)
    return _scheme(state, streams=with_item(state.scheme.streams, stream, planned))


def stop_stream(state: LegionState, *, name: str) -> LegionState:
    """Keep stream ``name`` planned but stopped."""
    stream = normalize_label(name, what="stream name")
    current = state.scheme.streams.get(stream)
    if current is None:
        raise ValidationError(f"stream {stream} is not planned: nothing to stop")
    return _scheme(state, streams=with_item(state.scheme.streams, stream, replace(current, running=False)))


def _role_of(state: LegionState, node: str) -> str | None:
    planned = state.scheme.find_server(node)
    if planned is not None:
        return planned[1].role
    tracked = state.tracked.servers.get(node)
    return tracked.role if tracked is not None else None
