"""The one codec that turns daemon JSON back into the engine API's typed results."""

from __future__ import annotations

import datetime as dt
import enum
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import pytest

from legion_nb.engine.api import public_methods
from legion_nb.engine.cluster.firewall_plan import OPEN_WARNING
from legion_nb.engine.diff import Diff, FieldDiff, ResourceDiff
from legion_nb.engine.reports import FlaggedResource, MaterializeReport, RefreshReport, RefreshResult
from legion_nb.engine.results import AppSnapshot, CredentialFacts, Removed, StatusReport
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import PlannedAccess, PlannedFirewall, PlannedRule, Scheme
from legion_nb.engine.surface import EngineAPI, api_methods, result_type
from legion_nb.engine.typed_json import ResultShapeError, from_jsonable
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import DaemonProtocolError, UsageError


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Everything:
    when: dt.datetime
    day: dt.date
    path: Path
    colour: Colour
    mode: Literal["a", "b"]
    pair: tuple[int, str]
    many: tuple[float, ...]
    names: frozenset[str]
    table: Mapping[str, Sequence[int]]
    maybe: int | None = None
    either: str | Mapping[str, Any] = ""
    anything: Any = None
    later: list[Everything] = field(default_factory=list)


class Row(TypedDict):
    name: str
    seen: dt.datetime
    note: NotRequired[str]


def roundtrip(value: Any, tp: Any) -> Any:
    return from_jsonable(to_jsonable(value), tp)


def test_every_kind_of_declared_type_comes_back_equal() -> None:
    inner = Everything(
        when=dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC),
        day=dt.date(2026, 1, 2),
        path=Path("/srv/x"),
        colour=Colour.RED,
        mode="b",
        pair=(1, "x"),
        many=(1.0, 2.5),
        names=frozenset({"b", "a"}),
        table={"k": [1, 2]},
    )
    extra = {"maybe": 3, "either": {"rule": "in"}, "anything": [1], "later": [inner]}
    outer = Everything(**{**vars(inner), **extra})
    back = roundtrip(outer, Everything)
    assert back == outer
    assert type(back.pair) is tuple and type(back.when) is dt.datetime and type(back.names) is frozenset
    assert roundtrip(2, float) == 2.0 and type(roundtrip(2, float)) is float
    row = from_jsonable({"name": "a", "seen": "2026-12-05T12:00:00+00:00"}, Row)
    assert row == {"name": "a", "seen": dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)}


def test_records_with_their_own_json_come_back_whole() -> None:
    """A diff's JSON adds counts and per-field ``changed``: ignored, the record is rebuilt from its fields."""
    diff = Diff((ResourceDiff("server", "web-1", "hetzner", "update", (FieldDiff("image", "b", "a", "a"),)),))
    assert roundtrip(diff, Diff) == diff
    scheme = Scheme(
        firewalls={"edge": PlannedFirewall("edge", "hetzner", (PlannedRule("in", "tcp", "22", ("::/0",)),))},
        access=PlannedAccess(("203.0.113.7/32",)),
    )
    assert roundtrip(scheme, Scheme) == scheme
    refreshed = RefreshResult(True, "ok", [RefreshReport("ovh", adopted=("a", "b"))])
    assert roundtrip(refreshed, RefreshResult) == refreshed
    warned = Diff((ResourceDiff("firewall", "fw", "hetzner", "create", (), "derived", (OPEN_WARNING,)),))
    assert roundtrip(warned, Diff) == warned and isinstance(
        roundtrip(warned, Diff).resources[0].warnings, tuple
    )
    report = MaterializeReport(
        "op", True, "succeeded", "done", {}, [], [], [], [FlaggedResource("firewall", "fw", (OPEN_WARNING,))]
    )
    assert roundtrip(report, MaterializeReport) == report


@pytest.mark.parametrize(
    ("value", "tp", "why"),
    [
        ({"removed": "server"}, Removed, "lacks name"),
        ("3", int, "expected int"),
        (True, int, "expected int"),
        ([1, 2, 3], tuple[int, int], "expected 2 items"),
        ("c", Literal["a", "b"], "not one of"),
        ({"resources": "x"}, Diff, "expected a list"),
        (None, str, "expected str"),
        ([1], dict[str, int], "expected an object"),
        (
            {
                "resources": [
                    {
                        "kind": "firewall",
                        "name": "fw",
                        "provider": "h",
                        "action": "create",
                        "fields": [],
                        "warnings": "SSH open",
                    }
                ]
            },
            Diff,
            "expected a list",
        ),
        (
            {"locked": False, "revision": 1, "rows": [{"kind": "firewall", "warnings": [{"code": "x"}]}]},
            AppSnapshot,
            "lacks",
        ),
    ],
)
def test_a_reply_of_the_wrong_shape_is_one_named_error(value: Any, tp: Any, why: str) -> None:
    with pytest.raises(ResultShapeError, match=why) as caught:
        from_jsonable(value, tp, where="diff result")
    assert isinstance(caught.value, DaemonProtocolError) and caught.value.exit_code == 6
    assert "diff result" in str(caught.value) and "\n" not in str(caught.value)


def test_the_declared_api_is_exactly_the_daemons_allow_list() -> None:
    assert api_methods() == public_methods(Engine)
    assert "subscribe" in vars(EngineAPI) and "subscribe" not in api_methods()
    assert result_type("status") is StatusReport and result_type("plan_show") is Scheme
    assert result_type("credentials_show") == list[CredentialFacts] == list[result_type("credentials_set")]
    with pytest.raises(UsageError, match="not an engine API method"):
        result_type("_persistence")


def test_resolving_a_views_type_loads_no_record_module() -> None:
    code = (
        "import sys\nfrom legion_nb.engine.surface import result_type\n"
        "from legion_nb.engine.typed_json import from_jsonable\n"
        "from_jsonable({'state': 's', 'unlocked': True, 'revision': 1}, result_type('unlock'))\n"
        "print(sorted(m for m in ('dataclasses', 'legion_nb.engine.state.model', 'legion_nb.engine.wire',"
        " 'asyncio') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=99)
    assert out.stdout.strip() == "[]"
