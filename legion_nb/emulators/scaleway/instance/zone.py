"""The zone every Instance path names, and the owner filter every Instance list accepts."""

from __future__ import annotations

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import invalid_argument
from legion_nb.emulators.scaleway.store import ScalewayAccount

__all__ = ["PREFIX", "check_owner_query", "zone_of"]

PREFIX = "/instance/v1/zones/{zone}"


def zone_of(request: web.Request) -> str:
    """The path's zone; an unknown one is ``invalid_argument`` naming the zones there are."""
    zone = request.match_info["zone"]
    if zone not in catalog.ZONES:
        raise invalid_argument("zone", f"unknown zone {zone}; use one of {', '.join(catalog.ZONES)}")
    return zone


def check_owner_query(account: ScalewayAccount, request: web.Request) -> None:
    """Refuse a list filtered by another Project or Organization, as the real API does."""
    account.check_project(request.query.get("project"), request.query.get("organization"))
