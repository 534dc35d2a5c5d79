"""What every Instance collection shares: the zone each path names, the owner filter each list accepts,
the lookup of a resource by id within its zone, and the base of the route-handler classes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import invalid_argument, not_found
from legion_nb.emulators.scaleway.store import ScalewayAccount

__all__ = ["PREFIX", "InstanceCollection", "check_owner_query", "in_zone", "zone_of"]

PREFIX = "/instance/v1/zones/{zone}"


class _Zoned(Protocol):
    @property
    def zone(self) -> str: ...


Z = TypeVar("Z", bound=_Zoned)


def zone_of(request: web.Request) -> str:
    """The path's zone; an unknown one is ``invalid_argument`` naming the zones there are."""
    zone = request.match_info["zone"]
    if zone not in catalog.ZONES:
        raise invalid_argument("zone", f"unknown zone {zone}; use one of {', '.join(catalog.ZONES)}")
    return zone


def check_owner_query(account: ScalewayAccount, request: web.Request) -> None:
    """Refuse a list filtered by another Project or Organization, as the real API does."""
    account.check_project(request.query.get("project"), request.query.get("organization"))


def in_zone(items: Mapping[str, Z], zone: str, item_id: str, kind: str) -> Z:
    """``items[item_id]`` when it lives in ``zone``; ``not_found`` naming ``kind`` otherwise.

    A resource of another zone is not found, as the real API answers: ids are only meaningful within
    the zone of the path.
    """
    item = items.get(item_id)
    if item is None or item.zone != zone:
        raise not_found(kind, item_id)
    return item


class InstanceCollection:
    """The route handlers of one Instance collection over one :class:`ScalewayAccount`.

    ``account`` holds the resources; ``world`` is the sandbox the account lives in (clock, address
    pool, background tasks), kept at hand because most handlers stamp times or draw addresses.
    """

    def __init__(self, account: ScalewayAccount) -> None:
        self.account = account
        self.world = account.world

    def routes(self) -> list[web.RouteDef]:
        """The collection's routes under :data:`PREFIX`."""
        raise NotImplementedError
