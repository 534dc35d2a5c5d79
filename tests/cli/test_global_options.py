"""The global options work before the command and after it, for every command the parser has.

The list of commands is generated from the parser itself, so a command added later is covered
without touching this test. GUIDE §2 writes ``legion passwd --password-stdin`` and
``legion plan show --json``; both orders must mean the same thing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest

from legion_nb.cli.main import EXIT_CODES, GLOBAL_OPTIONS, _command_word, build_parser, exit_codes_text

GLOBALS: dict[str, list[str]] = {
    "--state": ["--state", "elsewhere.legion"],
    "--json": ["--json"],
    "--password-stdin": ["--password-stdin"],
    "--daemon-token": ["--daemon-token", "00ff"],
    "--lock-timeout": ["--lock-timeout", "5"],
}
EXPECTED: dict[str, tuple[str, object]] = {
    "--state": ("state", "elsewhere.legion"),
    "--json": ("json", True),
    "--password-stdin": ("password_stdin", True),
    "--daemon-token": ("daemon_token", "00ff"),
    "--lock-timeout": ("lock_timeout", 5.0),
}


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable command line prefix: each path down the sub-parsers to a parser with a handler."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                path = (*prefix, name)
                if child.get_default("handler") is not None:
                    found.append(path)
                found.extend(_leaf_commands(child, path))
    return found


def _parser_at(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for word in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def _required_args(parser: argparse.ArgumentParser) -> list[str]:
    """Values for the command's required arguments, so that it parses."""
    argv: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or (
            action.default == argparse.SUPPRESS and not action.required
        ):
            continue
        value = (
            str(next(iter(action.choices)))
            if action.choices
            else "1"
            if action.type in (int, float)
            else "x1"
        )
        if not action.option_strings:
            if action.nargs in (None, 1, "+"):
                argv.append(value)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


COMMANDS = _leaf_commands(build_parser())


def test_the_walk_finds_every_command() -> None:
    assert ("passwd",) in COMMANDS and ("plan", "show") in COMMANDS and ("sandbox", "serve") in COMMANDS
    assert len(COMMANDS) > 40


def _parse(argv: list[str]) -> dict[str, object]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return vars(build_parser(_command_word(argv)).parse_args(argv))
        except SystemExit as exit_:
            raise AssertionError(f"legion {' '.join(argv)} exited {exit_.code}: {err.getvalue()}") from None


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("option", GLOBAL_OPTIONS)
def test_a_global_option_works_before_and_after_every_command(path: tuple[str, ...], option: str) -> None:
    rest = _required_args(_parser_at(build_parser(), path))
    dest, value = EXPECTED[option]
    before = _parse([*GLOBALS[option], *path, *rest])
    after = _parse([*path, *rest, *GLOBALS[option]])
    assert before[dest] == value and after[dest] == value
    before.pop("handler")
    after.pop("handler")
    assert before == after


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_an_option_before_the_command_is_not_reset_by_the_command(path: tuple[str, ...]) -> None:
    rest = _required_args(_parser_at(build_parser(), path))
    parsed = _parse(["--state", "s.legion", "--lock-timeout", "7", *path, *rest])
    assert parsed["state"] == "s.legion" and parsed["lock_timeout"] == 7.0


def test_help_lists_every_exit_code_once() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = out.getvalue()
    assert exit_codes_text() in text
    for code, _meaning in EXIT_CODES:
        assert sum(line.split()[:1] == [str(code)] for line in text.splitlines()) == 1, code
    assert any(line.split()[:1] == ["7"] for line in text.splitlines())


def test_the_readme_lists_every_exit_code() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for code, _meaning in EXIT_CODES:
        assert f"| {code} |" in readme, f"README.md: exit code {code} missing from the exit-code table"
