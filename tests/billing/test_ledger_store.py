"""The ledger store keeps money exact and history intact; reconciliation and anomalies are pure."""

from __future__ import annotations

import datetime as dt
import stat
from decimal import Decimal
from pathlib import Path

from legion_nb.engine.billing.frames import billing_frame, ledger_rows, summary_rows
from legion_nb.engine.billing.hourly import TB_BYTES
from legion_nb.engine.billing.ledger import LedgerRow, Source, estimate_rows, server_facts
from legion_nb.engine.billing.ledger_store import LedgerStore, Listed, from_nanos, to_nanos
from legion_nb.engine.billing.reconcile import anomalies, reconcile
from legion_nb.engine.state.model import LegionState
from legion_nb.providers.records import Catalog, CatalogAddon, CatalogPrice, CatalogServerType, Server

UTC = dt.UTC
DAY = dt.timedelta(days=1)


def _row(
    resource: str, start: dt.datetime, cost: str, source: Source = "estimate", provider: str = "hetzner"
) -> LedgerRow:
    return LedgerRow(
        provider=provider,
        account="",
        resource_id=resource,
        resource_name=f"name-{resource}",
        kind="server",
        cluster="c",
        role="cluster",
        start=start,
        end=start + DAY,
        billed_cost=Decimal(cost),
        list_cost=Decimal(cost),
        currency="EUR",
        source=source,
        sku="cx22",
        ownership="planned",
    )


def _catalog(price: CatalogPrice, *, ipv4: Decimal | None = None) -> Catalog:
    """A Hetzner catalog selling cx22 in fsn1 at ``price`` (and a primary IPv4 at ``ipv4`` an hour)."""
    addons = (CatalogAddon("primary_ipv4", "fsn1", ipv4, Decimal("0.50")),) if ipv4 is not None else ()
    cx22 = CatalogServerType("cx22", 2, 4, 40, "x86", (price,), ("fsn1",))
    return Catalog(
        provider="hetzner", currency="EUR", server_types=(cx22,), locations=(), images=(), addons=addons
    )


def test_money_round_trips_exactly_through_nano_units() -> None:
    for text in ("0", "0.000000001", "-12.5", "7.4900", "123456789.123456789"):
        assert from_nanos(to_nanos(Decimal(text))) == Decimal(text)
    assert str(from_nanos(to_nanos(Decimal("7.4900")))) == "7.49" and str(from_nanos(100 * 10**9)) == "100"
    tiny = _row("t", dt.datetime(2026, 11, 1, tzinfo=UTC), "0.000000001")
    assert ledger_rows([tiny])[0]["billed_cost"] == "0.000000001"  # never exponent notation


def test_upsert_replaces_the_running_period_and_keeps_history(tmp_path: Path) -> None:
    store = LedgerStore.in_dir(tmp_path / "logs")
    try:
        day = dt.datetime(2026, 11, 1, tzinfo=UTC)
        store.upsert([_row("1", day, "0.10"), _row("1", day + DAY, "0.20")])
        store.upsert([_row("1", day + DAY, "0.30")])
        rows = store.rows()
        assert [(r.start, r.billed_cost) for r in rows] == [
            (day, Decimal("0.1")),
            (day + DAY, Decimal("0.3")),
        ]
        assert store.rows(day + DAY, day + 2 * DAY)[0].billed_cost == Decimal("0.3")
        store.replace_listing("hetzner", [Listed("hetzner", "1", "a", "planned")])
        store.replace_listing("hetzner", [Listed("hetzner", "2", "b", "labelled")])
        assert [(x.resource_id, x.ownership) for x in store.listing()] == [("2", "labelled")]
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    finally:
        store.close()


def test_reconciliation_sets_estimate_against_usage_and_flags_orphans() -> None:
    month = dt.datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        _row("a", month, "1.00", provider="scaleway"),
        _row("a", month + DAY, "1.50", provider="scaleway"),
        _row("a", month, "2.40", source="usage", provider="scaleway"),
        _row("gone", month, "3.00", source="usage", provider="scaleway"),
        _row("next-month", month + 30 * DAY, "9", provider="scaleway"),
    ]
    listing = [
        Listed("scaleway", "a", "a", "planned", "c"),
        Listed("scaleway", "b", "b", "unlabelled"),
    ]
    lines = {x.resource_id: x for x in reconcile(rows, listing, month)}
    assert set(lines) == {"a", "b", "gone"}
    assert (lines["a"].estimate, lines["a"].provider_cost, lines["a"].difference) == (
        Decimal("2.50"),
        Decimal("2.40"),
        Decimal("-0.10"),
    )
    assert lines["b"].orphan and lines["b"].estimate is None
    assert not lines["gone"].orphan and lines["gone"].ownership == "gone"


def test_a_day_far_above_its_trailing_week_is_an_anomaly() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=UTC)
    rows = [_row("a", start + DAY * k, "1.00") for k in range(8)]
    rows.append(_row("b", start + DAY * 8, "5.00"))
    rows.append(_row("a", start + DAY * 8, "1.00"))
    flagged = {d.day: d.anomaly for d in anomalies(rows)}
    assert flagged[start + DAY * 8] is True
    assert not any(v for day, v in flagged.items() if day != start + DAY * 8)


def test_frames_sum_money_exactly_and_summaries_never_count_twice() -> None:
    month = dt.datetime(2026, 11, 1, tzinfo=UTC)
    rows = [_row("a", month + DAY * k, "0.1", provider="scaleway") for k in range(10)]
    rows.append(_row("a", month, "0.7", source="usage", provider="scaleway"))
    rows += [_row("h", month + DAY * k, "0.1") for k in range(3)]
    frame = billing_frame(ledger_rows(rows))
    assert frame["billed_cost"].sum() == Decimal("2.0")
    assert str(frame.index.tz) == "UTC" and frame.index.name == "start"
    by_provider = {r["provider"]: (r["billed_cost"], r["source"]) for r in summary_rows(rows, "provider")}
    assert by_provider == {"scaleway": ("0.7", "usage"), "hetzner": ("0.3", "estimate")}
    by_day = summary_rows(rows, "day")
    assert sum(Decimal(r["billed_cost"]) for r in by_day if r["part"] == "day") == Decimal("1.3")
    # Scaleway's own 0.7 is its month; the days' estimates say 1.0, so 0.3 less is unattributed
    (rest,) = [r for r in by_day if r["part"] == "unattributed"]
    assert (rest["provider"], rest["billed_cost"], rest["source"]) == ("scaleway", "-0.3", "usage")
    assert sum(Decimal(r["billed_cost"]) for r in by_day) == Decimal("1.0")


def test_hetzner_traffic_beyond_the_included_amount_and_the_primary_address_are_billed_apart() -> None:
    catalog = _catalog(
        CatalogPrice("fsn1", Decimal("0.006"), Decimal("3.79"), Decimal("1")), ipv4=Decimal("0.0008")
    )
    now = dt.datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
    server = Server(
        provider="hetzner",
        id="7",
        name="busy",
        status="running",
        provider_status="running",
        ipv4="127.20.0.9",
        server_type="cx22",
        location="fsn1",
        created=now - dt.timedelta(minutes=30),
        outgoing_traffic=TB_BYTES * 21,
        included_traffic=TB_BYTES * 20,
    )
    facts = server_facts(LegionState(), "hetzner", "", [server], catalog)
    rows = {(r.kind, r.resource_id): r.billed_cost for r in estimate_rows(facts, now - 3 * DAY, now)}
    assert rows == {
        ("server", "7"): Decimal("0.006"),
        ("primary_ipv4", "7/ipv4"): Decimal("0.0008"),
        ("traffic", "7/traffic"): Decimal("1"),
    }


def test_an_old_server_is_estimated_from_the_window_alone_with_the_same_figures() -> None:
    catalog = _catalog(CatalogPrice("fsn1", Decimal("0.006"), Decimal("3.79")))
    now = dt.datetime(2026, 11, 20, 12, 30, tzinfo=UTC)

    def server(created: dt.datetime) -> Server:
        return Server(
            "hetzner", "1", "old", "running", "running", server_type="cx22", location="fsn1", created=created
        )

    since = now - 3 * DAY
    old = estimate_rows(
        server_facts(LegionState(), "hetzner", "", [server(now - 900 * DAY)], catalog), since, now
    )
    month = estimate_rows(
        server_facts(LegionState(), "hetzner", "", [server(dt.datetime(2026, 11, 1, tzinfo=UTC))], catalog),
        since,
        now,
    )
    assert [(r.start, r.billed_cost) for r in old] == [(r.start, r.billed_cost) for r in month]
    assert len(old) == 4 and old[0].start == dt.datetime(2026, 11, 17, tzinfo=UTC)


def test_a_capped_server_is_no_anomaly_when_a_new_month_restarts_its_count() -> None:
    catalog = _catalog(CatalogPrice("fsn1", Decimal("0.01"), Decimal("2.00")))
    now = dt.datetime(2026, 12, 10, tzinfo=UTC)
    steady = Server(
        "hetzner",
        "1",
        "steady",
        "running",
        "running",
        server_type="cx22",
        location="fsn1",
        created=now - 60 * DAY,
    )
    rows = estimate_rows(server_facts(LegionState(), "hetzner", "", [steady], catalog), now - 50 * DAY, now)
    days = anomalies(rows)
    assert any(d.cost == 0 for d in days), "the cap was reached: billed days of nothing"
    assert not any(d.anomaly for d in days)
