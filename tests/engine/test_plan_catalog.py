"""A planned server's explicit choices against the provider catalogs.

Editing the plan never calls a provider, but the engine keeps the catalog it read in this session:
against that one an unknown server type, location or image is refused at plan time with the nearest
valid names first; against the embedded snapshot only (which may predate what the provider sells)
the plan is accepted and the diff says plainly what the catalog lacks.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from legion_nb.emulators import hetzner
from legion_nb.emulators.httpkit import serve_in_thread
from legion_nb.emulators.world import SandboxWorld, Timing
from legion_nb.engine import planning
from legion_nb.engine.diff import ResourceDiff, ServerRows
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.snapshot import NOT_IN_CATALOG, CatalogWarnings, StateView
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.catalog import (
    UnknownImageError,
    UnknownLocationError,
    UnknownServerTypeError,
    catalog_misses,
    embedded_catalog,
)
from legion_nb.readonly import with_item


def test_misses_name_what_is_missing_with_the_nearest_choices_first() -> None:
    catalog = embedded_catalog("hetzner")
    assert catalog_misses(catalog, server_type="cx22", location="fsn1", image="debian-12") == ()
    (miss,) = catalog_misses(catalog, server_type="cx999")
    assert miss.sentence() == "server type cx999 is not in the hetzner catalog"
    assert miss.choices[0].startswith("cx") and len(miss.choices) <= 4
    error = miss.error()
    assert isinstance(error, UnknownServerTypeError) and error.exit_code == 2
    assert error.message.startswith("server type cx999 is not in the hetzner catalog; nearest: cx")
    (where,) = catalog_misses(catalog, location="fsn2")
    assert isinstance(where.error(), UnknownLocationError) and where.choices[0] == "fsn1"
    (image,) = catalog_misses(catalog, image="debain-12")
    assert isinstance(image.error(), UnknownImageError) and image.choices[0] == "debian-12"


async def test_without_a_live_catalog_the_plan_is_accepted_and_the_diff_says_what_is_missing(
    engine: Engine,
) -> None:
    await engine.plan_upsert_server(name="web-1", provider="hetzner", server_type="cx999")
    await engine.plan_upsert_server(name="web-2", provider="hetzner", server_type="cx22")
    rows = {r.name: r for r in (await engine.diff()).resources if r.kind == "server"}
    (warning,) = rows["web-1"].warnings
    assert warning.code == NOT_IN_CATALOG
    assert "server type cx999 is not in the hetzner catalog" in warning.message
    assert rows["web-2"].warnings == ()


def test_warned_rows_stay_the_same_objects_until_their_server_or_catalog_changes() -> None:
    """The views downstream reuse rows by identity: a commit that leaves the servers and catalogs
    alone must hand them the very rows of the last view, warnings and all."""
    catalogs = {"hetzner": embedded_catalog("hetzner")}
    state = planning.upsert_server(LegionState(), name="web-1", provider="hetzner", server_type="cx999")
    state = planning.upsert_server(state, name="web-2", provider="hetzner", server_type="cx22")
    rows, warnings = ServerRows(), CatalogWarnings()

    def view(state: LegionState, previous: StateView | None = None) -> StateView:
        return StateView.of(
            state, previous=previous, server_rows=rows, catalog_of=catalogs.__getitem__, warnings=warnings
        )

    def servers(view: StateView) -> dict[str, ResourceDiff]:
        return {r.name: r for r in view.resources if r.kind == "server"}

    first = view(state)
    web_1 = servers(first)["web-1"]
    assert [w.code for w in web_1.warnings] == [NOT_IN_CATALOG]
    zoned = planning.upsert_dns_zone(state, zone="example.org", provider="hetzner")
    second = view(zoned, first)
    assert servers(second) == servers(first)
    assert all(servers(second)[n] is servers(first)[n] for n in ("web-1", "web-2"))
    fields = {key.identity: json for key, _row, json in first.entries}
    assert all(fields[key.identity] is json for key, _row, json in second.entries if key.kind == "server")

    fixed = planning.upsert_server(zoned, name="web-1", provider="hetzner", server_type="cx22")
    assert servers(view(fixed, second))["web-1"].warnings == ()
    catalogs["hetzner"] = replace(catalogs["hetzner"], source="live")
    again = servers(view(zoned, second))
    (warning,) = again["web-1"].warnings
    assert "the catalog read from it" in warning.message  # a new catalog is checked again


async def test_a_live_catalog_refuses_an_unknown_choice_at_plan_time(engine: Engine) -> None:
    world = SandboxWorld(seed=4, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with serve_in_thread(hetzner.create_app, world) as served:
        await engine.credentials_set("hetzner", dict(served.emulator.credentials), endpoint=served.url)
        providers = engine.core.providers
        for _ in range(200):
            if providers.has_credentials("hetzner"):
                break
            await asyncio.sleep(0.01)
        await engine.catalog("hetzner")
        assert providers.live_catalog("hetzner") is not None
        with pytest.raises(UnknownServerTypeError, match=r"cx999 is not in the hetzner catalog; nearest: cx"):
            await engine.plan_upsert_server(name="web-1", provider="hetzner", server_type="cx999")
        with pytest.raises(UnknownLocationError, match="location fsn9 is not in the hetzner catalog"):
            await engine.plan_upsert_server(name="web-1", provider="hetzner", location="fsn9")
        assert engine.state.scheme.servers() == {}  # nothing planned by a refusal
        planned = await engine.plan_upsert_server(
            name="web-1", provider="hetzner", server_type="cx22", location="fsn1"
        )
        assert planned.server_type == "cx22"


async def test_the_catalog_read_is_kept_for_later_sessions_at_the_same_endpoint(
    engine: Engine, state_path: Path, password: str
) -> None:
    world = SandboxWorld(seed=4, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with serve_in_thread(hetzner.create_app, world) as served:
        secrets = dict(served.emulator.credentials)
        await engine.credentials_set("hetzner", secrets, endpoint=served.url)
        await engine.catalog("hetzner")
        await engine.aclose()
        later = create_engine(state_path)
        await later.unlock(password)
        try:
            kept = later.core.providers.live_catalog("hetzner")
            assert kept is not None and kept.server_type("cx22") is not None
            with pytest.raises(UnknownServerTypeError, match="nearest: cx"):
                await later.plan_upsert_server(name="web-1", provider="hetzner", server_type="cx999")
            # Read from another endpoint, it says nothing about this one: accepted, the diff warns.
            await later.credentials_set("hetzner", secrets, endpoint="http://127.0.0.1:9/v1")
            assert later.core.providers.live_catalog("hetzner") is None
            await later.plan_upsert_server(name="web-1", provider="hetzner", server_type="cx999")
        finally:
            await later.aclose()


async def test_a_type_only_the_kept_catalog_sells_is_planned_and_priced_without_a_warning(
    engine: Engine, state_path: Path, password: str
) -> None:
    """Planning and the diff read one catalog (this session's, else the kept one, else the
    snapshot): a newer type the provider sold when last read is neither refused nor warned about."""
    world = SandboxWorld(seed=4, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
    with serve_in_thread(hetzner.create_app, world) as served:
        await engine.credentials_set("hetzner", dict(served.emulator.credentials), endpoint=served.url)
        await engine.catalog("hetzner")
    persistence = engine.assert_unlocked()
    kept = persistence.state.catalogs["hetzner"]
    (cx22,) = (t for t in kept.data["server_types"] if t["name"] == "cx22")
    newer = {**kept.data, "server_types": [*kept.data["server_types"], {**cx22, "name": "cx99", "id": 9999}]}

    def step(state: LegionState) -> tuple[LegionState, None]:
        catalogs = with_item(state.catalogs, "hetzner", replace(kept, data=newer))
        return replace(state, catalogs=catalogs), None

    await persistence.mutate(step, reason="the provider sold a newer type when last read")
    await engine.aclose()
    assert embedded_catalog("hetzner").server_type("cx99") is None
    later = create_engine(state_path)
    await later.unlock(password)
    try:
        await later.plan_upsert_server(name="web-1", provider="hetzner", server_type="cx99", location="fsn1")
        result = await later.diff()
        (row,) = (r for r in result.resources if r.kind == "server")
        assert row.name == "web-1" and row.warnings == ()
        assert result.cost is not None and "web-1" not in result.cost.get("unpriced", ())
        with pytest.raises(UnknownServerTypeError, match="cx999 is not in the hetzner catalog"):
            await later.plan_upsert_server(name="web-2", provider="hetzner", server_type="cx999")
    finally:
        await later.aclose()
