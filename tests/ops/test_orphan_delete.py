"""One orphan rule and one delete path for every kind: a resource made outside any plan with both
of Legion's labels is an orphan in refresh, the diff and the billing reconciliation alike;
``orphan_delete`` re-reads it through the broker, deletes it, and the diff stops showing it at
once (no refresh). One label alone is someone else's, never flagged; refusals name their reason.

Servers at every sandbox provider (OVH keeps ownership in the name); firewalls at Hetzner and
Scaleway; DNS zones at Hetzner, the one whose zones carry labels (elsewhere a zone is never an orphan).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import legion_nb
from legion_nb.engine.orphan_cleanup import Orphan, delete_orphan
from legion_nb.engine.orphans import OrphanRule, legion_made
from legion_nb.engine.reports import RefreshReport, RefreshResult
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import (
    LegionState,
    ObservedDnsZone,
    ObservedFirewall,
    ObservedProvider,
    ObservedServer,
)
from legion_nb.errors import HeldByStateError, NotLegionsError, ProviderAmbiguousError, UnknownOrphanError
from legion_nb.providers.records import DnsZone
from legion_nb.sandbox_engine import SANDBOX_PROVIDERS, create_unplanned_server, sandbox_holdings

ZONE_LABELS = ("hetzner",)
"""Where DNS zones carry labels; Scaleway's (and OVH's) come with a domain and are found by name."""
ONE_LABEL = {"legion/managed": "true"}
"""Half of what Legion writes at create time: not Legion's."""


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = await legion_nb.sandbox(seed=23)
    try:
        yield engine
    finally:
        await engine.aclose()


def _report(result: RefreshResult, provider: str) -> RefreshReport:
    assert result.ok, result.summary
    return next(r for r in result.providers if r.provider == provider)


async def _orphan_rows(engine: Engine, provider: str) -> dict[tuple[str, str], str]:
    """The diff's orphan rows at ``provider``: (kind, name) -> note."""
    return {
        (r.kind, r.name): r.note
        for r in (await engine.diff()).resources
        if r.action == "orphan" and r.provider == provider
    }


@pytest.mark.parametrize("provider", SANDBOX_PROVIDERS)
async def test_a_labelled_server_made_outside_a_plan_is_an_orphan_until_orphan_delete(
    engine: Engine, provider: str
) -> None:
    ours = await create_unplanned_server(engine, f"{provider}-copy", provider=provider)
    theirs = await create_unplanned_server(
        engine, f"{provider}-theirs", provider=provider, legion_labels=False
    )

    report = _report(await engine.refresh(), provider)
    assert f"server {ours.name}" in report.orphans
    assert not [o for o in report.orphans if theirs.name in o]
    rows = await _orphan_rows(engine, provider)
    assert f"orphan_delete takes {ours.id}" in rows["server", ours.name]
    assert ("server", theirs.name) not in rows
    reconciliation = await engine.billing_reconciliation()
    flagged = {
        r["resource"]: r["ownership"] for r in reconciliation if r["orphan"] and r["provider"] == provider
    }
    assert flagged[ours.id] == "labelled" and flagged[theirs.id] == "unlabelled"

    with pytest.raises(UnknownOrphanError, match=f"{provider} lists no such server"):
        await engine.orphan_delete(provider=provider, resource="no-such-server")
    with pytest.raises(NotLegionsError, match="carries no Legion labels"):
        await engine.orphan_delete(provider=provider, resource=theirs.id)

    done = await engine.orphan_delete(provider=provider, resource=ours.id)
    assert done.status == "succeeded" and ours.name in done.server
    assert ("server", ours.name) not in await _orphan_rows(engine, provider), "gone from the diff at once"
    held = {s.id for s in (await sandbox_holdings(engine, provider)).servers}
    assert ours.id not in held and theirs.id in held, "theirs is untouched"


@pytest.mark.parametrize("provider", ["hetzner", "scaleway"])
async def test_labelled_zones_and_firewalls_are_orphans_and_one_label_is_not(
    engine: Engine, provider: str
) -> None:
    providers = engine.core.providers
    zoned = provider in ZONE_LABELS
    zone = await providers.resilience.create_zone(provider, "left.example.org", 300, str(uuid.uuid4()))
    firewall = await providers.resilience.create_firewall(provider, "left-fw", [], str(uuid.uuid4()))
    half = await providers.broker.mutate(
        provider, "create firewall half-fw", lambda a: a.create_firewall("half-fw", [], ONE_LABEL)
    )

    report = _report(await engine.refresh(), provider)
    assert (f"dns zone {zone.name}" in report.orphans) is zoned
    assert [o for o in report.orphans if o.startswith("firewall")] == [
        f"firewall {firewall.name}" + (f" in {firewall.location}" if firewall.location else "")
    ]
    rows = await _orphan_rows(engine, provider)
    assert f"orphan_delete takes firewall/{firewall.id}" in rows["firewall", firewall.name]
    assert ("firewall", "half-fw") not in rows

    with pytest.raises(NotLegionsError, match="only part of Legion's labels"):
        await engine.orphan_delete(provider=provider, resource=f"firewall/{half.id}")
    with pytest.raises(UnknownOrphanError, match="lists no such DNS zone"):
        await engine.orphan_delete(provider=provider, resource="dns_zone/nothing.example.org")
    with pytest.raises(UnknownOrphanError, match="lists no such firewall"):
        await engine.orphan_delete(provider=provider, resource="firewall/404")

    deleted = [f"firewall/{firewall.id}"]
    if zoned:
        assert f"orphan_delete takes dns_zone/{zone.name}" in rows["dns_zone", zone.name]
        deleted.append(f"dns_zone/{zone.name}")
    else:
        assert ("dns_zone", zone.name) not in rows
        with pytest.raises(NotLegionsError, match="carries no Legion labels"):
            await engine.orphan_delete(provider=provider, resource=f"dns_zone/{zone.name}")
    for resource in deleted:
        done = await engine.orphan_delete(provider=provider, resource=resource)
        assert done.status == "succeeded"
    rows = await _orphan_rows(engine, provider)
    assert ("dns_zone", zone.name) not in rows and ("firewall", firewall.name) not in rows
    holdings = await sandbox_holdings(engine, provider)
    assert (zone.name in holdings.zones) is not zoned
    assert {f.id for f in holdings.firewalls} & {half.id, firewall.id} == {half.id}


async def test_a_planned_or_tracked_zone_is_held_by_the_state(engine: Engine) -> None:
    zone = await engine.core.providers.resilience.create_zone(
        "hetzner", "kept.example.org", 300, str(uuid.uuid4())
    )
    await engine.plan_upsert_dns_zone(zone.name, "hetzner")
    with pytest.raises(HeldByStateError, match=r"planned as DNS zone kept\.example\.org"):
        await engine.orphan_delete(provider="hetzner", resource=f"dns_zone/{zone.name}")
    report = _report(await engine.refresh(), "hetzner")
    assert f"dns zone {zone.name}" in report.adopted and not report.orphans
    with pytest.raises(HeldByStateError, match=r"the state tracks it as DNS zone kept\.example\.org"):
        await engine.orphan_delete(provider="hetzner", resource=f"dns_zone/{zone.name}")
    assert zone.name in (await sandbox_holdings(engine, "hetzner")).zones


def test_the_rule_needs_both_labels_for_every_kind() -> None:
    both = {"legion/managed": "true", "legion/id": str(uuid.uuid4())}
    assert legion_made(both)
    for labels in (ONE_LABEL, {"legion/id": both["legion/id"]}, {**both, "legion/id": "not-a-uuid"}, {}):
        assert not legion_made(labels)
    rule = OrphanRule(LegionState())
    assert rule.is_orphan("hetzner", ObservedFirewall("fw", "1", both))
    assert rule.is_orphan("ovh", ObservedServer("7", "srv", labels=both))
    assert not rule.is_orphan("hetzner", ObservedServer("8", "half", labels=ONE_LABEL))
    assert "only part of Legion's labels" in rule.refusal("hetzner", ObservedDnsZone("z.org", "z", ONE_LABEL))


class _Broker:
    def __init__(self, listed: list[Any]) -> None:
        self.listed = listed

    async def read(self, provider: str, label: str, fn: Any) -> list[Any]:
        return self.listed


class _Resilience:
    async def delete(self, provider: str, label: str, fn: Any) -> None:
        raise ProviderAmbiguousError(provider, f"{label}: no answer")


class _Providers:
    def __init__(self, listed: list[Any]) -> None:
        self.broker = _Broker(listed)
        self.resilience = _Resilience()


class _State:
    def __init__(self, state: Any) -> None:
        self.state = state

    async def mutate(self, fn: Any, *, reason: str) -> None:
        self.state, _ = fn(self.state)


async def test_an_ambiguous_delete_is_settled_by_reading_again_never_guessed() -> None:
    labels = {"legion/managed": "true", "legion/id": str(uuid.uuid4())}
    record = ObservedDnsZone("gone.example.org", "z1", labels)
    observed = ObservedProvider(provider="hetzner", dns_zones={record.zone: record})
    orphan = Orphan("hetzner", f"dns_zone/{record.zone}", "dns_zone", record)

    still = DnsZone(provider="hetzner", id="z1", name=record.zone, labels=labels)
    port = _State(LegionState(observed={"hetzner": observed}))
    with pytest.raises(ProviderAmbiguousError):
        await delete_orphan(_Providers([still]), port, orphan)  # type: ignore[arg-type]
    assert record.zone in port.state.observed["hetzner"].dns_zones, "still listed: nothing forgotten"

    await delete_orphan(_Providers([]), port, orphan)  # type: ignore[arg-type]
    assert record.zone not in port.state.observed["hetzner"].dns_zones, "gone on re-read: deleted"
