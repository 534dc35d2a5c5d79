"""What every CLI command gets: global options, the password, output, and the engine API.

Commands ask :meth:`CliContext.api` for the :class:`~legion_nb.engine.api.EngineAPI` and call
its typed methods (``await api.status()``). In process that is the engine itself; with a daemon
token it is a daemon client, which returns the same typed results, so every command behaves the
same whichever path serves it. :meth:`CliContext.emit` prints a result as JSON or as text.

A handler marked :func:`one_shot` awaits nothing but those calls and the context's own I/O, so a
live daemon can serve it on a blocking socket with no event loop: the CLI then never imports
asyncio, which costs a warm command more than its round trip (see :mod:`legion_nb.cli.main`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from legion_nb.errors import LegionError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from legion_nb.engine.daemon.syncclient import BlockingRemote
    from legion_nb.engine.surface import EngineAPI

__all__ = ["DEFAULT_LOCK_TIMEOUT", "CliContext", "is_one_shot", "one_shot"]

PASSWORD_ENV = "LEGION_PASSWORD"  # noqa: S105 - the variable's name, not a password
DAEMON_TOKEN_ENV = "LEGION_DAEMON_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_LOCK_TIMEOUT = 30.0
"""Seconds a CLI write waits for another process's write (``--lock-timeout``), as operators' loops expect."""


_Handler = TypeVar("_Handler", bound=Callable[..., Any])
_ONE_SHOT = "_legion_one_shot"


def one_shot(handler: _Handler) -> _Handler:
    """Mark a handler that awaits only ``ctx.api()`` calls (and the context's own I/O).

    Such a handler never needs an event loop when a daemon serves it, so the CLI runs it on the
    blocking daemon client without importing asyncio. A handler that awaits anything else
    (tasks, sleeps, subscriptions, the terminal) must stay unmarked.
    """
    setattr(handler, _ONE_SHOT, True)
    return handler


def is_one_shot(handler: object) -> bool:
    return getattr(handler, _ONE_SHOT, False) is True


class CliContext:
    """The global options of one command, and what it has read or connected so far.

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect`` (with ``ast``,
    ``dis`` and ``tokenize``), which a daemon-served command would pay for on every run.
    """

    __slots__ = (
        "_blocking",
        "_blocking_error",
        "_stdin_lines",
        "daemon_token",
        "json",
        "lock_timeout",
        "password_stdin",
        "state_path",
        "via_daemon",
    )

    def __init__(
        self,
        state_path: Path,
        json: bool = False,
        password_stdin: bool = False,
        daemon_token: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.state_path = state_path
        self.lock_timeout = lock_timeout
        self.json = json
        self.password_stdin = password_stdin
        self.daemon_token = daemon_token
        self._stdin_lines: list[str] | None = None
        self._blocking: BlockingRemote | None = None
        self._blocking_error: LegionError | None = None
        self.via_daemon = False
        """Whether the last :meth:`api` was served by a daemon (rather than an engine in process)."""

    def __repr__(self) -> str:
        token = None if self.daemon_token is None else "<hidden>"  # a secret never shows in a repr
        return (
            f"CliContext(state_path={self.state_path!r}, json={self.json!r}, "
            f"password_stdin={self.password_stdin!r}, daemon_token={token!r}, "
            f"lock_timeout={self.lock_timeout!r})"
        )

    # -- input -------------------------------------------------------------------------------

    def _stdin(self) -> list[str]:
        if self._stdin_lines is None:
            self._stdin_lines = sys.stdin.read().splitlines(keepends=True) if not sys.stdin.isatty() else []
        return self._stdin_lines

    def password(self, prompt: str = "Password: ") -> str:
        """The unlock password: first stdin line with ``--password-stdin``, else the env, else a prompt."""
        if self.password_stdin:
            lines = self._stdin()
            if not lines:
                raise UsageError(
                    "--password-stdin given but stdin is empty: pipe the password as the first line"
                )
            return lines.pop(0).rstrip("\r\n")
        env = os.environ.get(PASSWORD_ENV)
        if env is not None:
            return env
        if not sys.stdin.isatty():
            raise UsageError(
                f"no password: pass it with --password-stdin or the {PASSWORD_ENV} environment variable"
            )
        return _ask(prompt)

    def new_password(self) -> str:
        """A new password: the next stdin line with ``--password-stdin``, else asked twice."""
        if self.password_stdin:
            return self.password()
        first = _ask("New password: ")
        if _ask("Repeat new password: ") != first:
            raise UsageError("the two new passwords differ: nothing was changed")
        return first

    def stdin_rest(self) -> str:
        """Whatever stdin holds after the password line: the command's own input."""
        if self.password_stdin:
            lines = self._stdin()
            rest = "".join(lines)
            lines.clear()
            return rest
        return sys.stdin.read()

    # -- output ------------------------------------------------------------------------------

    def emit(
        self, result: Any, human: Callable[[Any], str] | None = None, *, keep_order: bool = False
    ) -> None:
        """Print a result: one JSON document with ``--json``, else the human rendering.

        JSON keys are sorted unless ``keep_order`` (frame rows: ``time`` first, then the columns).
        """
        data = scrub_data(result if _plain_json(result) else _to_jsonable(result))
        if self.json:
            sys.stdout.write(json.dumps(data, sort_keys=not keep_order) + "\n")
        elif human is not None:
            text = human(data)
            if text:
                sys.stdout.write(scrub(text.rstrip("\n")) + "\n")
        elif data is not None:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()

    def emit_line(self, data: Any, *, keep_order: bool = False) -> None:
        """One JSON line of a stream (``--json`` with live output)."""
        from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415

        sys.stdout.write(json.dumps(scrub_data(to_jsonable(data)), sort_keys=not keep_order) + "\n")
        sys.stdout.flush()

    # -- the engine --------------------------------------------------------------------------

    def token(self) -> str | None:
        return self.daemon_token or os.environ.get(DAEMON_TOKEN_ENV) or None

    def attach_blocking_daemon(self) -> bool:
        """Connect to this state's daemon on a blocking socket, if a token is given and one answers.

        True means every :meth:`api` of this command is that daemon and no event loop is needed;
        False means nothing changed (no token, no daemon, Windows) and :meth:`api` decides as
        usual. A refusal (wrong token, a directory that is not ours) is kept and raised by the
        first :meth:`api`, where the asyncio path would raise it, so errors keep their order.
        """
        token = self.token()
        if not token:
            return False
        from legion_nb.engine.daemon.syncclient import connect_blocking  # noqa: PLC0415

        try:
            self._blocking = connect_blocking(self.state_path, token)
        except LegionError as exc:
            self._blocking_error = exc
            return True
        return self._blocking is not None

    def detach_blocking_daemon(self) -> None:
        blocking, self._blocking = self._blocking, None
        if blocking is not None:
            blocking.close()

    @asynccontextmanager
    async def api(self, *, unlock: bool = True, observe: bool = False) -> AsyncIterator[EngineAPI]:
        """The engine API: through a live daemon when a token is given, else in this process
        (unlocked first unless ``unlock`` is false).

        An engine made here runs its observation scheduler only when ``observe`` says so (``legion
        observe``): a one-shot command must not start refreshes it would cancel a moment later."""
        if self._blocking_error is not None:
            raise self._blocking_error
        if self._blocking is not None:
            self.via_daemon = True
            yield self._blocking
            return
        token = self.token()
        if token:
            from legion_nb.engine.daemon.client import connect_if_alive  # noqa: PLC0415

            remote = await connect_if_alive(self.state_path, token)
            if remote is not None:
                self.via_daemon = True
                try:
                    yield remote
                finally:
                    await remote.aclose()
                return
        import dataclasses  # noqa: PLC0415 - not on a daemon-served command's path

        from legion_nb.engine.observe.scheduler import ObservationSettings  # noqa: PLC0415
        from legion_nb.engine.runtime import create_engine  # noqa: PLC0415
        from legion_nb.engine.session import SessionSettings  # noqa: PLC0415
        from legion_nb.sandbox_engine import linked_settings  # noqa: PLC0415

        # A state a served sandbox is linked to reaches its simulated nodes (legion sandbox serve).
        settings = linked_settings(self.state_path) or SessionSettings()
        settings = dataclasses.replace(settings, observation=ObservationSettings(run=observe))
        engine = create_engine(self.state_path, settings, lock_timeout=self.lock_timeout)
        self.via_daemon = False
        try:
            if unlock:
                await engine.unlock(self.password())
            yield engine
        finally:
            # Results are printed after the engine closes (and withdraws its secrets): keep them
            # scrubbed from this command's output until :meth:`close`.
            from legion_nb.engine import redaction  # noqa: PLC0415 - the engine imported it already

            redaction.publish(self, redaction.active())
            await engine.aclose()

    def close(self) -> None:
        """The command is over: stop scrubbing the secrets of an engine it ran in process."""
        redaction = sys.modules.get("legion_nb.engine.redaction")
        if redaction is not None:
            redaction.withdraw(self)


def _ask(prompt: str) -> str:
    import getpass  # noqa: PLC0415 - only an interactive prompt needs it (termios and friends)

    return getpass.getpass(prompt)


def _plain_json(value: Any) -> bool:
    """Whether ``value`` is JSON as it stands, as every daemon reply is: no conversion to import."""
    if value is None or isinstance(value, str | int | float):
        return True
    if type(value) is list:
        return all(_plain_json(v) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


def _to_jsonable(value: Any) -> Any:
    from legion_nb.engine.wire import to_jsonable  # noqa: PLC0415 - dates, enums, dataclasses, paths

    return to_jsonable(value)


def scrub(text: str) -> str:
    """``text`` without any secret of an engine unlocked in this process.

    The redaction layer is looked up, not imported: if no engine was ever created here (a command
    served by the daemon, whose replies the daemon scrubs), nothing was ever published to scrub,
    and the warm path stays free of the import.
    """
    redaction = sys.modules.get("legion_nb.engine.redaction")
    return text if redaction is None else str(redaction.redact(text))


def scrub_data(data: Any) -> Any:
    """A JSON-like value scrubbed like :func:`scrub`."""
    redaction = sys.modules.get("legion_nb.engine.redaction")
    return data if redaction is None else redaction.redact_data(data)
