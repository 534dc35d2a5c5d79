"""Run records are append-only and hash-chained: verify names any edited or removed record or notebook."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from legion_nb.engine.runbooks.records import CellRun, RunRecord, RunStore
from legion_nb.errors import UsageError


def record(n: int, store: RunStore) -> RunRecord:
    run_id = f"run-20260101t00000{n}z-00000{n}"
    path, digest = store.write_output(run_id, json.dumps({"cells": [], "n": n}).encode())
    cell = CellRun(index=1, status="completed", start="s", end="e", duration=0.5, source="x = 1")
    return RunRecord(
        id=run_id,
        runbook="node-recovery",
        input_sha256="0" * 64,
        parameters={"node": f"web-{n}"},
        dry_run=False,
        operator="ops",
        host="box",
        start="2026-01-01T00:00:00Z",
        end="2026-01-01T00:01:00Z",
        status="succeeded",
        exit_status=0,
        cells=(cell,),
        failed_cell=None,
        operations=(f"op-{n}",),
        output_path=str(path),
        output_sha256=digest,
    )


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    runs = RunStore(tmp_path / "logs" / "runbooks")
    for n in (1, 2, 3):
        runs.append(record(n, runs))
    return runs


def record_file(store: RunStore, seq: int) -> Path:
    return next(store.records_dir.glob(f"{seq:06d}-*.json"))


def test_records_chain_and_verify_untouched(store: RunStore) -> None:
    records = store.records()
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].previous == "" and records[1].previous == records[0].hash
    assert records[2].previous == records[1].hash
    report = store.verify()
    assert report.ok and report.checked == 3 and not report.problems
    assert store.verify(records[1].id).ok
    assert store.root.stat().st_mode & 0o777 == 0o700
    assert store.records_dir.stat().st_mode & 0o777 == 0o700
    assert store.outputs_dir.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in store.records_dir.iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in store.outputs_dir.iterdir())


def test_any_single_byte_changed_in_a_record_fails_verify_naming_it(store: RunStore) -> None:
    path = record_file(store, 2)
    original = path.read_bytes()
    for offset in range(len(original)):
        changed = bytearray(original)
        changed[offset] = changed[offset] ^ 0x01
        path.write_bytes(bytes(changed))
        report = store.verify()
        assert not report.ok, f"a change at byte {offset} went unnoticed"
        assert report.problems[0].startswith("record 2 ("), report.problems
    path.write_bytes(original)
    assert store.verify().ok


def test_a_changed_output_notebook_fails_verify_naming_its_record(store: RunStore) -> None:
    output = Path(store.records()[0].output_path)
    content = bytearray(output.read_bytes())
    content[5] ^= 0x01
    output.write_bytes(bytes(content))
    report = store.verify()
    assert not report.ok
    assert report.problems == (
        f"record 1 ({store.records()[0].id}): its output notebook {output} was changed",
    )
    output.unlink()
    assert "is missing" in store.verify().problems[0]


def test_a_record_removed_from_the_middle_fails_verify(store: RunStore) -> None:
    record_file(store, 2).unlink()
    report = store.verify()
    assert not report.ok
    assert (
        report.problems[0] == f"record 2 is missing (the chain jumps to record 3 ({store.records()[1].id}))"
    )
    assert any("record 3" in p and "does not follow" in p for p in report.problems)


def test_a_record_renumbered_to_hide_a_removal_still_breaks_the_chain(store: RunStore) -> None:
    second, third = record_file(store, 2), record_file(store, 3)
    second.unlink()
    third.rename(third.with_name("000002-" + third.name.split("-", 1)[1]))
    report = store.verify()
    assert not report.ok and "does not follow" in report.problems[0] and "record 2" in report.problems[0]


def test_records_are_written_once(store: RunStore) -> None:
    before = {p.name: p.read_bytes() for p in store.records_dir.iterdir()}
    store.append(record(4, store))
    after = {p.name: p.read_bytes() for p in store.records_dir.iterdir()}
    assert {k: after[k] for k in before} == before and len(after) == 4
    with pytest.raises(FileExistsError):
        store.write_output(store.records()[0].id, b"{}")


def test_show_refuses_unknown_and_malformed_run_ids(store: RunStore) -> None:
    with pytest.raises(UsageError, match="no run run-x: 'legion runbook runs' lists the runs"):
        store.get("run-x")
    with pytest.raises(UsageError, match="is not a run id"):
        store.get("../../etc/passwd")
    with pytest.raises(UsageError, match="no run"):
        store.verify("run-nope")


def test_an_empty_store_verifies(tmp_path: Path) -> None:
    empty = RunStore(tmp_path / "none")
    assert empty.verify().ok and empty.records() == [] and not os.path.exists(empty.root)


def test_a_cell_is_named_as_its_author_finds_it_and_old_records_keep_their_hash(store: RunStore) -> None:
    cell = CellRun(index=7, status="failed", source="\n  row = lookup(node)\nprint(row)", execution_count=4)
    assert cell.label == "In [4]: row = lookup(node)"
    tagged = CellRun(index=7, status="failed", source="x" * 80, execution_count=4, tags=("drain",))
    assert tagged.label == "In [4] (tagged drain): " + "x" * 59 + "\u2026"
    assert CellRun(index=7, status="pending").label == "cell 7"  # never ran: no prompt to show
    again = CellRun.from_json(
        json.loads(
            json.dumps(
                RunRecord.from_json(
                    {
                        **store.records()[0].to_json(),
                        "cells": [
                            {
                                "index": 7,
                                "status": "failed",
                                "execution_count": 4,
                                "tags": ["drain"],
                                "source": "y = 2",
                            }
                        ],
                    }
                ).to_json()["cells"][0]
            )
        )
    )
    assert (again.execution_count, again.tags, again.label) == (4, ("drain",), "In [4] (tagged drain): y = 2")
    # a record written before counts and tags were kept reads back to the same bytes and hash
    first = record_file(store, 1)
    assert "execution_count" not in first.read_text() and store.verify().ok
    assert store.records()[0].to_json() == json.loads(first.read_text())
