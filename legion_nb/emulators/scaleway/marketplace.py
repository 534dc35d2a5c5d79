"""The emulated Marketplace API: ``/marketplace/v2/local-images``.

The Marketplace maps a stable image *label* (``debian_bookworm``) to the per-zone Instance image id a
create call takes. Each local image names the commercial types it boots on (matching architecture).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import invalid_argument
from legion_nb.emulators.scaleway.wire import paged_list

__all__ = ["MarketplaceApi"]


class MarketplaceApi:
    def routes(self) -> list[web.RouteDef]:
        return [web.get("/marketplace/v2/local-images", self.list_local_images)]

    @staticmethod
    def local_image_json(zone: str, template: catalog.ImageTemplate) -> dict[str, Any]:
        return {
            "id": catalog.image_id(zone, template.label, template.arch),
            "compatible_commercial_types": [
                t.name for t in catalog.SERVER_TYPES if t.arch == template.arch and zone in t.zones
            ],
            "arch": template.arch,
            "zone": zone,
            "label": template.label,
            "type": "instance_sbs",
        }

    async def list_local_images(self, request: web.Request) -> web.Response:
        query = request.query
        zones = catalog.ZONES
        if zone := query.get("zone"):
            if zone not in catalog.ZONES:
                raise invalid_argument("zone", f"unknown zone {zone}; use one of {', '.join(catalog.ZONES)}")
            zones = (zone,)
        images = [self.local_image_json(z, t) for z in zones for t in catalog.IMAGES]
        if label := query.get("image_label"):
            images = [i for i in images if i["label"] == label]
        if arch := query.get("arch"):
            images = [i for i in images if i["arch"] == arch]
        if image_id := query.get("image_id"):
            images = [i for i in images if i["id"] == image_id]
        if (image_type := query.get("type")) and image_type != "unknown_type":
            images = [i for i in images if i["type"] == image_type]
        return paged_list(request, "local_images", images)
