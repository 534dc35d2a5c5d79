"""``legion credentials set|show|delete``: provider API credentials, kept in the encrypted state.

Secrets arrive as ONE JSON object on stdin (after the password line with ``--password-stdin``),
never as arguments, which other users can read in the process list and shells keep in history.
What comes back is the provider, the endpoint and the field names: never a secret value.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.lifecycle import unlocked_api
from legion_nb.cli.tables import Column, table
from legion_nb.errors import UsageError

__all__ = ["register"]

_MAX_INPUT = 64 * 1024


def register(sub: Any) -> None:
    parser = sub.add_parser("credentials", help="provider API credentials (secrets as JSON on stdin)")
    actions = parser.add_subparsers(dest="credentials_action", metavar="ACTION")
    put = actions.add_parser(
        "set",
        help='store PROVIDER\'s credentials; stdin: one JSON object, e.g. {"token": "..."}',
    )
    put.add_argument("provider", metavar="PROVIDER", help="hetzner, ovh or scaleway")
    put.add_argument("--endpoint", metavar="URL", help="API base URL (default: the provider's public API)")
    put.set_defaults(handler=_set)
    show = actions.add_parser("show", help="providers with credentials: endpoint and field names only")
    show.set_defaults(handler=_show)
    forget = actions.add_parser("delete", help="forget PROVIDER's stored credentials")
    forget.add_argument("provider", metavar="PROVIDER", help="hetzner, ovh or scaleway")
    forget.set_defaults(handler=_delete)


def _secrets(text: str) -> dict[str, Any]:
    if not text.strip():
        raise UsageError('no credentials on stdin: pipe one JSON object, e.g. {"token": "..."}')
    if len(text) > _MAX_INPUT:
        raise UsageError(f"the credentials JSON is larger than {_MAX_INPUT} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The message names the position only: the text itself is secret.
        raise UsageError(
            f"the credentials on stdin are not JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise UsageError("the credentials on stdin must be one JSON object of field names to strings")
    return data


@one_shot
async def _set(ctx: CliContext, args: argparse.Namespace) -> int:
    password = ctx.password()
    secrets = _secrets(ctx.stdin_rest())
    async with unlocked_api(ctx, password) as api:
        result = await api.credentials_set(args.provider, secrets, endpoint=args.endpoint)
    ctx.emit(
        result,
        lambda r: (
            f"stored {r['provider']} credentials ({', '.join(r['fields'])}) "
            f"for {r['endpoint'] or 'the public API'}"
        ),
    )
    return 0


@one_shot
async def _show(ctx: CliContext, _: argparse.Namespace) -> int:
    async with ctx.api() as api:
        result = await api.credentials_show()
    ctx.emit(
        result,
        lambda rows: (
            table(
                (Column("PROVIDER", 8), Column("ENDPOINT", 40), Column("FIELDS")),
                [(r["provider"], r["endpoint"] or "(public API)", ", ".join(r["fields"])) for r in rows],
            )
            if rows
            else "no credentials yet: legion credentials set PROVIDER < secrets.json"
        ),
    )
    return 0


@one_shot
async def _delete(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        result = await api.credentials_delete(args.provider)
    ctx.emit(result, lambda r: f"deleted {r['name']} credentials")
    return 0
