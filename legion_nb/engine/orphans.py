"""The orphan rule: Legion made it, and nothing in the state holds it.

An orphan is a resource a provider lists that carries both of Legion's ownership labels
(``legion/managed=true`` and a ``legion/id``, what every create writes; OVH instances keep them in
their name, which its adapter reads back into the same labels) while no tracked record, planned
name awaiting adoption or (for a server) pending create claims it: nothing refresh would adopt.
It costs money and nobody will ever delete it, so refresh reports it, the diff shows it and
``orphan_delete`` may delete it, all by :class:`OrphanRule`, so a resource is an orphan in all
three or in none. The billing reconciliation judges labels by the same :func:`legion_made` (it
flags unlabelled servers too, as cost someone else left running, never deleted).

A resource with one of the two labels, or none, is someone else's: Legion never deletes it. Where a
provider keeps no labels on a kind (Scaleway's and OVH's DNS zones, which come with a domain and
are found by name), that kind is never an orphan there.
"""

from __future__ import annotations

from collections.abc import Mapping

from legion_nb.engine.state.model import (
    LegionState,
    ObservedDnsZone,
    ObservedFirewall,
    ObservedPublicIp,
    ObservedServer,
    PlannedServer,
)
from legion_nb.legion_labels import LEGION_ID_LABEL, LEGION_MANAGED_LABEL, claimed_legion_id

__all__ = [
    "ObservedRecord",
    "OrphanRule",
    "held_floating_ips",
    "legion_made",
    "orphan_note",
    "orphan_resource_id",
]

ObservedRecord = ObservedServer | ObservedDnsZone | ObservedFirewall | ObservedPublicIp


def legion_made(labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` are Legion's as it writes them at create time: both ownership labels."""
    return claimed_legion_id(labels) is not None


def _not_legions(labels: Mapping[str, str]) -> str:
    if not labels.get(LEGION_MANAGED_LABEL) and not labels.get(LEGION_ID_LABEL):
        return "it carries no Legion labels (someone else's: Legion never deletes it)"
    return (
        "it carries only part of Legion's labels (legion/managed=true and a legion/id are both "
        "written at create time): not Legion's, Legion never deletes it"
    )


def orphan_resource_id(record: ObservedRecord) -> str:
    """The id ``orphan_delete`` takes for ``record``: a server's provider id (as the billing
    reconciliation names it), ``dns_zone/<zone>``, ``firewall/<provider id>``, or a public IP's
    ``<kind>_ip/<provider id>``."""
    if isinstance(record, ObservedServer):
        return record.provider_id
    if isinstance(record, ObservedDnsZone):
        return f"dns_zone/{record.zone}"
    if isinstance(record, ObservedFirewall):
        return f"firewall/{record.provider_id}"
    return record.resource_id


def orphan_note(record: ObservedServer | ObservedDnsZone | ObservedFirewall) -> str:
    """An orphan row's note: why it is one and the id that deletes it."""
    return f"Legion's labels, held by nothing in the state: orphan_delete takes {orphan_resource_id(record)}"


def held_floating_ips(state: LegionState, provider: str) -> frozenset[str]:
    """Provider ids of the floating IPs the servers tracked at ``provider`` hold."""
    return frozenset(
        ip.provider_id
        for server in state.tracked.servers.values()
        if server.provider == provider
        for ip in server.floating_ips
    )


class OrphanRule:
    """The rule over one state: :meth:`refusal` says why a listed resource is no orphan.

    Built once per state and reused for every record of it (the planned servers and held addresses
    are read once, on the first record that needs them: the diff builds a rule on every commit and
    mostly asks it about no server at all). ``firewalls`` maps each wanted firewall's name to its
    provider: the planned ones by default; callers that derive the cluster firewall sets pass them
    all, since refresh adopts any of them."""

    def __init__(self, state: LegionState, firewalls: Mapping[str, str] | None = None) -> None:
        self._state = state
        self._planned_servers: dict[str, tuple[str, PlannedServer]] | None = None
        self._firewalls = (
            firewalls
            if firewalls is not None
            else {name: str(f.provider) for name, f in state.scheme.firewalls.items()}
        )
        self._held_ips: dict[str, frozenset[str]] = {}

    def is_orphan(self, provider: str, record: ObservedRecord) -> bool:
        return not self.refusal(provider, record)

    def refusal(self, provider: str, record: ObservedRecord) -> str:
        """Why ``record`` (as ``provider`` lists it) is no orphan, or '' when it is one."""
        if isinstance(record, ObservedPublicIp):
            return self._ip(provider, record)
        if not legion_made(record.labels):
            return _not_legions(record.labels)
        if isinstance(record, ObservedServer):
            return self._server(provider, record)
        if isinstance(record, ObservedDnsZone):
            return self._zone(provider, record)
        return self._firewall(provider, record)

    def _server(self, provider: str, server: ObservedServer) -> str:
        tracked = self._state.tracked.servers
        name = next(
            (n for n, t in tracked.items() if t.provider == provider and t.provider_id == server.provider_id),
            None,
        )
        if name is not None:
            return f"the state tracks it as server {name}"
        if self._planned_servers is None:
            self._planned_servers = self._state.scheme.servers()
        plan = self._planned_servers.get(server.name)
        if plan is not None and plan[1].provider == provider and server.name not in tracked:
            return f"it is planned as server {server.name} (refresh adopts it)"
        # Refresh adopts a server its pending create names; zones and firewalls only when planned.
        legion_id = claimed_legion_id(server.labels)
        pending = self._state.tracked.pending.get(legion_id) if legion_id else None
        if pending is not None and pending.kind == "server":
            return f"a pending create of server {pending.name} claims it (refresh adopts it)"
        return ""

    def _zone(self, provider: str, zone: ObservedDnsZone) -> str:
        tracked = self._state.tracked.dns_zones.get(zone.zone)
        if tracked is not None and tracked.provider == provider:
            return f"the state tracks it as DNS zone {zone.zone}"
        planned = self._state.scheme.dns_zones.get(zone.zone)
        if tracked is None and planned is not None and planned.provider == provider:
            return f"it is planned as DNS zone {zone.zone} (refresh adopts it)"
        return ""

    def _firewall(self, provider: str, firewall: ObservedFirewall) -> str:
        tracked = self._state.tracked.firewalls
        name = next(
            (
                n
                for n, t in tracked.items()
                if t.provider == provider and t.provider_id == firewall.provider_id
            ),
            None,
        )
        if name is not None:
            return f"the state tracks it as firewall {name}"
        if self._firewalls.get(firewall.name) == provider and firewall.name not in tracked:
            return f"it is planned as firewall {firewall.name} (refresh adopts it)"
        return ""

    def _ip(self, provider: str, ip: ObservedPublicIp) -> str:
        if not ip.legion_id:
            return _not_legions(ip.labels)
        if ip.server_id:
            return f"it is assigned to server {ip.server_id}"
        held = self._held_ips.get(provider)
        if held is None:
            held = self._held_ips[provider] = held_floating_ips(self._state, provider)
        if ip.kind == "floating" and ip.provider_id in held:
            return "a tracked server holds it"
        return ""
