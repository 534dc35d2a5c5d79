"""``legion repairs`` (what the next repair tick would do, and why) and ``legion repairs run``.

Every safe repair is explainable before it runs: the listing names each node, the operation, every
reason, and whether the tick runs it or holds it (an apply or a node operation runs, the attempt
budget is spent or backing off) with the earliest next attempt. ``run`` runs the same selection now
within the same budget and exits 5 when a repair that ran failed.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from typing import Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.tables import Column, table
from legion_nb.errors import OperationError

__all__ = ["RepairFailedError", "register"]

_COLUMNS = {
    "node": Column("node", 24),
    "operation": Column("operation", 16),
    "action": Column("action", 6),
    "reasons": Column("reasons", 40),
    "held_because": Column("held_because", 32),
    "next_attempt": Column("next_attempt", 25),
    "attempts": Column("attempts", 8),
    "outcome": Column("outcome"),
}


class RepairFailedError(OperationError):
    """A repair that ran failed (its node's error is in the listing and the node's snapshot row)."""

    code = "repair_failed"


def register(sub: Any) -> None:
    repairs = sub.add_parser("repairs", help="the safe repairs the next tick would run, and why")
    repairs.set_defaults(handler=_plan)
    commands = repairs.add_subparsers(dest="repairs_command", metavar="COMMAND")
    run = commands.add_parser("run", help="run the safe repairs now (within the attempt budget)")
    run.set_defaults(handler=_run)


@one_shot
async def _plan(ctx: CliContext, args: argparse.Namespace) -> int:
    del args
    async with ctx.api() as api:
        views = await api.repairs_plan()
    ctx.emit(views, _text)
    return 0


@one_shot
async def _run(ctx: CliContext, args: argparse.Namespace) -> int:
    del args
    async with ctx.api() as api:
        views = await api.repairs_run()
    ctx.emit(views, _text)
    failed = [v for v in views if v["outcome"] == "failed"]
    if failed:
        raise RepairFailedError(
            "; ".join(f"{v['node']} {v['operation']}: {v['error'] or 'failed'}" for v in failed)
        )
    return 0


def _text(views: list[dict[str, Any]]) -> str:
    if not views:
        return "nothing to repair"
    rows = ([("; ".join(v[c]) if c == "reasons" else v[c]) for c in _COLUMNS] for v in views)
    return table(tuple(_COLUMNS.values()), rows)
