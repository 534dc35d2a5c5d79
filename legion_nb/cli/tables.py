"""Plain-text tables for human CLI output: aligned columns, no colours, no box drawing.

Plain text because the output is read in terminals, pasted into tickets and grepped; ``--json`` is
the machine form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["table"]

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
