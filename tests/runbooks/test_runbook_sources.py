"""The shipped runbooks: each has a purpose, a papermill parameters cell and only public engine calls.

A runbook that reaches into the engine (``legion_nb.engine.*`` modules, ``engine.core``,
``engine.state``, the persistence supervisor, private attributes) would break on the next refactor
and could do what no public method allows; this test fails for any such line.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from legion_nb.engine.runbooks.catalog import default_runbooks_dir, find_runbook, list_runbooks, parse_value
from legion_nb.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "notebooks" / "runbooks").glob("*.ipynb"))
INTERNALS = re.compile(
    r"legion_nb\.(engine|emulators|providers|widgets|cli|sandbox_engine)\b"
    r"|\bengine\.(core|state|assert_unlocked|runbooks|billing|terminals|events)\b"
    r"|\bengine\._"
)


def code_of(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_runbook_uses_only_the_public_engine_api(path: Path) -> None:
    for source in code_of(path):
        for line in source.splitlines():
            assert not INTERNALS.search(line), f"{path.name} reaches inside the engine: {line.strip()}"
    assert any("await legion_nb.connect()" in s for s in code_of(path)), (
        "a runbook reaches the engine by connect()"
    )


def test_the_internals_check_catches_a_reach_inside() -> None:
    for line in (
        "from legion_nb.engine.ops import Ops",
        "engine.core.ops.nbde_status()",
        "engine.state.tracked",
        "engine._persistence",
        "import legion_nb.engine.state",
    ):
        assert INTERNALS.search(line), line
    assert not INTERNALS.search("await engine.node_reinstall(name=node)")


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_runbook_has_a_purpose_and_a_parameters_cell(path: Path) -> None:
    info = find_runbook(path.parent, path.stem)
    assert info.title and len(info.purpose) > 80, "a one-paragraph purpose under the title"
    assert "dry_run" in info.parameters, "every runbook honours dry_run"
    assert all(p["help"] for p in info.parameters.values()), "each parameter says what it is"
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert all(c.get("outputs", []) == [] for c in nb["cells"] if c["cell_type"] == "code"), "shipped clean"


def test_runbooks_ship_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert included["notebooks/runbooks"] == "legion_nb/_runbooks"
    assert default_runbooks_dir() == ROOT / "notebooks" / "runbooks"  # a checkout reads them in place
    assert {r.name for r in list_runbooks(default_runbooks_dir())} == {p.stem for p in RUNBOOKS}
    assert any("papermill==" in d for d in config["project"]["dependencies"])


def test_stream_recovery_restarts_through_the_stream_methods() -> None:
    # The restart is the public stop and start of the planned stream, judged by a fresh probe.
    source = "\n".join(code_of(ROOT / "notebooks" / "runbooks" / "stream-recovery.ipynb"))
    for call in ("engine.stream_list(probe=True)", "engine.stream_stop(stream)", "engine.stream_start("):
        assert call in source, call


def test_parameter_values_and_names() -> None:
    assert parse_value("web-2") == "web-2" and parse_value("false") is False and parse_value("30") == 30
    assert parse_value('["a", "b"]') == ["a", "b"]
    with pytest.raises(UsageError, match="is not a runbook name"):
        find_runbook(default_runbooks_dir(), "../secrets")
