"""The analyst's frames of the snapshot and the diff carry each row's warnings in a column of its own:
text to read and filter, ``<NA>`` where a row has none."""

from __future__ import annotations

import pandas as pd

from legion_nb.engine import planning
from legion_nb.engine.cluster.firewall_plan import OPEN_WARNING
from legion_nb.engine.diff import diff
from legion_nb.engine.frame_wire import frame_from_wire, frame_wire
from legion_nb.engine.snapshot import assemble, with_derived_firewalls
from legion_nb.engine.state.model import LegionState, empty_state
from legion_nb.engine.view_frames import diff_frame, snapshot_frame
from legion_nb.engine.wire import to_jsonable

FIREWALL = ("firewall", "legion-default-hetzner")


def _state(*, access: tuple[str, ...] = ()) -> LegionState:
    state = planning.upsert_server(empty_state(), name="web-1", provider="hetzner")
    return planning.set_operator_cidrs(state, cidrs=access) if access else state


def test_the_snapshot_frame_has_a_warnings_column_and_the_note_only_explains() -> None:
    frame = snapshot_frame(to_jsonable(assemble(_state(), 1, []))["rows"])
    assert "warnings" in frame.columns
    assert str(frame["warnings"].dtype) == "string"
    assert frame.loc[FIREWALL, "warnings"] == OPEN_WARNING.message
    assert frame.loc[FIREWALL, "note"] == "derived from cluster default"
    assert frame.loc[("server", "web-1"), "warnings"] is pd.NA
    # The column filters the way an analyst expects: by presence and by text.
    assert frame[frame["warnings"].notna()].index.tolist() == [FIREWALL]
    assert frame[frame["warnings"].str.contains("anywhere")].index.tolist() == [FIREWALL]
    assert "()" not in frame.to_string()


def test_a_rows_several_warnings_read_as_one_text_joined_by_semicolons() -> None:
    rows = [
        {
            "kind": "firewall",
            "name": "fw",
            "warnings": [{"code": "a", "message": "one"}, {"code": "b", "message": "two"}],
        },
        {"kind": "server", "name": "web-1", "warnings": []},
    ]
    frame = snapshot_frame(rows)
    assert frame.loc[("firewall", "fw"), "warnings"] == "one; two"
    assert frame["warnings"].isna().tolist() == [False, True]


def test_the_diff_frame_repeats_a_resources_warnings_on_each_of_its_field_rows() -> None:
    state = _state()
    frame = diff_frame(with_derived_firewalls(diff(state), state).to_json()["resources"]).sort_index()
    firewall = frame.loc[FIREWALL]
    assert str(frame["warnings"].dtype) == "string"
    assert len(firewall) >= 1 and all(w == OPEN_WARNING.message for w in firewall["warnings"])
    assert frame.loc[("server", "web-1")]["warnings"].isna().all()


def test_planned_access_leaves_the_warnings_column_empty() -> None:
    frame = snapshot_frame(to_jsonable(assemble(_state(access=("198.51.100.7/32",)), 1, []))["rows"])
    assert frame.loc[FIREWALL, "warnings"] is pd.NA


def test_the_warnings_column_crosses_the_wire_form_unchanged() -> None:
    frame = snapshot_frame(to_jsonable(assemble(_state(), 1, []))["rows"]).reset_index()
    wire = frame_wire(frame)
    assert wire["columns"]["warnings"] == "string"
    assert sorted(row["warnings"] for row in wire["rows"] if row["warnings"]) == [OPEN_WARNING.message]
    pd.testing.assert_frame_equal(frame_from_wire(wire), frame)
