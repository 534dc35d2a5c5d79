"""Plain-text tables for human CLI output: aligned columns, no colours, no box drawing.

Plain text because the output is read in terminals, pasted into tickets and grepped; ``--json`` is
the machine form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["money", "table", "warning_line", "warning_lines"]

EMPTY = "-"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None) -> str:
    """Columns padded to their widest cell; ``None`` and empty cells show as ``-``."""
    cells = [[EMPTY if c is None or c == "" else str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [] if title is None else [title]
    for row in [list(headers), *cells]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def money(amount: str | Decimal | None, currency: str, per: str = "") -> str:
    """``3.79 EUR/month``: an amount as people write money, with its currency and period.

    At least two decimals, more only where the price has them (Hetzner's ``0.0060`` an hour reads
    ``0.006 EUR/h``), never an exponent; the engine's JSON keeps the exact decimal string.
    """
    if amount is None or amount == "":
        return EMPTY
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):  # not a number: show what the engine said
        return f"{amount} {currency}{per}"
    digits = max(2, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:.{digits}f} {currency}{per}"


def warning_line(kind: str, name: str, message: str) -> str:
    """``warning: firewall legion-default-hetzner: ...``: one warning of one resource, on a line
    of its own so that it is never lost in a table cell."""
    return f"warning: {kind} {name}: {message}"


def warning_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One :func:`warning_line` per warning of each row (diff or snapshot rows as JSON)."""
    return [
        warning_line(row["kind"], row["name"], warning["message"])
        for row in rows
        for warning in row.get("warnings") or ()
    ]
