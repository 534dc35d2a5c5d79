"""Rules for names and plans, each broken rule one :class:`~legion_nb.errors.ValidationError` line.

Names are normalized before they are checked (surrounding space and a trailing dot dropped, lower
case: DNS is case-insensitive), so ``Example.ORG.`` and ``example.org`` are the same zone. The
``normalize_*`` functions return the normalized name or raise; :func:`validate_scheme` checks a whole
scheme (duplicates across clusters, references to unknown servers or zones) and is what decoding a
hand-edited or migrated state can run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from legion_nb.engine.state.model import PROVIDERS, Direction, PlannedRule, Protocol, Provider, Scheme
from legion_nb.errors import ValidationError

__all__ = [
    "MAX_CLUSTER_NAME",
    "MAX_SERVER_NAME",
    "normalize_cluster_name",
    "normalize_host",
    "normalize_hostname",
    "normalize_label",
    "normalize_operator_cidrs",
    "normalize_server_name",
    "normalize_zone",
    "rule_direction",
    "rule_protocol",
    "validate_firewall_rule",
    "validate_provider",
    "validate_scheme",
]

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_MAX_NAME = 253
MAX_SERVER_NAME = 64
"""A server's name is its node certificate's common name (RFC 5280 caps a CN at 64 characters) and
its Linux host name (``HOST_NAME_MAX`` is 64); a DNS host name alone would allow 253."""
MAX_CLUSTER_NAME = 47
"""A cluster's name goes into its derived firewall set ``legion-<cluster>-<provider>``, which must
stay one 63-character DNS label for the longest provider name (``scaleway``), and into its CA's
common name ``<cluster> cluster CA`` (64); the firewall name is the tighter of the two."""
_PORT_RANGE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")
_PORTED = frozenset({"tcp", "udp"})


def _clean(value: str) -> str:
    return value.strip().rstrip(".").lower()


def normalize_label(value: str, *, what: str = "name") -> str:
    """One RFC 1123 label: 1-63 of [a-z0-9-], no hyphen at either end."""
    name = _clean(value)
    if not _LABEL.fullmatch(name):
        raise ValidationError(
            f"{what} {value!r} is not a valid label: "
            "use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    return name


def normalize_hostname(value: str, *, what: str = "host name", min_labels: int = 1) -> str:
    """An RFC 1123 host name: dot-separated labels, at most 253 characters in all."""
    name = _clean(value)
    if not name:
        raise ValidationError(f"{what} is empty")
    if len(name) > _MAX_NAME:
        raise ValidationError(f"{what} {value!r} is longer than {_MAX_NAME} characters")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValidationError(
                f"{what} {value!r} has an invalid label {label!r}: use 1-63 of a-z, 0-9 and '-', "
                "not starting or ending with '-'"
            )
    if len(labels) < min_labels:
        raise ValidationError(f"{what} {value!r} needs at least {min_labels} labels, e.g. example.org")
    return name


def normalize_server_name(value: str) -> str:
    """A planned server's name: a host name that also fits every place it goes (:data:`MAX_SERVER_NAME`)."""
    name = normalize_hostname(value, what="server name")
    because = "a node certificate's common name and a Linux host name hold"
    return _within(name, MAX_SERVER_NAME, f"server name {value!r}", because)


def normalize_cluster_name(value: str) -> str:
    """A cluster's name: one label that also fits its derived names (:data:`MAX_CLUSTER_NAME`)."""
    name = normalize_label(value, what="cluster name")
    because = f"its firewall set 'legion-{name}-scaleway' must stay a DNS label of 63, so it may have"
    return _within(name, MAX_CLUSTER_NAME, f"cluster name {value!r}", because)


def _within(name: str, limit: int, what: str, because: str) -> str:
    """``name`` if it has at most ``limit`` characters; else one line saying which limit it breaks."""
    if len(name) > limit:
        raise ValidationError(f"{what} has {len(name)} characters: {because} at most {limit}")
    return name


def normalize_zone(value: str, *, what: str = "DNS zone") -> str:
    """A zone or domain name: a host name of at least two labels with a non-numeric last label."""
    name = normalize_hostname(value, what=what, min_labels=2)
    if name.rsplit(".", 1)[1].isdigit():
        raise ValidationError(f"{what} {value!r} ends in a numeric label: that is an address, not a zone")
    return name


def normalize_host(value: str, zone: str) -> str:
    """A DNS host relative to ``zone`` (``@`` for the apex); a fully qualified form is accepted too."""
    raw = value.strip()
    if raw == "@":
        return "@"
    name = _clean(raw)
    if name == zone:
        return "@"
    if name.endswith(f".{zone}"):
        name = name[: -len(zone) - 1]
    name = normalize_hostname(name, what="DNS host")
    if len(name) + 1 + len(zone) > _MAX_NAME:
        raise ValidationError(f"DNS host {name}.{zone} is longer than {_MAX_NAME} characters")
    return name


def validate_provider(value: str) -> Provider:
    provider = value.strip().lower()
    for known in PROVIDERS:
        if provider == known:
            return known
    raise ValidationError(f"unknown provider {value!r}: use one of {', '.join(PROVIDERS)}")


_DIRECTIONS: tuple[Direction, ...] = ("in", "out")
_PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp", "icmp", "esp", "gre")


def rule_direction(value: str) -> Direction:
    for direction in _DIRECTIONS:
        if value.strip().lower() == direction:
            return direction
    raise ValidationError(f"firewall rule direction {value!r} must be 'in' or 'out'")


def rule_protocol(value: str) -> Protocol:
    for protocol in _PROTOCOLS:
        if value.strip().lower() == protocol:
            return protocol
    raise ValidationError(f"firewall rule protocol {value!r} must be tcp, udp, icmp, esp or gre")


def validate_firewall_rule(rule: PlannedRule) -> PlannedRule:
    """Check direction, protocol, port (tcp/udp only, 1-65535, low <= high) and source CIDRs."""
    rule_direction(rule.direction)
    rule_protocol(rule.protocol)
    if rule.protocol in _PORTED:
        match = _PORT_RANGE.fullmatch(rule.port)
        if match is None:
            raise ValidationError(
                f"firewall {rule.protocol} rule needs a port like '22' or '1024-2048', got {rule.port!r}"
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= 65535:
            raise ValidationError(f"firewall port range {rule.port!r} must lie in 1-65535 with low <= high")
    elif rule.port:
        raise ValidationError(f"firewall {rule.protocol} rule takes no port, got {rule.port!r}")
    if not rule.sources:
        raise ValidationError(
            f"firewall rule {rule.direction} {rule.protocol} {rule.port} needs at least one address, "
            "e.g. 0.0.0.0/0 ::/0"
        )
    for source in rule.sources:
        try:
            ipaddress.ip_network(source, strict=False)
        except ValueError:
            raise ValidationError(
                f"firewall rule address {source!r} is not an IP network like 10.0.0.0/8"
            ) from None
    return rule


def validate_scheme(scheme: Scheme) -> None:
    """Check a whole scheme: names, duplicates across clusters, and every reference."""
    seen: dict[str, str] = {}
    for cluster_name, cluster in scheme.clusters.items():
        normalize_cluster_name(cluster_name)
        for name, server in cluster.servers.items():
            if name != server.name:
                raise ValidationError(f"server {server.name!r} is filed under the name {name!r}")
            normalize_server_name(name)
            validate_provider(server.provider)
            if name in seen:
                raise ValidationError(
                    f"server {name!r} is planned in two clusters ({seen[name]}, {cluster_name}): remove one"
                )
            seen[name] = cluster_name
    for zone, planned_zone in scheme.dns_zones.items():
        normalize_zone(zone)
        validate_provider(planned_zone.provider)
    for name, domain in scheme.domains.items():
        normalize_zone(name, what="domain")
        validate_provider(domain.provider)
    for fqdn, host in scheme.dns_hosts.items():
        if host.zone not in scheme.dns_zones:
            raise ValidationError(
                f"DNS host {fqdn} refers to the unplanned zone {host.zone}: add the zone first"
            )
        _check_servers(f"DNS host {fqdn}", host.servers, seen)
    for name, firewall in scheme.firewalls.items():
        normalize_label(name, what="firewall name")
        validate_provider(firewall.provider)
        for rule in firewall.rules:
            validate_firewall_rule(rule)
        _check_servers(f"firewall {name}", firewall.servers, seen)
    cidrs = scheme.access.operator_cidrs
    if cidrs and normalize_operator_cidrs(cidrs) != cidrs:
        raise ValidationError("the planned operator CIDRs are not in canonical order: plan them again")


def _check_servers(owner: str, servers: Iterable[str], known: dict[str, str]) -> None:
    names = list(servers)
    unknown = sorted({s for s in names if s not in known})
    if unknown:
        raise ValidationError(f"{owner} refers to unplanned server(s) {', '.join(unknown)}: plan them first")
    if len(set(names)) != len(names):
        raise ValidationError(f"{owner} lists a server twice")


# -- operator access -------------------------------------------------------------------------

_CIDR_EXAMPLE = "a CIDR like 203.0.113.7/32 or 2001:db8::/48"


def _operator_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One operator CIDR, strictly: a bare address is its own host network (``/32``, ``/128``), but
    host bits set under a shorter prefix are refused rather than silently widened or narrowed."""
    entry = text.strip() if isinstance(text, str) else ""
    if not entry or any(c.isspace() for c in entry):
        raise ValidationError(f"operator CIDR {text!r} is not {_CIDR_EXAMPLE}")
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValidationError(f"operator CIDR {text!r} is not {_CIDR_EXAMPLE}") from None
    if network.network_address != ipaddress.ip_network(entry.split("/")[0]).network_address:
        raise ValidationError(
            f"operator CIDR {entry} has host bits set: write {network} for the whole network, "
            f"or {entry.split('/')[0]}/{network.max_prefixlen} for the one address"
        )
    if network.is_multicast or (network.num_addresses == 1 and network.network_address.is_unspecified):
        raise ValidationError(f"operator CIDR {network} is no address an operator connects from")
    return network


def normalize_operator_cidrs(cidrs: Iterable[str]) -> tuple[str, ...]:
    """The operator's CIDRs in canonical form, IPv4 first: each a valid IPv4/IPv6 network, none
    listed twice (also not in another spelling), at least one, and not loopback only (a cloud node
    never sees a connection from its own operator's loopback)."""
    if isinstance(cidrs, str):
        raise ValidationError("operator CIDRs are a list of CIDRs, not one string")
    networks = [_operator_cidr(text) for text in cidrs]
    if not networks:
        raise ValidationError(
            "operator access needs at least one CIDR (to open SSH and the admin API to anywhere, "
            "clear it instead: legion plan access clear)"
        )
    seen: set[str] = set()
    for network in networks:
        if str(network) in seen:
            raise ValidationError(f"operator CIDR {network} is listed twice")
        seen.add(str(network))
    if all(network.is_loopback for network in networks):
        raise ValidationError(
            "operator CIDRs are all loopback: no operator could reach SSH or the admin API; "
            "give the public address(es) you connect from"
        )
    ordered = sorted(networks, key=lambda n: (n.version, n.network_address, n.prefixlen))
    return tuple(str(n) for n in ordered)
