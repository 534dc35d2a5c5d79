"""A command builds only its own group's parsers, and that changes nothing the operator sees."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io

import pytest

from legion_nb.cli.main import COMMAND_GROUPS, COMMAND_OWNERS, _command_word, build_parser


def commands_of(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_owner_table_names_every_command_and_its_group() -> None:
    assert commands_of(build_parser()) == set(COMMAND_OWNERS), (
        "add each new top-level command to COMMAND_OWNERS in legion_nb/cli/main.py"
    )
    for module_name in COMMAND_GROUPS:
        registered = commands_of(_parser_of(module_name))
        assert registered == {c for c, owner in COMMAND_OWNERS.items() if owner == module_name}, module_name


def _parser_of(module_name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    importlib.import_module(module_name).register(parser.add_subparsers())
    return parser


ARGVS = [
    ["status"],
    ["--json", "--state", "s.legion", "status"],
    ["--st", "s.legion", "status"],
    ["--state=s.legion", "--pass", "plan", "server", "add", "web-1", "--provider", "hetzner"],
    ["status", "-h"],
    ["plan", "-h"],
    ["plan"],
    ["plan", "server", "add"],
    ["plan", "bogus"],
    ["status", "--bogus"],
    ["--bogus", "status"],
    ["diff", "--fields", "extra"],
    ["server", "reboot"],
    ["orphan", "delete"],
    ["daemon", "start", "--help"],
    ["catalog"],
    ["nosuch"],
    ["-h"],
    [],
    ["--state"],
    ["--json=1", "status"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_the_routed_parser_parses_and_refuses_like_the_whole_one(argv: list[str]) -> None:
    assert _outcome(build_parser(_command_word(argv)), argv) == _outcome(build_parser(), argv)


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = vars(parser.parse_args(argv))
        except SystemExit as exit_:
            return exit_.code, out.getvalue(), err.getvalue()
    handler = args.pop("handler", None)
    return (sorted(args.items()), getattr(handler, "__qualname__", None)), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("columns", [None, "57", "0", "wide"])
def test_help_is_as_wide_as_argparse_would_make_it(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    stock = argparse.HelpFormatter(prog="legion")  # sizes itself with shutil.get_terminal_size()
    assert build_parser("status")._get_formatter()._width == stock._width
