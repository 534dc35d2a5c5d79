"""CLI tables keep their declared columns: same offsets whatever the values, long cells cut with an
ellipsis (never wrapped), the open last column whole, and a live table's widths fixed across redraws."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import pytest
from rich.console import Console

from legion_nb.cli.planning import render_diff
from legion_nb.cli.tables import ELLIPSIS, Column, live_view, row_line, table, utc_time

COLUMNS = (Column("NAME", 10), Column("STATE", 8), Column("NOTE"))


def cells(line: str, columns: Sequence[Column]) -> list[str]:
    """``line`` cut at the columns' declared offsets; the two-space gaps between them must be blank."""
    out, start = [], 0
    for column in columns:
        if column.span is None:
            out.append(line[start:])
            break
        out.append(line[start : start + column.span].rstrip())
        gap = line[start + column.span : start + column.span + 2]
        assert gap.strip() == "", (line, column.header)
        start += column.span + 2
    return out


def test_columns_sit_at_their_declared_offsets_whatever_the_values() -> None:
    short = table(COLUMNS, [("a", "ok", "x")]).splitlines()
    long = table(COLUMNS, [("a-much-longer-name", "provisioning", "a note that runs on and on")]).splitlines()
    assert short[0] == long[0] == "NAME        STATE     NOTE"  # the header does not move
    assert cells(short[1], COLUMNS) == ["a", "ok", "x"]
    cut = [f"a-much-lo{ELLIPSIS}", f"provisi{ELLIPSIS}", "a note that runs on and on"]
    assert cells(long[1], COLUMNS) == cut
    assert len(long[1].split("  ")[0]) == 10  # cut to exactly its width, the ellipsis included


def test_cells_stay_on_one_line_and_empty_cells_read_as_a_dash() -> None:
    rendered = table(COLUMNS, [("web-1", None, "line one\nline two\tend"), ("web-2", "", "")])
    lines = rendered.splitlines()
    assert len(lines) == 3  # a line break inside a cell never breaks the row
    assert cells(lines[1], COLUMNS) == ["web-1", "-", "line one line two end"]
    assert cells(lines[2], COLUMNS) == ["web-2", "-", "-"]
    assert row_line(COLUMNS, ("web-1", "running", "ok")) == lines[0].replace(
        "NAME        STATE     NOTE", "web-1       running   ok"
    )


def test_a_header_wider_than_its_width_widens_the_column_and_only_the_last_may_be_open() -> None:
    narrow = (Column("PROVIDER", 3), Column("X"))
    assert table(narrow, [("hetzner", "1")]).splitlines() == ["PROVIDER  X", "hetzner   1"]
    with pytest.raises(ValueError, match="only the last column"):
        table((Column("OPEN"), Column("NEXT", 4)), [("a", "b")])


def test_the_diff_table_keeps_its_columns_for_long_names() -> None:
    long_name = "legion-a-cluster-with-a-long-name-scaleway"
    rows = [
        {"action": "create", "kind": "server", "name": "web-1", "provider": "hetzner", "fields": []},
        {"action": "unchanged", "kind": "firewall", "name": long_name, "provider": "scaleway", "fields": []},
    ]
    lines = render_diff({"resources": rows, "counts": {"create": 1, "unchanged": 1}}).splitlines()
    header = lines[0]
    offsets = [header.index(h) for h in ("KIND", "NAME", "PROVIDER", "DETAIL")]
    for line in lines[1:3]:
        assert [line[o - 2 : o] for o in offsets[:3]] == ["  "] * 3, line
        assert line[offsets[2]] != " "  # every row's provider starts under PROVIDER
    assert f"{long_name[:27]}{ELLIPSIS}" in lines[2]


def _frame(rows: list[tuple[str, str, str]], width: int = 100) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(live_view("materialize", COLUMNS, rows))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line for line in text.splitlines() if line.strip()]


def _bars(line: str) -> list[int]:
    return [m.start() for m in re.finditer("[│┃┆┊|]", line)]


def test_a_live_table_keeps_its_column_widths_from_one_redraw_to_the_next() -> None:
    first = _frame([("web-1", "creating", "")])
    later = _frame(
        [
            ("a-server-with-a-long-name", "provisioning", "[Errno 111] connection refused " * 6),
            ("web-1", "running", ""),
        ]
    )
    header_first = next(line for line in first if "NAME" in line)
    header_later = next(line for line in later if "NAME" in line)
    assert header_first == header_later and _bars(header_first)
    rows = [line for line in later if "server" in line or "web-1" in line]
    assert len(rows) == 2  # nothing wrapped onto a second line
    assert all(_bars(line) == _bars(header_first) for line in rows)
    assert f"a-server-{ELLIPSIS}" in rows[0] and rows[0].rstrip().endswith(f"{ELLIPSIS} │")
    assert "[Errno 111]" in rows[0]  # cell text is text, not rich markup


def test_a_time_reads_to_the_second_in_utc() -> None:
    assert utc_time("2026-12-05T18:55:02.123456+00:00") == "2026-12-05 18:55:02 UTC"
    assert utc_time("2026-12-05T19:55:02.5+01:00") == "2026-12-05 18:55:02 UTC"
    assert utc_time("not a time") == "not a time"
