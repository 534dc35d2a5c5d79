"""The log store: labelled lines, cursor-idempotent appends, substring search, redaction."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from legion_nb.engine.observe.log_store import LogLine, LogStore, level_number
from legion_nb.errors import UsageError

T0 = 1_764_547_200_000


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    opened = LogStore(
        tmp_path / "state.logs" / "logs.db", redact=lambda text: text.replace("s3cret", "[redacted]")
    )
    yield opened  # type: ignore[misc]
    opened.close()


def _journal(node: str, count: int, start: int = 1) -> list[LogLine]:
    return [
        LogLine(
            T0 + seq * 1000, node, "tribes" if seq % 2 else "sshd", f"{node} line {seq} Handshake ok", 6, seq
        )
        for seq in range(start, start + count)
    ]


def test_files_are_private(store: LogStore) -> None:
    store.append(_journal("web-1", 1))
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    for path in store.path.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_line_is_stored_once_per_node_and_cursor(store: LogStore) -> None:
    assert store.append(_journal("web-1", 5), cursor=("journal:web-1", 5)) == 5
    assert store.append(_journal("web-1", 8), cursor=("journal:web-1", 8)) == 3
    assert store.append(_journal("web-2", 2)) == 2
    assert store.count() == 10
    assert store.cursor("journal:web-1") == 8
    legion = [LogLine(T0, "legion", "operation", "materialize started") for _ in range(2)]
    assert store.append(legion) == 2  # Legion's own lines have no cursor: each is kept


def test_search_by_substring_label_level_and_time(store: LogStore) -> None:
    store.append(_journal("web-1", 20))
    store.append([LogLine(T0 + 50_000, "web-2", "kernel", "EXT4-fs error on sda1", level_number("err"), 1)])
    found = store.search(text="line 1")
    assert [t.split(" ", 1)[1] for t in found.text] == [f"line {n} Handshake ok" for n in (1, *range(10, 20))]
    assert len(store.search(text="HANDSHAKE")) == 20  # ASCII case is ignored
    assert store.search(text="ok", nodes=["web-1"], sources=["sshd"]).source == ["sshd"] * 10
    assert store.search(max_level=level_number("warning")).text == ["EXT4-fs error on sda1"]
    assert store.search(nodes=["nobody"]).text == []
    window = store.search(start_ms=T0 + 3000, end_ms=T0 + 5000)
    assert window.seq == [3, 4]
    newest = store.search(limit=3)
    assert newest.node == ["web-1", "web-1", "web-2"] and newest.time_ms == sorted(newest.time_ms)
    assert store.search(text="50%").text == []  # LIKE wildcards in the needle are literal


def test_tail_after_an_id(store: LogStore) -> None:
    store.append(_journal("web-1", 3))
    first = store.search(limit=10)
    store.append(_journal("web-1", 2, start=4))
    tail = store.search(after_id=first.id[-1])
    assert tail.seq == [4, 5]


def test_lines_pass_the_redaction_function(store: LogStore) -> None:
    store.append([LogLine(T0, "legion", "operation", "token s3cret rejected")])
    assert store.search(text="rejected").text == ["token [redacted] rejected"]
    assert store.search(text="s3cret").text == []


def test_retention_keeps_the_index_in_step(store: LogStore) -> None:
    store.append(_journal("web-1", 10))
    assert store.delete_before(T0 + 6000) == 5
    assert store.search(text="handshake").seq == [6, 7, 8, 9, 10]


def test_bad_input_is_refused(store: LogStore) -> None:
    with pytest.raises(UsageError, match="limit"):
        store.search(limit=0)
    with pytest.raises(UsageError, match="log level"):
        level_number("loud")
    assert level_number("error") == 3 and level_number("warn") == 4 and level_number(6) == 6


def test_digits_and_quotes_in_the_needle_match_exactly(store: LogStore) -> None:
    store.append(
        [
            LogLine(T0, "web-1", "sshd", 'Accepted publickey from 127.0.0.1 port 40321 "quoted"'),
            LogLine(T0 + 1, "web-1", "sshd", "Accepted publickey from 127.0.0.1 port 40999"),
        ]
    )
    assert store.search(text="port 40321").text == ['Accepted publickey from 127.0.0.1 port 40321 "quoted"']
    assert len(store.search(text="port 40")) == 2
    assert len(store.search(text='"quoted"')) == 1
    assert store.search(text="port 50321").text == []


def test_a_store_with_an_older_index_is_reindexed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    first = LogStore(path)
    first.append(_journal("web-1", 3))
    with first._file.write() as db:  # as a store written before the folded index
        db.execute("INSERT INTO lines_text (lines_text) VALUES ('delete-all')")
        db.execute("PRAGMA user_version = 1")
    assert first.search(text="handshake").seq == []
    first.close()
    again = LogStore(path)
    try:
        assert again.search(text="handshake").seq == [1, 2, 3]
    finally:
        again.close()
