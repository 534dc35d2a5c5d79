"""Operator access through the engine API: planned, shown, diffed, encrypted, and kept on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from legion_nb.engine.diff import ACCESS_FIELD
from legion_nb.engine.runtime import Engine
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import ValidationError

PASSWORD = "correct horse battery staple"  # the password of the ``engine`` fixture (conftest.py)


async def test_access_is_planned_shown_diffed_and_survives_unlock(engine: Engine, state_path: Path) -> None:
    await engine.plan_upsert_server(name="web-1", provider="hetzner")
    access = await engine.plan_set_operator_cidrs(cidrs=["2001:db8::/48", "198.51.100.7"])
    assert access.operator_cidrs == ("198.51.100.7/32", "2001:db8::/48")
    shown = to_jsonable(await engine.plan_show())
    assert shown["access"] == {"operator_cidrs": ["198.51.100.7/32", "2001:db8::/48"]}

    rows = {r.name: r for r in (await engine.diff()).resources}
    firewall = rows["legion-default-hetzner"]
    assert firewall.action == "create"
    assert {f.field: f.planned for f in firewall.fields}[ACCESS_FIELD] == "198.51.100.7/32,2001:db8::/48"

    assert b"198.51.100.7" not in state_path.read_bytes()  # encrypted with the rest of the state
    await engine.logout()
    await engine.unlock(PASSWORD)
    assert (await engine.plan_show()).access.operator_cidrs == ("198.51.100.7/32", "2001:db8::/48")

    cleared = await engine.plan_clear_operator_cidrs()
    assert cleared.operator_cidrs == ()
    rows = {r.name: r for r in (await engine.diff()).resources}
    assert {f.field: f.planned for f in rows["legion-default-hetzner"].fields}[
        ACCESS_FIELD
    ] == "0.0.0.0/0,::/0"


@pytest.mark.parametrize("cidrs", [["203.0.113.7/24"], [], ["::1"], "198.51.100.7/32", ["a", "b"]])
async def test_bad_access_is_refused_and_the_plan_is_kept(engine: Engine, cidrs: object) -> None:
    await engine.plan_set_operator_cidrs(cidrs=["198.51.100.7"])
    revision = (await engine.status())["revision"]
    with pytest.raises(ValidationError) as info:
        await engine.plan_set_operator_cidrs(cidrs=cidrs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert (await engine.plan_show()).access.operator_cidrs == ("198.51.100.7/32",)
    assert (await engine.status())["revision"] == revision
