"""The ledger store: billing rows and the last provider listing, in SQLite beside the telemetry.

Why these tables: a row is one resource's cost over one charge period from one source
(:class:`~legion_nb.engine.billing.ledger.LedgerRow`), keyed by provider, resource, kind, source and
period start, so collecting again replaces the running period's figure and leaves closed periods as
they were (history is kept; nothing is deleted). ``listing`` remembers what each provider listed at
the last collection and how it relates to the plan, which is what the reconciliation's cleanup
candidates are drawn from.

Money is stored as integer nano-units (10^-9 of the currency, Scaleway's own resolution), never as
a float, so sums in SQL and in Python are exact; amounts finer than a nano-unit are rounded half to
even on the way in.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, NamedTuple, cast

from legion_nb.engine.billing.ledger import LedgerRow, Ownership, Source
from legion_nb.engine.sqlite_file import SqliteFile

__all__ = ["LEDGER_FILENAME", "LedgerStore", "Listed", "from_nanos", "to_nanos"]

LEDGER_FILENAME = "ledger.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    cluster TEXT NOT NULL,
    role TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    billed_nanos INTEGER NOT NULL,
    list_nanos INTEGER NOT NULL,
    currency TEXT NOT NULL,
    source TEXT NOT NULL,
    sku TEXT NOT NULL,
    ownership TEXT NOT NULL,
    collected_ms INTEGER NOT NULL,
    server TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (provider, resource_id, kind, source, start_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_by_start ON ledger (start_ms);
CREATE TABLE IF NOT EXISTS listing (
    provider TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    ownership TEXT NOT NULL,
    cluster TEXT NOT NULL,
    role TEXT NOT NULL,
    sku TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (provider, resource_id)
) WITHOUT ROWID
"""

_COLUMNS = (
    "provider, account, resource_id, resource_name, kind, cluster, role, start_ms, end_ms, "
    "billed_nanos, list_nanos, currency, source, sku, ownership, server"
)


_UPSERT = (
    f"INSERT INTO ledger ({_COLUMNS}, collected_ms) VALUES ({', '.join('?' * 17)}) "  # noqa: S608 - constant
    "ON CONFLICT (provider, resource_id, kind, source, start_ms) DO UPDATE SET "
    "account=excluded.account, resource_name=excluded.resource_name, cluster=excluded.cluster, "
    "role=excluded.role, end_ms=excluded.end_ms, billed_nanos=excluded.billed_nanos, "
    "list_nanos=excluded.list_nanos, currency=excluded.currency, sku=excluded.sku, "
    "ownership=excluded.ownership, server=excluded.server, collected_ms=excluded.collected_ms"
)
_UNIT = Decimal(1)
_LISTING = (
    "SELECT provider, resource_id, resource_name, ownership, cluster, role, sku, seen_ms, kind, address "
    "FROM listing"
)
_LATER_COLUMNS = {"ledger": ("server",), "listing": ("kind", "address")}
"""Columns added after a store was first written; an older store gains them (empty) when opened."""


def to_nanos(amount: Decimal) -> int:
    return int(amount.scaleb(9).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_nanos(nanos: int) -> Decimal:
    """Exact: nano-units back to a Decimal without trailing zeros (``0.38``, ``100``, never ``1E+2``)."""
    amount = Decimal(nanos).scaleb(-9)
    whole = amount.to_integral_value()
    return whole.quantize(_UNIT) if amount == whole else amount.normalize()


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class Listed(NamedTuple):
    """One resource a provider listed at the last collection."""

    provider: str
    resource_id: str
    name: str
    ownership: Ownership
    cluster: str = ""
    role: str = ""
    sku: str = ""
    seen: dt.datetime | None = None
    kind: str = ""
    """``server``, or a public IP's ledger kind (``floating_ip``, ``primary_ip``)."""
    address: str = ""
    """A public IP's address ('' for servers)."""


class LedgerStore:
    """Ledger rows and listings in ``<log dir>/ledger.sqlite`` (see the module notes)."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA)
        with self._file.write() as db:
            for table, later in _LATER_COLUMNS.items():
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for column in later:
                    if column not in columns:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")

    @classmethod
    def in_dir(cls, log_dir: Path) -> LedgerStore:
        return cls(log_dir / LEDGER_FILENAME)

    @property
    def path(self) -> Path:
        return self._file.path

    def close(self) -> None:
        self._file.close()

    # -- writes -----------------------------------------------------------------------------

    def upsert(self, rows: Iterable[LedgerRow]) -> int:
        """Insert rows, replacing a row with the same key (the running period's new figure)."""
        now = int(time.time() * 1000)
        stamps: dict[dt.datetime, int] = {}  # a fleet's rows share a few period bounds
        nanos: dict[Decimal, int] = {}  # ... and a few daily amounts

        def ms(moment: dt.datetime) -> int:
            found = stamps.get(moment)
            if found is None:
                found = stamps[moment] = _ms(moment)
            return found

        def money(amount: Decimal) -> int:
            found = nanos.get(amount)
            if found is None:
                found = nanos[amount] = to_nanos(amount)
            return found

        values = [
            (
                r.provider,
                r.account,
                r.resource_id,
                r.resource_name,
                r.kind,
                r.cluster,
                r.role,
                ms(r.start),
                ms(r.end),
                money(r.billed_cost),
                money(r.list_cost),
                r.currency,
                r.source,
                r.sku,
                r.ownership,
                r.server,
                now,
            )
            for r in rows
        ]
        with self._file.write() as db:
            db.executemany(
                _UPSERT,
                values,
            )
        return len(values)

    def replace_listing(self, provider: str, listed: Sequence[Listed]) -> None:
        """What ``provider`` lists now, in place of what it listed before."""
        now = int(time.time() * 1000)
        values = [
            (provider, x.resource_id, x.name, x.ownership, x.cluster, x.role, x.sku, now,
             x.kind, x.address)
            for x in listed
        ]  # fmt: skip
        with self._file.write() as db:
            db.execute("DELETE FROM listing WHERE provider = ?", (provider,))
            db.executemany(
                "INSERT INTO listing (provider, resource_id, resource_name, ownership, cluster, role, sku, "
                "seen_ms, kind, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

    # -- reads ------------------------------------------------------------------------------

    def rows(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        *,
        provider: str | None = None,
        source: Source | None = None,
    ) -> list[LedgerRow]:
        """Rows whose charge period starts in ``[since, until)``, oldest first."""
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("start_ms >= ?")
            args.append(_ms(since))
        if until is not None:
            where.append("start_ms < ?")
            args.append(_ms(until))
        if provider is not None:
            where.append("provider = ?")
            args.append(provider)
        if source is not None:
            where.append("source = ?")
            args.append(source)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._file.read() as db:
            found = db.execute(
                f"SELECT {_COLUMNS} FROM ledger{clause} ORDER BY start_ms, provider, resource_id, source",  # noqa: S608 - constant SQL, values bound
                args,
            ).fetchall()
        times: dict[int, dt.datetime] = {}  # a ledger repeats a few period bounds many times

        def when(ms: int) -> dt.datetime:
            found = times.get(ms)
            if found is None:
                found = times[ms] = _time(ms)
            return found

        return [
            LedgerRow(
                p,
                a,
                rid,
                name,
                kind,
                cluster,
                role,
                when(start),
                when(end),
                from_nanos(billed),
                from_nanos(listed),
                currency,
                cast("Source", src),
                sku,
                cast("Ownership", owner),
                server,
            )
            for (
                p,
                a,
                rid,
                name,
                kind,
                cluster,
                role,
                start,
                end,
                billed,
                listed,
                currency,
                src,
                sku,
                owner,
                server,
            ) in (found)
        ]

    def listing(self, provider: str | None = None) -> list[Listed]:
        clause, args = (" WHERE provider = ?", (provider,)) if provider else ("", ())
        with self._file.read() as db:
            found = db.execute(
                _LISTING + clause + " ORDER BY provider, resource_name",
                args,
            ).fetchall()
        return [
            Listed(p, rid, name, cast("Ownership", owner), cluster, role, sku, _time(seen), kind, address)
            for (p, rid, name, owner, cluster, role, sku, seen, kind, address) in found
        ]
