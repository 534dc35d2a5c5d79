"""Instance images: the public system images of each zone (``/images``), one per catalog template
and architecture, and the lookup a server create uses to accept an image id or label."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from legion_nb.emulators.scaleway import catalog
from legion_nb.emulators.scaleway.errors import invalid_argument, json_response, not_found
from legion_nb.emulators.scaleway.instance.zone import PREFIX, zone_of
from legion_nb.emulators.scaleway.wire import flag, instance_list

__all__ = ["PUBLIC_IMAGES_ORGANIZATION", "image_json", "resolve_image", "routes"]

PUBLIC_IMAGES_ORGANIZATION = "51b656e3-4865-41e8-adbc-0c45bdd780db"


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{PREFIX}/images", list_images),
        web.get(f"{PREFIX}/images/{{image_id}}", get_image),
    ]


def image_json(zone: str, template: catalog.ImageTemplate) -> dict[str, Any]:
    """The wire form of ``template`` as the public image of ``zone``."""
    image_id = catalog.image_id(zone, template.label, template.arch)
    created = "2026-06-01T09:00:00.000000+00:00"
    return {
        "id": image_id,
        "name": template.name,
        "arch": template.arch,
        "creation_date": created,
        "modification_date": created,
        "default_bootscript": None,
        "extra_volumes": {},
        "from_server": "",
        "organization": PUBLIC_IMAGES_ORGANIZATION,
        "project": PUBLIC_IMAGES_ORGANIZATION,
        "public": True,
        "root_volume": {
            "id": catalog.image_id(zone, template.label + ":snapshot", template.arch),
            "name": f"{template.label}_{template.arch}",
            "volume_type": "sbs_snapshot",
            "size": template.root_size_gb * catalog.GB,
        },
        "state": "available",
        "tags": [template.label],
        "zone": zone,
    }


def zone_images(zone: str) -> list[dict[str, Any]]:
    return [image_json(zone, template) for template in catalog.IMAGES]


async def list_images(request: web.Request) -> web.Response:
    zone = zone_of(request)
    images = zone_images(zone)
    name = request.query.get("name")
    arch = request.query.get("arch")
    public = flag(request, "public")
    if name:
        images = [i for i in images if name.lower() in i["name"].lower()]
    if arch:
        images = [i for i in images if i["arch"] == arch]
    if public is False:
        images = []
    return instance_list(request, "images", images)


async def get_image(request: web.Request) -> web.Response:
    zone = zone_of(request)
    image_id = request.match_info["image_id"]
    for image in zone_images(zone):
        if image["id"] == image_id:
            return json_response({"image": image})
    raise not_found("instance_image", image_id)


def resolve_image(zone: str, ref: str, arch: str) -> dict[str, Any]:
    """The image a server create names by id or by label, for the server type's ``arch``."""
    for template in catalog.IMAGES:
        image = image_json(zone, template)
        if ref == image["id"]:
            if template.arch != arch:
                raise invalid_argument("image", f"image {ref} is {template.arch}; this type needs {arch}")
            return image
        if ref == template.label and template.arch == arch:
            return image
    raise invalid_argument("image", f"image {ref} does not exist in {zone} for {arch}")
