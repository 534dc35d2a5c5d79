"""The ``legion`` command: argument parsing, dispatch and the error contract.

Each command group lives in its own module under ``legion_nb.cli`` and exposes
``register(subparsers)``; it sets ``handler`` (an ``async def (ctx, args) -> int | None``) on its
parsers. Group modules import only argparse-level things at the top (not even asyncio) so that
``legion --help`` and daemon-served commands start fast; engine imports happen inside handlers.

A handler marked :func:`~legion_nb.cli.context.one_shot`, given a daemon token while a daemon
serves the state, runs on the blocking daemon client and is stepped to its end without an event
loop: a warm ``legion status`` then never imports asyncio, which would cost several times the
round trip. Every other command runs under :func:`asyncio.run`, as does a one-shot command with
no daemon to serve it.

The global options (``--state``, ``--json``, ``--password-stdin``, ``--daemon-token``,
``--lock-timeout``) are accepted before the command and after it, at every level
(``legion passwd --password-stdin``, ``legion plan show --json``), as GUIDE §2 writes them: each
sub-parser gets them again with a suppressed default, so a value given after the command wins and
one given before it is never reset.

Operator mistakes end with one line on stderr and the error's exit code (see
:mod:`legion_nb.errors` and :data:`EXIT_CODES`, which ``legion --help`` prints). A bug ends with
exit 70 and one line; ``LEGION_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, NoReturn

from legion_nb.cli.context import DEFAULT_LOCK_TIMEOUT, CliContext, is_one_shot, scrub
from legion_nb.errors import LegionError

__all__ = ["build_parser", "main"]

# One module per command group; each adds its sub-commands to the parser.
COMMAND_GROUPS: tuple[str, ...] = (
    "legion_nb.cli.lifecycle",
    "legion_nb.cli.planning",
    "legion_nb.cli.credentials",
    "legion_nb.cli.daemon",
    "legion_nb.cli.sandbox",
    "legion_nb.cli.terminal",
    "legion_nb.cli.operations",
    "legion_nb.cli.catalog",
    "legion_nb.cli.billing",
    "legion_nb.cli.telemetry",
    "legion_nb.cli.runbooks",
    "legion_nb.cli.repairs",
    "legion_nb.cli.observe",
    "legion_nb.cli.streams",
)

# The group that registers each top-level command. A command builds only its own group's parsers
# (building them all costs more than a warm command's round trip); a command missing here still
# works, through the whole parser. tests/cli checks the table against what the groups register.
COMMAND_OWNERS: dict[str, str] = {
    "init": "legion_nb.cli.lifecycle",
    "passwd": "legion_nb.cli.lifecycle",
    "status": "legion_nb.cli.lifecycle",
    "plan": "legion_nb.cli.planning",
    "diff": "legion_nb.cli.planning",
    "credentials": "legion_nb.cli.credentials",
    "daemon": "legion_nb.cli.daemon",
    "sandbox": "legion_nb.cli.sandbox",
    "terminal": "legion_nb.cli.terminal",
    "materialize": "legion_nb.cli.operations",
    "refresh": "legion_nb.cli.operations",
    "snapshot": "legion_nb.cli.operations",
    "server": "legion_nb.cli.operations",
    "orphan": "legion_nb.cli.operations",
    "catalog": "legion_nb.cli.catalog",
    "billing": "legion_nb.cli.billing",
    "telemetry": "legion_nb.cli.telemetry",
    "logs": "legion_nb.cli.telemetry",
    "runbook": "legion_nb.cli.runbooks",
    "repairs": "legion_nb.cli.repairs",
    "observe": "legion_nb.cli.observe",
    "stream": "legion_nb.cli.streams",
}

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "another Legion error (the line on stderr says which)"),
    (2, "usage: a bad command line, option or input"),
    (3, "state: missing, locked, wrong password, busy or damaged state file"),
    (
        4,
        "provider: a cloud API refused, failed or could not be reached (refresh: the providers at fault)",
    ),
    (5, "operation: an engine operation failed or another is running"),
    (6, "daemon: no daemon, a wrong token or a refused daemon message"),
    (7, "node: SSH, host key, certificate or admin API of a managed node"),
    (70, "internal error (a bug; LEGION_DEBUG=1 shows the traceback)"),
    (130, "interrupted (Ctrl-C)"),
)
"""Every exit status the CLI returns, one line each (``legion terminal`` returns the remote shell's)."""

GLOBAL_OPTIONS: tuple[str, ...] = (
    "--state",
    "--json",
    "--password-stdin",
    "--daemon-token",
    "--lock-timeout",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr, not a usage block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A value like "-1h" reads as a (refused) value, as argparse reads "-1", not as an unknown
        # option: "--since -1h" then says the duration is not valid instead of "expected one argument".
        self._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+[a-z]+$")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # A mistyped command or choice names the nearest one, so that "legion stauts" answers
        # "did you mean 'status'?" instead of only listing every command.
        if action.choices is None or value in action.choices:
            return
        import difflib  # noqa: PLC0415 - only a mistake pays for it

        names = [str(choice) for choice in action.choices]
        close = difflib.get_close_matches(str(value), names, n=1)
        listed = f"(choose from {', '.join(repr(name) for name in names)})"
        if isinstance(action, argparse._SubParsersAction):  # the command list is long: a guess replaces it
            guess = f"; did you mean {close[0]!r}?" if close else f" {listed}"
            raise argparse.ArgumentError(None, f"unknown command {value!r}{guess}")
        guess = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentError(action, f"invalid choice: {value!r}{guess} {listed}")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every argument it adds and sizes each with
        # shutil.get_terminal_size(); importing shutil (bz2, lzma, fnmatch) costs a warm command
        # more than its round trip. The width is the one shutil would give.
        formatter_class: Any = self.formatter_class  # typeshed's protocol omits ``width``
        return formatter_class(prog=self.prog, width=terminal_columns() - 2)  # type: ignore[no-any-return]


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's width, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _NotACommandLine(Exception):
    """The global-options scan gave up; the whole parser will report the mistake."""


class _GlobalsScan(_Parser):
    def error(self, message: str) -> NoReturn:
        raise _NotACommandLine(message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``legion`` parser: every group, or only the one that owns ``command`` when it is known."""
    parser = _Parser(
        prog="legion",
        description="Operate Tribes clusters on Hetzner, OVH and Scaleway.",
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    owner = COMMAND_OWNERS.get(command) if command is not None else None
    for module_name in (owner,) if owner is not None else COMMAND_GROUPS:
        importlib.import_module(module_name).register(sub)
    _describe_commands(parser)
    for child in _sub_parsers(parser):
        _add_global_options(child, after_command=True)
    return parser


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """Each command's own ``--help`` opens with the line its parent's command list gives it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                child = action.choices[listed.dest]
                if child.description is None and listed.help:
                    child.description = listed.help
                _describe_commands(child)


def exit_codes_text() -> str:
    """The exit-code list as ``legion --help`` prints it."""
    lines = ["exit codes:"]
    lines += [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES]
    lines.append("  legion terminal exits with the remote command's status")
    return "\n".join(lines)


def _sub_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser``, depth first (each command and sub-command once)."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                found.append(child)
                found.extend(_sub_parsers(child))
    return found


def _command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, found by parsing the global options exactly as the parser does."""
    scan = _GlobalsScan(prog="legion", add_help=False)
    _add_global_options(scan)
    scan.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        known, _ = scan.parse_known_args(argv)
    except _NotACommandLine:
        return None
    return str(known.rest[0]) if known.rest else None


def _add_global_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """The global options; after a command their defaults are suppressed (see the module notes).

    An option the command already defines itself (``sandbox serve --json``) is left to it.
    """
    taken = parser._option_string_actions
    target: Any = (
        parser.add_argument_group("global options (before or after the command)") if after_command else parser
    )

    def add(flag: str, default: object, **kwargs: Any) -> None:
        if flag not in taken:
            target.add_argument(flag, default=argparse.SUPPRESS if after_command else default, **kwargs)

    add("--state", None, metavar="PATH", help="state file (env LEGION_STATE; default: user data dir)")
    add("--json", False, action="store_true", help="machine output: one JSON document or JSON lines")
    add("--password-stdin", False, action="store_true", help="read the password from the first line of stdin")
    add("--daemon-token", None, metavar="HEX", help="use the running daemon (env LEGION_DAEMON_TOKEN)")
    add(
        "--lock-timeout",
        DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        type=_seconds,
        help=f"how long a write waits for another process's write (default {DEFAULT_LOCK_TIMEOUT:g})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    from legion_nb.engine.paths import resolve_state_path  # noqa: PLC0415

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_word(argv))
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"'{args.command}' needs a sub-command")
    ctx: CliContext | None = None
    try:
        ctx = CliContext(
            state_path=resolve_state_path(args.state),
            json=args.json,
            password_stdin=args.password_stdin,
            daemon_token=args.daemon_token,
            lock_timeout=args.lock_timeout,
        )
        if is_one_shot(handler) and ctx.attach_blocking_daemon():
            try:
                code = _run_without_loop(handler(ctx, args))
            finally:
                ctx.detach_blocking_daemon()
        else:
            import asyncio  # noqa: PLC0415 - a daemon-served one-shot command never needs it

            code = asyncio.run(handler(ctx, args))
    except LegionError as exc:
        _fail(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line, keep the traceback for those who ask
        if os.environ.get("LEGION_DEBUG"):
            import traceback  # noqa: PLC0415

            sys.stderr.write(scrub(traceback.format_exc()))
        _fail(f"internal error: {type(exc).__name__}: {exc} (set LEGION_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL
    finally:
        if ctx is not None:
            ctx.close()  # after the error lines above, which are scrubbed too
    return int(code or 0)


def _run_without_loop(step: Coroutine[Any, Any, int | None]) -> int | None:
    """Run a one-shot handler to its end; it awaits only calls that never suspend.

    A handler that suspends anyway awaited something that needs an event loop: it was marked
    one-shot by mistake, and that is a bug, not something to paper over by retrying.
    """
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("a handler marked one-shot waited for an event loop")


def _fail(message: str) -> None:
    sys.stderr.write(f"legion: {' '.join(scrub(message).split())}\n")
    sys.stderr.flush()
