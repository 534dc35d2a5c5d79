"""``legion catalog PROVIDER``: what a provider sells - server types with prices, locations, images.

With a state that holds the provider's credentials the catalog is read live (the state is unlocked
for that, so a password is needed); ``--embedded``, or no state at all, shows the snapshot shipped
in the package without unlocking anything. The catalog policy picks from the same data when a
planned server leaves its type, location or image empty.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from typing import Any

from legion_nb.cli.context import CliContext, one_shot
from legion_nb.cli.tables import Column, money, table, utc_time

__all__ = ["register"]


def register(sub: Any) -> None:
    catalog = sub.add_parser("catalog", help="server types (with prices), locations and images")
    catalog.add_argument("provider", metavar="PROVIDER", help="hetzner, ovh or scaleway")
    catalog.add_argument(
        "--embedded", action="store_true", help="the shipped snapshot, without unlocking the state"
    )
    catalog.set_defaults(handler=_catalog)


@one_shot
async def _catalog(ctx: CliContext, args: argparse.Namespace) -> int:
    live = not args.embedded and ctx.state_path.exists()
    async with ctx.api(unlock=live) as api:
        result = await api.catalog(args.provider, live=live)
    ctx.emit(result, _text)
    return 0


def _cheapest(server_type: dict[str, Any], currency: str) -> tuple[str, str, str]:
    prices = sorted(server_type["prices"], key=lambda p: float(p["monthly"]))
    if not prices:
        return "", "", ""
    cheapest = prices[0]
    return (
        money(cheapest["monthly"], currency, "/month"),
        money(cheapest.get("hourly"), currency, "/h"),
        cheapest["location"],
    )


def _text(catalog: dict[str, Any]) -> str:
    currency = catalog["currency"]
    fetched = catalog.get("fetched_at")
    source = catalog["source"] + (f", fetched {utc_time(fetched)}" if fetched else "")
    types = table(
        (
            Column("type", 12),
            Column("cores", 5),
            Column("memory GB", 9),
            Column("disk GB", 7),
            Column("arch", 5),
            Column("from", 18),
            Column("hourly", 14),
            Column("in", 10),
            Column("locations"),
        ),
        (
            (
                t["name"],
                t["cores"],
                t["memory_gb"],
                t["disk_gb"],
                t["arch"],
                *_cheapest(t, currency),
                len(t["locations"]),
            )
            for t in catalog["server_types"]
            if not t["deprecated"]
        ),
        title=f"{catalog['provider']} catalog ({source})",
    )
    locations = table(
        (Column("location", 10), Column("city", 20), Column("country")),
        ((loc["name"], loc["city"], loc["country"]) for loc in catalog["locations"]),
    )
    images = table(
        (Column("image", 28), Column("os", 12), Column("version", 10), Column("arch")),
        (
            (i["name"], i["os_flavor"], i["os_version"], i["arch"])
            for i in catalog["images"]
            if not i["deprecated"]
        ),
    )
    return f"{types}\n\n{locations}\n\n{images}"
