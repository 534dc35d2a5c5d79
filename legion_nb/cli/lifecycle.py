"""``legion init``, ``legion passwd`` and ``legion status``: the state's lifecycle.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import PASSWORD_ENV, CliContext, one_shot
from legion_nb.errors import StateExistsError, UsageError

if TYPE_CHECKING:
    from legion_nb.engine.surface import EngineAPI

__all__ = ["register", "unlocked_api"]


def register(sub: Any) -> None:
    init = sub.add_parser("init", help="create a new encrypted state (never overwrites one)")
    init.set_defaults(handler=_init)
    passwd = sub.add_parser(
        "passwd", help="change the state password (stdin: current password line, then the new one)"
    )
    passwd.set_defaults(handler=_passwd)
    status = sub.add_parser("status", help="locked or unlocked, plan and tracked counts, providers, daemon")
    status.set_defaults(handler=_status)


@asynccontextmanager
async def unlocked_api(ctx: CliContext, password: str) -> AsyncIterator[EngineAPI]:
    """The engine API, unlocked with a password the command already read.

    Commands that read more than the password from stdin (``passwd``, ``credentials set``) read it
    all first and unlock here, instead of letting :meth:`CliContext.api` read the password itself.
    A daemon that is already unlocked is used as it is.
    """
    async with ctx.api(unlock=False) as api:
        status = await api.status()
        if not status["unlocked"]:
            await api.unlock(password)
        yield api


def _asks_twice(ctx: CliContext) -> bool:
    """A new password is typed twice only at an interactive prompt; piped or env passwords once."""
    return not ctx.password_stdin and os.environ.get(PASSWORD_ENV) is None and sys.stdin.isatty()


@one_shot
async def _init(ctx: CliContext, _: argparse.Namespace) -> int:
    if ctx.state_path.exists():
        # Checked before asking for a password; the store checks again under its lock.
        raise StateExistsError(
            f"a state already exists at {ctx.state_path}: refusing to overwrite it "
            "(use --state for another path, or 'legion passwd' to change its password)"
        )
    password = ctx.new_password() if _asks_twice(ctx) else ctx.password("New password: ")
    async with ctx.api(unlock=False) as api:
        result = await api.bootstrap(password)
    ctx.emit(result, lambda r: f"created {r['state']}: the plan is empty (next: legion plan ...)")
    return 0


@one_shot
async def _passwd(ctx: CliContext, _: argparse.Namespace) -> int:
    old = ctx.password("Current password: ")
    new = ctx.new_password()
    async with unlocked_api(ctx, old) as api:
        result = await api.change_password(old, new)
    ctx.emit(result, lambda r: f"password changed for {r['state']}")
    return 0


@one_shot
async def _status(ctx: CliContext, _: argparse.Namespace) -> int:
    async with ctx.api(unlock=False) as api:
        daemon = "running" if ctx.via_daemon else "not running"
        report = await api.status()
        locked_because = f"give the password with --password-stdin or {PASSWORD_ENV}"
        if report["exists"] and not report["unlocked"]:
            try:
                password = ctx.password()
            except UsageError as exc:
                password = None  # no password at hand: report the state as locked, and why
                locked_because = exc.message
            if password is not None:
                await api.unlock(password)
                report = await api.status()
    ctx.emit({**report, "daemon": daemon}, lambda r: _render_status(r, locked_because))
    return 0


def _render_status(report: dict[str, Any], locked_because: str) -> str:
    lines = [f"state      {report['state']}"]
    if not report["exists"]:
        lines.append("unlocked   no: there is no state here yet (create one with 'legion init')")
    elif not report["unlocked"]:
        lines.append(f"unlocked   no ({locked_because})")
    else:
        counts = report["counts"]
        actions = report["actions"]
        lines += [
            f"unlocked   yes (revision {report['revision']})",
            "plan       "
            + _counted(counts, ("clusters", "servers", "domains", "dns_zones", "dns_hosts", "firewalls")),
            "tracked    "
            + _counted(
                counts, ("tracked_servers", "tracked_dns_zones", "tracked_firewalls", "pending_creates")
            ),
            "providers  " + (", ".join(report["providers"]) or "no credentials yet (legion credentials set)"),
            "diff       " + (", ".join(f"{n} {a}" for a, n in sorted(actions.items())) or "nothing planned"),
        ]
    lines.append(f"daemon     {report['daemon']}")
    return "\n".join(lines)


def _counted(counts: dict[str, int], names: tuple[str, ...]) -> str:
    """``1 cluster, 2 servers, 0 dns zones``: each count with its noun, singular for one."""
    said = []
    for name in names:
        count = counts.get(name, 0)
        noun = name.removeprefix("tracked_").replace("_", " ")
        said.append(f"{count} {noun.removesuffix('s') if count == 1 else noun}")
    return ", ".join(said)
