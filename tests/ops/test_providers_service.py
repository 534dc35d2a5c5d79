"""The provider service: credentials to adapters, catalogs, and the pure refresh/adoption write."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import orjson
import pytest

from legion_nb.engine.diff import diff
from legion_nb.engine.providers_service import adapter_credentials, record_inventory
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.state.codec import codec_for, dumps
from legion_nb.engine.state.model import (
    CreatePending,
    LegionState,
    ObservedProvider,
    OperationLogEntry,
    PlannedCluster,
    PlannedDnsZone,
    PlannedServer,
    Scheme,
    StoredCredentials,
    Tracked,
    TrackedFloatingIp,
    TrackedServer,
)
from legion_nb.errors import ProviderAuthError, UsageError
from legion_nb.providers.records import DnsZone, Firewall, FirewallRule, PortRange, PublicIp, Server

PASSWORD = "ops password 1"
OURS = {"legion/managed": "true", "legion/id": "6f1c1a52-8d1e-4b7e-9a59-3a2f0c1d2e3f"}
STRAY = {"legion/managed": "true", "legion/id": "00000000-0000-4000-8000-000000000009"}
HALF = {"legion/managed": "true"}
OVH = {"application_key": "a", "application_secret": "s", "consumer_key": "c"}


def _server(sid: str, name: str, labels: dict[str, str]) -> Server:
    return Server("hetzner", sid, name, "running", "running", ipv4=f"127.20.0.{sid}", labels=labels)


def _state() -> LegionState:
    servers = {"web-1": PlannedServer("web-1", "hetzner"), "web-2": PlannedServer("web-2", "hetzner")}
    return LegionState(
        scheme=Scheme(
            clusters={"default": PlannedCluster("default", servers)},
            dns_zones={"example.org": PlannedDnsZone("example.org", "hetzner")},
        ),
        tracked=Tracked(
            pending={
                OURS["legion/id"]: CreatePending(
                    key=OURS["legion/id"],
                    provider="hetzner",
                    kind="server",
                    name="web-2",
                    started=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    labels=OURS,
                )
            }
        ),
    )


def test_stored_fields_split_into_secrets_and_options_by_the_descriptor() -> None:
    stored = StoredCredentials(
        "scaleway",
        "http://127.0.0.1:9/",
        {"access_key": "AK", "secret_key": "very-secret", "project_id": "p1", "zone": "fr-par-1"},
    )
    creds = adapter_credentials(stored)
    assert dict(creds.secrets) == {"secret_key": "very-secret"}
    assert dict(creds.options) == {"access_key": "AK", "project_id": "p1", "zone": "fr-par-1"}
    assert "very-secret" not in repr(creds)
    default = adapter_credentials(StoredCredentials("hetzner", None, {"token": "t"}))
    assert default.endpoint.startswith("https://")


def test_refresh_adopts_only_what_legion_owns_and_plans() -> None:
    state = _state()
    web1 = {**OURS, "legion/id": "11111111-1111-4111-8111-111111111111"}
    servers = [
        _server("1", "web-1", web1),  # labelled and planned: adopted
        _server("2", "web-2", OURS),  # labelled, matches the pending create: adopted, intent cleared
        _server("3", "stray", STRAY),  # labelled, nobody plans it: an orphan, never tracked
        _server("4", "hand-made", {}),  # not Legion's: reported, never touched
    ]
    zones = [DnsZone("hetzner", "z1", "example.org", labels=OURS), DnsZone("hetzner", "z2", "other.net")]
    rule = FirewallRule("in", "tcp", PortRange.single(22), sources=("0.0.0.0/0",))
    firewalls = [
        Firewall("hetzner", "f1", "legion-default-hetzner", (rule,), ("1", "2"), labels=STRAY),
        Firewall("hetzner", "f2", "office", (rule,)),
    ]
    new, report = record_inventory(state, "hetzner", servers, zones, firewalls)
    assert sorted(new.tracked.servers) == ["web-1", "web-2"]
    assert new.tracked.servers["web-2"].provider_id == "2" and not new.tracked.pending
    assert new.tracked.dns_zones["example.org"].provider_id == "z1"
    adopted_fw = new.tracked.firewalls["legion-default-hetzner"]
    assert adopted_fw.servers == ("web-1", "web-2") and adopted_fw.rules[0].port == "22"
    assert set(report.adopted) == {
        "server web-1",
        "server web-2",
        "dns zone example.org",
        "firewall legion-default-hetzner",
    }
    assert report.orphans == ("server stray",)
    assert set(report.unmanaged) == {"server hand-made", "dns zone other.net", "firewall office"}
    observed = new.observed["hetzner"]
    assert observed.refreshed is not None and len(observed.servers) == 4
    again, second = record_inventory(new, "hetzner", servers, zones, firewalls)
    assert second.adopted == () and again.tracked == new.tracked


def test_a_zonal_firewall_is_listed_once_per_zone_as_not_legions() -> None:
    zones = ("fr-par-1", "fr-par-2", "nl-ams-1", "pl-waw-1")
    defaults = [
        Firewall("scaleway", f"{zone}/g{i}", "Default security group", location=zone)
        for i, zone in enumerate(zones)
    ]
    new, report = record_inventory(LegionState(), "scaleway", [], [], defaults)
    assert report.unmanaged == tuple(f"firewall Default security group in {zone}" for zone in zones)
    assert report.orphans == () and report.firewalls == 4
    assert not [r for r in diff(new).resources if r.action == "orphan"]


def test_refresh_reports_a_labelled_ip_assigned_to_nothing_as_an_orphan_and_nothing_else() -> None:
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    holder = TrackedServer(
        "web-1",
        "hetzner",
        "1",
        created,
        floating_ips=(TrackedFloatingIp("14", "127.21.0.14"),),
    )
    state = dataclasses.replace(_state(), tracked=Tracked(servers={"web-1": holder}))
    ips = [
        PublicIp("hetzner", "floating", "11", "left-vip", "127.21.0.11", "ipv4", labels=STRAY),
        PublicIp("hetzner", "primary", "11", "spare", "127.21.0.12", "ipv4", labels=OURS),
        PublicIp("hetzner", "floating", "13", "in-use", "127.21.0.13", "ipv4", server_id="1", labels=OURS),
        PublicIp("hetzner", "floating", "14", "moving", "127.21.0.14", "ipv4", labels=OURS),  # web-1 holds it
        PublicIp("hetzner", "floating", "15", "theirs", "127.21.0.15", "ipv4"),
        PublicIp("hetzner", "floating", "16", "no-id", "127.21.0.16", "ipv4", labels=HALF),
    ]
    new, report = record_inventory(state, "hetzner", [], [], [], public_ips=ips)
    assert report.public_ips == 6
    assert report.orphans == ("floating IP 127.21.0.11", "primary IP 127.21.0.12")
    assert report.unmanaged == ()  # an address is no resource of its own to report as someone else's
    observed = new.observed["hetzner"].public_ips
    assert sorted(observed) == [f"floating_ip/{n}" for n in (11, 13, 14, 15, 16)] + ["primary_ip/11"]
    rows = [r for r in diff(new).resources if r.action == "orphan"]
    assert [(r.kind, r.name, r.provider) for r in rows] == [
        ("floating_ip", "127.21.0.11", "hetzner"),
        ("primary_ip", "127.21.0.12", "hetzner"),
    ]
    fields = {f.field: f.observed for f in rows[0].fields}
    assert fields == {
        "provider": "hetzner",
        "provider_id": "floating_ip/11",
        "address": "127.21.0.11",
        "location": None,
    }
    assert "'left-vip'" in rows[0].note

    # the state codec keeps the observed addresses, and a state written before them still opens
    codec = codec_for(ObservedProvider)
    encoded = orjson.loads(dumps(codec.encode(new.observed["hetzner"])))
    assert codec.decode(encoded) == new.observed["hetzner"]
    del encoded["public_ips"]
    assert codec.decode(encoded).public_ips == {}


async def test_credentials_set_after_unlock_registers_the_adapter(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "s.legion")
    await engine.bootstrap(PASSWORD)
    try:
        providers = engine.core.providers
        assert not providers.has_credentials("hetzner")
        with pytest.raises(ProviderAuthError, match="legion credentials set hetzner"):
            providers.adapter("hetzner")
        assert providers.catalog("hetzner").source == "embedded"
        await engine.credentials_set("hetzner", {"token": "t0ken"}, endpoint="http://127.0.0.1:9/v1")
        assert providers.adapter("hetzner").name == "hetzner"  # registered before the call returned
        assert providers.status()[0]["provider"] == "hetzner"
        catalog = await engine.catalog("hetzner", live=False)
        assert catalog["source"] == "embedded" and catalog["server_types"][0]["prices"]
    finally:
        await engine.aclose()
    assert not providers.has_credentials("hetzner")  # dropped at logout


async def test_removed_credentials_are_gone_for_the_next_call(tmp_path: Path) -> None:
    """``credentials_delete``, or any other commit that drops a provider's credentials, unregisters
    it before its caller resumes; the providers left keep their adapters."""
    engine = create_engine(tmp_path / "s.legion")
    await engine.bootstrap(PASSWORD)
    try:
        providers = engine.core.providers
        await engine.credentials_set("hetzner", {"token": "t0ken"}, endpoint="http://127.0.0.1:9/v1")
        scaleway = {"access_key": "a", "secret_key": "s", "project_id": "p", "zone": "fr-par-1"}
        await engine.credentials_set("scaleway", scaleway, endpoint="http://127.0.0.1:9")
        kept = providers.adapter("scaleway")
        await engine.credentials_set("ovh", OVH, endpoint="http://127.0.0.1:9/1.0")

        assert await engine.credentials_delete("ovh") == {"removed": "credentials", "name": "ovh"}
        assert not providers.has_credentials("ovh")
        assert [row["provider"] for row in await engine.credentials_show()] == ["hetzner", "scaleway"]
        with pytest.raises(UsageError, match=r"^no ovh credentials are stored: `legion credentials show`"):
            await engine.credentials_delete("ovh")

        def forget_hetzner(state: LegionState) -> tuple[LegionState, None]:
            rest = {k: v for k, v in state.credentials.items() if k != "hetzner"}
            return dataclasses.replace(state, credentials=rest), None

        await engine.assert_unlocked().mutate(forget_hetzner, reason="test: forget hetzner")
        assert not providers.has_credentials("hetzner")
        with pytest.raises(ProviderAuthError, match="legion credentials set hetzner"):
            providers.adapter("hetzner")
        assert providers.broker.providers() == ("scaleway",)
        assert [row["provider"] for row in providers.status()] == ["scaleway"]
        assert providers.adapter("scaleway") is kept
    finally:
        await engine.aclose()


async def test_operations_left_running_by_an_earlier_process_read_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "s.legion"
    engine = create_engine(path)
    await engine.bootstrap(PASSWORD)
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    entry = OperationLogEntry(id="op-old", kind="materialize", started=started, status="running")
    persistence = engine.assert_unlocked()
    await persistence.mutate(lambda s: (dataclasses.replace(s, operations=(entry,)), None), reason="test")
    await engine.aclose()
    again = create_engine(path)
    await again.unlock(PASSWORD)
    try:
        (found,) = again.state.operations
        assert found.status == "interrupted" and found.id == "op-old"
    finally:
        await again.aclose()
