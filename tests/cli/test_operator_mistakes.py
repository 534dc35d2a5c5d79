"""What a first-time operator types wrong, and what ``legion`` answers: one line on stderr that names
the mistake and the way out, a non-zero exit, never a traceback (GUIDE §2, "Errors").

A mistyped command names the nearest real one; a command's own ``--help`` says what it does; an empty
search says back what it searched for, so that a mistyped node name shows; a refused input is refused
before any provider is asked.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from legion_nb.cli.main import build_parser

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py
StoreHetzner = Callable[[str, dict[str, str]], None]  # the ``store_hetzner`` fixture of conftest.py

UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: nobody listens on loopback


def _one_line(result: Any, code: int) -> str:
    """The single stderr line of a refused command, after checking its exit code."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "nearest"),
    [
        (("stauts",), "did you mean 'status'?"),
        (("plan", "sever", "add", "web-1"), "did you mean 'server'?"),
        (("plan", "server", "ad", "web-1"), "did you mean 'add'?"),
        (("billing", "--by", "provder"), "did you mean 'provider'?"),
    ],
)
def test_a_mistyped_word_names_the_nearest_real_one(
    legion: Legion, argv: tuple[str, ...], nearest: str
) -> None:
    assert nearest in _one_line(legion(*argv), 2)


def test_a_word_near_nothing_lists_the_choices(legion: Legion) -> None:
    line = _one_line(legion("telemetry", "--rollup", "2m"), 2)
    assert "(choose from 'raw', '1m', '5m', '1h')" in line and "did you mean" not in line
    line = _one_line(legion("frobnicate"), 2)
    assert line.startswith("legion: unknown command 'frobnicate' (choose from 'init',")


def test_the_bad_inputs_a_newcomer_tries_are_one_line_each(
    legion: Legion, state: str, tmp_path: Path
) -> None:
    assert "wrong password" in _one_line(
        legion("--state", state, "plan", "show", password="not it at all"), 3
    )
    assert "legion init" in _one_line(legion("--state", str(tmp_path / "none.legion"), "plan", "show"), 3)
    assert "not tracked" in _one_line(legion("--state", state, "server", "reboot", "web-9"), 2)
    assert "30s, 15m, 2h or 7d" in _one_line(legion("--state", state, "logs", "--since", "5x"), 2)
    assert "duration '-1h' is not valid" in _one_line(legion("--state", state, "logs", "--since", "-1h"), 2)
    assert "use 1 to" in _one_line(legion("--state", state, "logs", "--limit", "-1"), 2)


def _parsers(
    parser: argparse.ArgumentParser, path: str = "legion"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((f"{path} {name}", child))
                found.extend(_parsers(child, f"{path} {name}"))
    return found


def test_every_command_help_says_what_it_does_and_names_its_arguments_alike() -> None:
    for path, parser in _parsers(build_parser()):
        assert parser.description, f"`{path} --help` does not say what the command does"
        for action in parser._actions:
            if action.option_strings or isinstance(action, argparse._SubParsersAction):
                continue
            shown = action.metavar or action.dest
            if action.choices is None:  # a placeholder reads as one: NAME, RUN_ID, like the GUIDE writes them
                assert isinstance(shown, str) and shown.isupper(), f"{path}: argument {shown!r}"


def test_billing_refuses_a_bad_month_before_asking_any_provider(
    legion: Legion, state: str, store_hetzner: StoreHetzner, caplog: pytest.LogCaptureFixture
) -> None:
    store_hetzner(state, {"url": UNREACHABLE, "token": "x" * 64})
    caplog.set_level(logging.INFO)
    assert "write it as YYYY-MM" in _one_line(legion("--state", state, "billing", "--month", "2026-13"), 2)
    assert "write it as YYYY-MM" in _one_line(
        legion("--state", state, "billing", "daily", "--month", "13"), 2
    )
    assert not [r.getMessage() for r in caplog.records if "billing collection" in r.getMessage()]


def test_a_failed_refresh_names_each_provider_once(
    legion: Legion, state: str, hetzner_block: dict[str, str], store_hetzner: StoreHetzner
) -> None:
    store_hetzner(state, {**hetzner_block, "token": "wrong"})  # refused at once: no retries to wait out
    result = legion("--state", state, "refresh")
    line = _one_line(result, 4)  # a provider refused: exit 4 as README's table says
    headline, reason = result.out.splitlines()[:2]
    assert headline == "refresh failed for hetzner:" and reason.startswith("  hetzner: ")
    for text in (result.out, line):
        assert "hetzner: hetzner:" not in text


def test_status_counts_read_singular_for_one(legion: Legion, state: str) -> None:
    assert legion("--state", state, "plan", "server", "add", "web-1", "--provider", "hetzner").code == 0
    out = legion("--state", state, "status").out
    assert "plan       1 cluster, 1 server, 0 domains, 0 dns zones," in out


def test_an_empty_search_says_what_it_searched_for(legion: Legion, state: str) -> None:
    logs = legion("--state", state, "logs", "--node", "web-9", "--grep", "boom")
    assert logs.code == 0 and logs.out.strip() == "no log lines for node web-9, containing 'boom'"
    telemetry = legion("--state", state, "telemetry", "--node", "web-9", "--metric", "cpu")
    assert telemetry.code == 0
    assert telemetry.out.startswith("no telemetry for node web-9, metric cpu, in the last 1h")


def test_status_says_why_it_stays_locked(legion: Legion, state: str) -> None:
    empty = legion("--state", state, "--password-stdin", "status", password=None)
    assert empty.code == 0 and "unlocked   no (--password-stdin given but stdin is empty" in empty.out
    unasked = legion("--state", state, "status", password=None)
    assert unasked.code == 0 and "unlocked   no (no password: pass it with --password-stdin" in unasked.out
