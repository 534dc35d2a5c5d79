"""Tables for human CLI output: declared column widths, no colours, no box drawing (except live).

Plain text because the output is read in terminals, pasted into tickets and grepped; ``--json`` is
the machine form. Every table declares its columns with a width (:class:`Column`), so its layout
depends on the declaration alone, never on the values of the moment: a table printed again (``legion
observe`` without a terminal, ``legion logs --follow``) or redrawn in place (:class:`LiveTable`) keeps
every column where it was. A cell longer than its column is cut with an ellipsis, never wrapped. The
last column may be left open (``width=None``): nothing follows it to push out of line, and it holds
the text an operator needs whole (a diff's detail, an error, a log line).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

__all__ = [
    "ELLIPSIS",
    "Column",
    "LiveTable",
    "money",
    "row_line",
    "table",
    "utc_time",
    "warning_line",
    "warning_lines",
]

EMPTY = "-"
ELLIPSIS = "\u2026"
GAP = "  "


class Column(NamedTuple):
    """One column: its header and its width in characters (at least the header's); ``None`` for an
    open last column. A NamedTuple rather than a dataclass: the warm CLI path stays light."""

    header: str
    width: int | None = None

    @property
    def span(self) -> int | None:
        return None if self.width is None else max(self.width, len(self.header))


def _checked(columns: Sequence[Column]) -> Sequence[Column]:
    if any(c.width is None for c in columns[:-1]):
        raise ValueError("only the last column of a table may be open (width=None)")
    return columns


def _text(value: object) -> str:
    """A cell as one line of text: ``None`` and empty as ``-``, line breaks and tabs as spaces."""
    if value is None or value == "":
        return EMPTY
    return str(value).replace("\r", " ").replace("\n", " ").replace("\t", " ")


def _fit(text: str, span: int | None) -> str:
    if span is None:
        return text
    if len(text) > span:
        return text[: span - 1] + ELLIPSIS
    return text.ljust(span)


def row_line(columns: Sequence[Column], cells: Sequence[object]) -> str:
    """One row laid out in ``columns`` (cut or padded to each width), without trailing blanks."""
    laid = (_fit(_text(cell), c.span) for c, cell in zip(_checked(columns), cells, strict=True))
    return GAP.join(laid).rstrip()


def table(columns: Sequence[Column], rows: Iterable[Sequence[object]], *, title: str | None = None) -> str:
    """A header line and one line per row, each column at its declared width (module notes)."""
    lines = [] if title is None else [title]
    lines.append(GAP.join(_fit(c.header, c.span) for c in _checked(columns)).rstrip())
    lines.extend(row_line(columns, row) for row in rows)
    return "\n".join(lines)


def utc_time(iso: str) -> str:
    """``2026-12-05 18:55:02 UTC``: an ISO 8601 time as the CLI shows times (to the second, in UTC,
    as the logs and telemetry tables do); the engine's JSON keeps the exact value."""
    import datetime as dt  # noqa: PLC0415 - only commands that show a time pay for it

    try:
        at = dt.datetime.fromisoformat(iso)
    except ValueError:  # not a time: show what the engine said
        return iso
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC)
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


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


class LiveTable:
    """A table redrawn in place on a terminal (rich), at most a few times a second.

    The same :class:`Column` declarations as the plain tables: each column keeps its width in every
    redraw; the open last column takes the rest of the terminal's width. Long cells end in an
    ellipsis, never wrap, and are drawn as text (a ``[bracket]`` in an error is not rich markup).
    """

    def __init__(self, title: str, columns: Sequence[Column], *, console: Any = None) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich only for a live terminal
        from rich.live import Live  # noqa: PLC0415

        self._title = title
        self._columns = _checked(columns)
        self._live = Live(console=console or Console(), refresh_per_second=4, transient=False)
        self._live.start()

    def show(self, rows: Iterable[Sequence[object]]) -> None:
        """Draw these rows (cells in column order) in place of the last ones."""
        self._live.update(live_view(self._title, self._columns, rows))

    def close(self) -> None:
        self._live.stop()


def live_view(title: str, columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> Any:
    """The rich table :class:`LiveTable` draws: fixed widths, no wrapping, cells as plain text."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from legion_nb.cli.context import scrub  # noqa: PLC0415 - a live view prints what it is given

    view = Table(title=title, expand=_checked(columns)[-1].width is None)
    for column in columns:
        span = column.span
        view.add_column(
            column.header,
            width=span,
            min_width=span,
            max_width=span,
            ratio=1 if span is None else None,
            no_wrap=True,
            overflow="ellipsis",
        )
    for row in rows:
        view.add_row(*(Text(scrub(_text(cell)), no_wrap=True, overflow="ellipsis") for cell in row))
    return view
