"""Instance products: the server types a zone offers (``/products/servers``) and their stock."""

from __future__ import annotations

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import json_response
from legion_nb.emulators.scaleway.instance.zone import PREFIX, zone_of
from legion_nb.emulators.scaleway.wire import page_of

__all__ = ["routes"]


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{PREFIX}/products/servers", list_server_types),
        web.get(f"{PREFIX}/products/servers/availability", server_types_availability),
    ]


async def list_server_types(request: web.Request) -> web.Response:
    zone = zone_of(request)
    types = [t for t in catalog.SERVER_TYPES if zone in t.zones]
    page = page_of(request, "per_page", 50, types)
    return json_response(
        {"servers": {t.name: t.json() for t in page}},
        headers={"X-Total-Count": str(len(types))},
    )


async def server_types_availability(request: web.Request) -> web.Response:
    zone = zone_of(request)
    types = [t for t in catalog.SERVER_TYPES if zone in t.zones]
    page = page_of(request, "per_page", 50, types)
    body = {
        "servers": {t.name: {"availability": catalog.availability(zone, t.name)} for t in page},
        "total_count": len(types),
    }
    return json_response(body, headers={"X-Total-Count": str(len(types))})
