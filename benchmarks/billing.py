"""Figures for the billing ledger: building and storing a fleet's estimate, and pricing a plan.

Run: ``.venv/bin/python benchmarks/billing.py [--resources 1000] [--days 90]``. The ledger build is
what a collection pass does after the provider calls: estimate rows per server and UTC day from
catalog prices and lifetimes (servers created across the window, a few deleted), written to a fresh
ledger store, then read back as a frame. The plan cost is ``legion diff``'s ``cost`` for a plan of
N servers on three providers, half of them tracked. Asserts nothing.
Goals (GUIDE §5 and the billing issue): a 1,000-resource, 90-day ledger builds in under 2 s; the
plan cost for 1,000 servers in under 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from legion_nb.engine.billing.frames import billing_frame, ledger_rows
from legion_nb.engine.billing.ledger import estimate_rows, server_facts
from legion_nb.engine.billing.ledger_store import LedgerStore
from legion_nb.engine.billing.plan_cost import plan_cost
from legion_nb.engine.state.model import (
    LegionState,
    PlannedCluster,
    PlannedServer,
    Scheme,
    Tracked,
    TrackedServer,
)
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.records import Server

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _servers(count: int, days: int) -> list[Server]:
    catalog = embedded_catalog("hetzner")
    priced = [(t.name, p.location) for t in catalog.server_types for p in t.prices][:12]
    out = []
    for n in range(count):
        server_type, location = priced[n % len(priced)]
        created = NOW - dt.timedelta(days=days) + dt.timedelta(minutes=37 * n % (days * 24 * 60))
        out.append(
            Server(
                provider="hetzner",
                id=str(n + 1),
                name=f"node-{n}",
                status="running",
                provider_status="running",
                server_type=server_type,
                location=location,
                created=created,
            )
        )
    return out


def _ledger(count: int, days: int) -> None:
    servers = _servers(count, days)
    since = NOW - dt.timedelta(days=days)
    started = time.perf_counter()
    facts = server_facts(LegionState(), "hetzner", "", servers, embedded_catalog("hetzner"))
    rows = estimate_rows(facts, since, NOW)
    built = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = LedgerStore.in_dir(Path(tmp))
        store.upsert(rows)
        stored = time.perf_counter()
        frame = billing_frame(ledger_rows(store.rows(since, NOW)))
        framed = time.perf_counter()
        size = store.path.stat().st_size
        store.close()
    total = stored - started
    print(f"ledger: {count} resources x {days} days = {len(rows)} rows")
    print(f"  estimate {1000 * (built - started):.0f} ms, store {1000 * (stored - built):.0f} ms")
    print(f"  build + store {total:.2f} s (goal < 2 s: {'met' if total < 2 else 'MISSED'})")
    print(
        f"  read back as a frame {1000 * (framed - stored):.0f} ms ({len(frame)} rows, {size / 1e6:.1f} MB)"
    )


def _plan(count: int) -> None:
    providers = ("hetzner", "scaleway", "ovh")
    planned = {}
    tracked = {}
    for n in range(count):
        provider = providers[n % 3]
        name = f"node-{n}"
        planned[name] = PlannedServer(name=name, provider=provider)
        if n % 2 == 0:
            catalog = embedded_catalog(provider)
            kind = catalog.server_types[0]
            tracked[name] = TrackedServer(
                name=name,
                provider=provider,
                provider_id=str(n),
                created=NOW,
                server_type=kind.name,
                location=kind.prices[0].location,
            )
    state = LegionState(
        scheme=Scheme(clusters={"default": PlannedCluster(name="default", servers=planned)}),
        tracked=Tracked(servers=tracked),
    )
    catalogs = {p: embedded_catalog(p) for p in providers}
    started = time.perf_counter()
    cost = plan_cost(state, catalogs.__getitem__)
    elapsed = (time.perf_counter() - started) * 1000
    verdict = "met" if elapsed < 200 else "MISSED"
    print(f"plan cost: {count} servers in {elapsed:.0f} ms (goal < 200 ms: {verdict})")
    for line in cost.currencies:
        print(f"  {line.currency}: now {line.now}, planned {line.planned}, change {line.change}")


def _load() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:  # no load average on this platform
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    print(_load())
    _ledger(args.resources, args.days)
    _plan(args.resources)


if __name__ == "__main__":
    main()
