"""Public IPs in refresh's orphan list: an address made outside any plan with Legion's labels and
assigned to nothing is an orphan with its kind, address and provider, in the engine's refresh and
diff and in ``legion --json refresh``/``diff`` alike; ``orphan_delete`` deletes it through the
broker, and the next refresh no longer shows it. A refresh lists the addresses once, as it lists
the servers; the snapshot and the analyst's frames carry the same rows. An address without Legion's
labels is never flagged, and a provider that keeps no public IPs (OVH) is skipped without an error.

The addresses are made with the providers' own SDKs, the way a teammate or another tool would.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hcloud import Client
from hcloud.locations import Location
from sandbox.sdkkit import scaleway_client
from scaleway.instance.v1 import InstanceV1API  # type: ignore[import-untyped]

from legion_nb.cli.main import run
from legion_nb.cli.planning import render_diff
from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.emulators.faults import FaultPlan
from legion_nb.emulators.world import SandboxWorld
from legion_nb.engine.reports import RefreshResult
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.engine.typed_json import from_jsonable
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import CapabilityMissingError, UsageError
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.sandbox_engine import sandbox_policy

PASSWORD = "orphan ips password"
IP_LISTS = {
    "hetzner": ("GET /v1/floating_ips", "GET /v1/primary_ips"),
    "scaleway": ("GET /instance/v1/zones/{zone}/ips",),
}
"""The requests one public IP listing makes, as the emulators count them."""
SERVERS = {"hetzner": "GET /v1/servers", "scaleway": "GET /instance/v1/zones/{zone}/servers"}


@pytest.fixture
async def cloud() -> AsyncIterator[SandboxCloud]:
    async with SandboxCloud(SandboxWorld(5, faults=FaultPlan(rate=0.0, seed=5))) as running:
        yield running


async def _open(cloud: SandboxCloud, path: Path) -> Engine:
    engine = create_engine(path, SessionSettings(broker=sandbox_policy()))
    if engine.state_exists():
        await engine.unlock(PASSWORD)
        return engine
    await engine.bootstrap(PASSWORD)
    for name, block in cloud.endpoints().items():
        fields = {key: value for key, value in block.items() if key != "url"}
        await engine.credentials_set(name, fields, endpoint=block["url"])
    return engine


def _legion_cli(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Any]:
    """``legion --json ARGS`` (``text``: without ``--json``) in process, on a worker thread (the
    sandbox answers on this loop)."""
    monkeypatch.setenv("LEGION_PASSWORD", PASSWORD)
    monkeypatch.delenv("LEGION_DAEMON_TOKEN", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    async def legion(*args: str, text: bool = False) -> Any:
        capsys.readouterr()
        code = await asyncio.to_thread(run, ["--state", str(path), *(() if text else ("--json",)), *args])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return captured.out if text else json.loads(captured.out)

    return legion


def _ip_rows(diff: dict[str, Any], provider: str) -> dict[str, dict[str, Any]]:
    """The orphan IP rows of a diff's JSON at ``provider``, by address, with their fields by name."""
    return {
        r["name"]: {"kind": r["kind"], **{f["field"]: f["observed"] for f in r["fields"]}}
        for r in diff["resources"]
        if r["action"] == "orphan"
        and r["kind"] in ("floating_ip", "primary_ip")
        and r["provider"] == provider
    }


def _report(result: RefreshResult, provider: str) -> Any:
    return next(report for report in result.providers if report.provider == provider)


async def _refresh_sees_then_cleanup_deletes(
    engine: Engine,
    cloud: SandboxCloud,
    path: Path,
    legion: Callable[..., Any],
    provider: str,
    ours: list[tuple[str, str]],
    theirs: str,
) -> None:
    """``ours`` (kind, address) must show as orphans everywhere and go; ``theirs`` never shows.
    ``engine`` is open on the state at ``path``: it is closed before the CLI uses that state."""
    try:
        before = cloud.world.counters.snapshot()[provider]
        result = await engine.refresh()
        assert result.ok, result.summary
        after = cloud.world.counters.snapshot()[provider]
        asked = {
            request: after.get(request, 0) - before.get(request, 0)
            for request in (*IP_LISTS[provider], SERVERS[provider])
        }
        assert set(asked.values()) == {asked[SERVERS[provider]]}, f"one listing, as for servers: {asked}"
        report = _report(result, provider)
        words = {"floating_ip": "floating IP", "primary_ip": "primary IP"}
        assert set(report.orphans) == {f"{words[kind]} {address}" for kind, address in ours}
        assert report.public_ips >= len(ours) + 1
        assert from_jsonable(to_jsonable(result), RefreshResult) == result  # the daemon's wire keeps them
        ovh = _report(result, "ovh")
        assert ovh.error is None and "public_ip" in ovh.skipped and ovh.public_ips == 0
        rows = _ip_rows((await engine.diff()).to_json(), provider)
        assert {(row["kind"], address) for address, row in rows.items()} == set(ours)
        assert theirs not in rows
        snapshot = await engine.snapshot()
        shown = {(r["kind"], r["name"]) for r in snapshot["rows"] if r["action"] == "orphan"}
        assert set(ours) <= shown
        frame = await engine.snapshot_frame()  # the analyst's frames read the same rows
        assert all(frame.loc[key, "action"] == "orphan" for key in ours)
        fields = (await engine.diff_frame()).reset_index()
        kept = fields[(fields["field"] == "address") & (fields["action"] == "orphan")]
        assert set(ours) <= {(str(k), o) for k, o in zip(kept["kind"], kept["observed"], strict=True)}
    finally:
        await engine.aclose()

    # the CLI reads the same orphans: from the state the refresh wrote, and by its own refresh
    diffed = await legion("diff")
    cli_rows = _ip_rows(diffed, provider)
    assert {(row["kind"], address) for address, row in cli_rows.items()} == set(ours)
    table = render_diff(diffed).splitlines()  # the table `legion diff` prints from that JSON
    for address, row in cli_rows.items():
        line = next(text for text in table if address in text)
        assert line.split()[:4] == ["orphan", row["kind"], address, provider]
        assert f"provider id {row['provider_id']}" in line
    refreshed = await legion("refresh")
    listed = next(r for r in refreshed["providers"] if r["provider"] == provider)
    assert sorted(listed["orphans"]) == sorted(f"{words[kind]} {address}" for kind, address in ours)
    said = next(line for line in (await legion("refresh", text=True)).splitlines() if "not planned" in line)
    assert all(f"{words[kind]} {address}" in said for kind, address in ours) and theirs not in said

    engine = await _open(cloud, path)
    try:
        with pytest.raises(CapabilityMissingError, match="ovh: has no floating ip capability"):
            await engine.orphan_delete(provider="ovh", resource="floating_ip/1")
        with pytest.raises(UsageError, match=r"not an orphan: .* lists no such public IP"):
            await engine.orphan_delete(provider=provider, resource="floating_ip/404")
        with pytest.raises(UsageError, match="not an orphan: it carries no Legion labels"):
            await engine.orphan_delete(provider=provider, resource=_resource_of(engine, provider, theirs))
        for address, row in cli_rows.items():
            done = await engine.orphan_delete(provider=provider, resource=row["provider_id"])
            assert done.status == "succeeded" and address in done.server
        assert _ip_rows((await engine.diff()).to_json(), provider) == {}, (
            "the deletion is news: no refresh needed"
        )
        report = _report(await engine.refresh(), provider)
        assert not [o for o in report.orphans if " IP " in o]
        observed = engine.state.observed[provider].public_ips
        assert [ip.address for ip in observed.values()] == [theirs], "theirs is still there, untouched"
    finally:
        await engine.aclose()


def _resource_of(engine: Engine, provider: str, address: str) -> str:
    observed = engine.state.observed[provider].public_ips
    return next(ip.resource_id for ip in observed.values() if ip.address == address)


def _hetzner_ips(endpoint: dict[str, str]) -> tuple[list[tuple[str, str]], str]:
    """A floating and a primary IP with Legion's labels, and a floating IP without: hcloud, as is."""
    client = Client(token=endpoint["token"], api_endpoint=endpoint["url"])
    home = Location(name="fsn1")
    labels = OwnershipLabels.new().as_labels()
    floating = client.floating_ips.create(type="ipv4", home_location=home, name="left-vip", labels=labels)
    spare = OwnershipLabels.new().as_labels()
    primary = client.primary_ips.create(type="ipv4", name="spare", location=home, labels=spare)
    theirs = client.floating_ips.create(type="ipv4", home_location=home, name="theirs")
    assert floating.floating_ip.ip and primary.primary_ip.ip and theirs.floating_ip.ip
    ours = [("floating_ip", floating.floating_ip.ip), ("primary_ip", primary.primary_ip.ip)]
    return ours, theirs.floating_ip.ip


def _scaleway_ips(block: dict[str, str]) -> tuple[list[tuple[str, str]], str]:
    """A flexible IP tagged with Legion's labels and one without: Scaleway's SDK, as is."""
    client = scaleway_client(block, block["url"])
    api = InstanceV1API(client)
    ours = api.create_ip(type_="routed_ipv4", tags=list(OwnershipLabels.new().as_tags())).ip
    theirs = api.create_ip(type_="routed_ipv4", tags=["team=ops"]).ip
    return [("floating_ip", ours.address)], theirs.address


@pytest.mark.parametrize(
    ("provider", "make"),
    [("hetzner", _hetzner_ips), ("scaleway", _scaleway_ips)],
    ids=["hetzner-floating-and-primary", "scaleway-flexible"],
)
async def test_an_ip_left_behind_is_an_orphan_everywhere_until_cleanup_deletes_it(
    provider: str,
    make: Callable[[dict[str, str]], tuple[list[tuple[str, str]], str]],
    cloud: SandboxCloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "s.legion"
    ours, theirs = await asyncio.to_thread(make, cloud.endpoints()[provider])
    engine = await _open(cloud, path)
    legion = _legion_cli(path, monkeypatch, capsys)
    await _refresh_sees_then_cleanup_deletes(engine, cloud, path, legion, provider, ours, theirs)
