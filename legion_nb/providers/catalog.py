"""Provider catalogs: the embedded snapshots and the pure policy that picks from them.

Legion must be able to plan before it has talked to a provider (no credentials yet, offline notebook),
so each provider's catalog ships in the package as ``catalogs/<provider>.json``: server types with
net prices per location, locations, and system images, as of the snapshot date in the file. A live
``fetch_catalog()`` result has the same :class:`~legion_nb.providers.records.Catalog` shape and replaces
the snapshot once the engine has one.

The policy is pure functions of a catalog, so it gives the same answer for the same catalog whether
it runs in a notebook, the CLI or a test:

* :func:`choose_location` - the operator's choice if valid, else the provider's recommended default;
* :func:`choose_server_type` - the cheapest type that meets a deployment profile's minimums and is
  sold in the location;
* :func:`choose_image` - the current Debian (highest version) available in the location;
* :func:`resolve_server_choice` - all three at once, validating explicit choices;
* :func:`catalog_misses` - the explicit choices of a plan that the catalog does not offer, each with
  the nearest valid names first (planning refuses them against a live catalog and warns about them
  against the embedded snapshot, which may predate what the provider sells now).

Unknown names are operator mistakes: each raises a :class:`CatalogChoiceError` subclass whose one-line
message lists the valid choices.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

from legion_nb.errors import ValidationError
from legion_nb.providers.records import (
    Catalog,
    CatalogImage,
    CatalogLocation,
    CatalogPrice,
    CatalogServerType,
)

__all__ = [
    "PROFILES",
    "CatalogChoiceError",
    "CatalogMiss",
    "DeploymentProfile",
    "ServerChoice",
    "UnknownImageError",
    "UnknownLocationError",
    "UnknownProfileError",
    "UnknownProviderError",
    "UnknownServerTypeError",
    "catalog_from_json",
    "catalog_misses",
    "choose_image",
    "choose_location",
    "choose_server_type",
    "default_location",
    "embedded_catalog",
    "embedded_providers",
    "profile",
    "resolve_server_choice",
    "validate_server_type",
]


class CatalogChoiceError(ValidationError):
    """A provider, server type, location, image or profile that the catalog does not offer."""

    code = "catalog_choice"


class UnknownProviderError(CatalogChoiceError):
    code = "unknown_provider"


class UnknownServerTypeError(CatalogChoiceError):
    code = "unknown_server_type"


class UnknownLocationError(CatalogChoiceError):
    code = "unknown_location"


class UnknownImageError(CatalogChoiceError):
    code = "unknown_image"


class UnknownProfileError(CatalogChoiceError):
    code = "unknown_profile"


@dataclass(frozen=True)
class DeploymentProfile:
    """The least a server needs for one role. Tribes nodes are x86 builds, hence ``arch``."""

    name: str
    min_cores: int
    min_memory_gb: float
    min_disk_gb: int
    arch: Literal["x86", "arm"] = "x86"

    def admits(self, server_type: CatalogServerType) -> bool:
        return (
            server_type.arch == self.arch
            and server_type.cores >= self.min_cores
            and server_type.memory_gb >= self.min_memory_gb
            and (server_type.block_storage or server_type.disk_gb >= self.min_disk_gb)
        )

    def describe(self) -> str:
        return (
            f"{self.name} ({self.min_cores} cores, {self.min_memory_gb:g} GB RAM, {self.min_disk_gb} GB disk)"
        )


PROFILES: dict[str, DeploymentProfile] = {
    # A cluster node runs the Tribes server, sync on 4413, NBDE (Tang) and the observation agents.
    "cluster-node": DeploymentProfile("cluster-node", min_cores=2, min_memory_gb=4, min_disk_gb=40),
    # A satellite only runs the lightweight sender and answers HTTP health probes.
    "satellite": DeploymentProfile("satellite", min_cores=1, min_memory_gb=2, min_disk_gb=20),
}


def profile(name: str) -> DeploymentProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(
            f"unknown deployment profile {name!r}; choose one of {_listing(PROFILES)}"
        ) from None


def _listing(names: Any) -> str:
    return ", ".join(sorted(str(n) for n in names)) or "(none)"


# --------------------------------------------------------------------------------------------------
# Embedded snapshots


def embedded_providers() -> tuple[str, ...]:
    """Providers with a catalog snapshot shipped in the package."""
    folder = resources.files("legion_nb.providers").joinpath("catalogs")
    return tuple(
        sorted(item.name.removesuffix(".json") for item in folder.iterdir() if item.name.endswith(".json"))
    )


@cache
def _raw_snapshot(provider: str) -> dict[str, Any]:
    if provider not in embedded_providers():
        raise UnknownProviderError(
            f"unknown provider {provider!r}; choose one of {_listing(embedded_providers())}"
        )
    text = resources.files("legion_nb.providers").joinpath("catalogs", f"{provider}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def embedded_catalog(provider: str) -> Catalog:
    """The catalog snapshot shipped for ``provider`` (``UnknownProviderError`` when none is)."""
    return catalog_from_json(_raw_snapshot(provider), source="embedded")


def catalog_from_json(
    data: Mapping[str, Any],
    *,
    source: Literal["embedded", "live"] = "live",
    fetched_at: datetime | None = None,
) -> Catalog:
    """A catalog from its JSON form: the shipped snapshots' shape, which is also the engine's
    ``catalog_json`` (the form a catalog read from the provider is kept in the state)."""
    return Catalog(
        provider=data["provider"],
        currency=data["currency"],
        server_types=tuple(
            CatalogServerType(
                name=t["name"],
                cores=int(t["cores"]),
                memory_gb=float(t["memory_gb"]),
                disk_gb=int(t["disk_gb"]),
                arch=t["arch"],
                prices=tuple(
                    CatalogPrice(p["location"], Decimal(p["hourly"]), Decimal(p["monthly"]))
                    for p in t["prices"]
                ),
                locations=tuple(t["locations"]),
                deprecated=bool(t.get("deprecated", False)),
                description=t.get("description"),
                block_storage=bool(t.get("block_storage", False)),
            )
            for t in data["server_types"]
        ),
        locations=tuple(
            CatalogLocation(loc["name"], loc["city"], loc["country"], loc.get("description"))
            for loc in data["locations"]
        ),
        images=tuple(
            CatalogImage(
                id=i["id"],
                name=i["name"],
                os_flavor=i["os_flavor"],
                os_version=i["os_version"],
                arch=i.get("arch", "x86"),
                locations=tuple(i.get("locations", ())),
                deprecated=bool(i.get("deprecated", False)),
            )
            for i in data["images"]
        ),
        source=source,
        fetched_at=fetched_at,
    )


def default_location(provider: str) -> str:
    """The provider's recommended default location (from its embedded snapshot)."""
    return str(_raw_snapshot(provider)["default_location"])


# --------------------------------------------------------------------------------------------------
# Policy


@dataclass(frozen=True)
class ServerChoice:
    server_type: CatalogServerType
    location: CatalogLocation
    image: CatalogImage
    price: CatalogPrice | None


def choose_location(catalog: Catalog, requested: str | None = None) -> CatalogLocation:
    """``requested`` when the catalog has it; otherwise the provider's recommended default, or the
    first listed location when the default is missing from this catalog."""
    if requested is not None:
        found = catalog.location(requested)
        if found is None:
            raise UnknownLocationError(
                f"{catalog.provider} has no location {requested!r}; "
                f"choose one of {_listing(loc.name for loc in catalog.locations)}"
            )
        return found
    if not catalog.locations:
        raise UnknownLocationError(f"{catalog.provider} catalog lists no locations; refresh the catalog")
    preferred = default_location(catalog.provider) if catalog.provider in embedded_providers() else None
    return (catalog.location(preferred) if preferred else None) or catalog.locations[0]


def _cost(server_type: CatalogServerType, location: str) -> tuple[Decimal, Decimal, str]:
    price = server_type.price_in(location)
    if price is None:
        return (Decimal("Infinity"), Decimal("Infinity"), server_type.name)
    return (price.monthly, price.hourly, server_type.name)


def choose_server_type(catalog: Catalog, wanted: DeploymentProfile, location: str) -> CatalogServerType:
    """The cheapest (monthly, then hourly, then name) type that meets ``wanted`` in ``location``."""
    choose_location(catalog, location)
    fitting = [t for t in catalog.server_types if t.available_in(location) and wanted.admits(t)]
    if not fitting:
        sold = [t.name for t in catalog.server_types if t.available_in(location)]
        raise UnknownServerTypeError(
            f"{catalog.provider} sells no server type in {location} that meets {wanted.describe()}; "
            f"types sold there: {_listing(sold)}"
        )
    return min(fitting, key=lambda t: _cost(t, location))


def validate_server_type(catalog: Catalog, name: str, location: str) -> CatalogServerType:
    found = catalog.server_type(name)
    if found is None:
        raise UnknownServerTypeError(
            f"{catalog.provider} has no server type {name!r}; "
            f"choose one of {_listing(t.name for t in catalog.server_types if not t.deprecated)}"
        )
    if not found.available_in(location):
        raise UnknownServerTypeError(
            f"{catalog.provider} server type {name!r} is not sold in {location}; "
            f"it is sold in {_listing(found.locations)}"
        )
    return found


def _version_key(image: CatalogImage) -> tuple[int, ...]:
    parts = []
    for piece in image.os_version.replace("-", ".").split("."):
        parts.append(int(piece) if piece.isdigit() else -1)
    return tuple(parts)


def choose_image(
    catalog: Catalog, location: str, *, arch: Literal["x86", "arm"] = "x86", requested: str | None = None
) -> CatalogImage:
    """``requested`` (by name or id) when usable, else the highest-version Debian in ``location``."""
    usable = [i for i in catalog.images if i.arch == arch and i.available_in(location)]
    if requested is not None:
        found = next((i for i in usable if requested in (i.name, i.id)), None)
        if found is None:
            raise UnknownImageError(
                f"{catalog.provider} has no {arch} image {requested!r} in {location}; "
                f"choose one of {_listing({i.name for i in usable})}"
            )
        return found
    debian = [i for i in usable if i.os_flavor == "debian"]
    if not debian:
        raise UnknownImageError(
            f"{catalog.provider} offers no Debian {arch} image in {location}; "
            f"pass one of {_listing({i.name for i in usable})}"
        )
    return max(debian, key=_version_key)


def resolve_server_choice(
    catalog: Catalog,
    profile_name: str = "cluster-node",
    *,
    server_type: str | None = None,
    location: str | None = None,
    image: str | None = None,
) -> ServerChoice:
    """Fill what the operator omitted from the catalog policy, and validate what they gave."""
    wanted = profile(profile_name)
    where = choose_location(catalog, location)
    if server_type is not None:
        chosen_type = validate_server_type(catalog, server_type, where.name)
    else:
        chosen_type = choose_server_type(catalog, wanted, where.name)
    chosen_image = choose_image(catalog, where.name, arch=chosen_type.arch, requested=image)
    return ServerChoice(chosen_type, where, chosen_image, chosen_type.price_in(where.name))


# --------------------------------------------------------------------------------------------------
# Checking a plan's explicit choices

_SHOWN_CHOICES = 4


@dataclass(frozen=True, slots=True)
class CatalogMiss:
    """One explicit choice the catalog does not offer: ``what`` was asked (``value``), where (the
    location a server type is not sold in, else empty), and a few valid names, nearest first."""

    what: Literal["server type", "location", "image"]
    value: str
    provider: str
    choices: tuple[str, ...]
    where: str = ""

    def sentence(self) -> str:
        """What is missing, as the diff warns and planning refuses it."""
        if self.where:
            return f"{self.what} {self.value} is not sold in {self.provider} {self.where}"
        return f"{self.what} {self.value} is not in the {self.provider} catalog"

    def error(self) -> CatalogChoiceError:
        """The refusal planning raises against a catalog read from the provider."""
        kind: type[CatalogChoiceError] = {
            "server type": UnknownServerTypeError,
            "location": UnknownLocationError,
            "image": UnknownImageError,
        }[self.what]
        nearest = f"; nearest: {', '.join(self.choices)}" if self.choices else ""
        return kind(f"{self.sentence()}{nearest} (see 'legion catalog {self.provider}')")


def _nearest(value: str, names: Iterable[str]) -> tuple[str, ...]:
    """A few of ``names``: the close matches to ``value`` first (best first), then the rest sorted."""
    unique = sorted(set(names))
    close = difflib.get_close_matches(value, unique, n=_SHOWN_CHOICES, cutoff=0.4)
    rest = [name for name in unique if name not in close]
    return tuple([*close, *rest][:_SHOWN_CHOICES])


def catalog_misses(
    catalog: Catalog, *, server_type: str = "", location: str = "", image: str = ""
) -> tuple[CatalogMiss, ...]:
    """The explicit choices (empty means "the policy picks") that ``catalog`` does not offer: an
    unknown location, an unknown server type or one not sold in the chosen location, and an image
    the catalog lists nowhere (or not in the chosen location), when the catalog lists images."""
    misses: list[CatalogMiss] = []
    provider = catalog.provider
    known_location = bool(location) and catalog.location(location) is not None
    if location and not known_location:
        names = (loc.name for loc in catalog.locations)
        misses.append(CatalogMiss("location", location, provider, _nearest(location, names)))
    if server_type:
        found = catalog.server_type(server_type)
        sold = [t.name for t in catalog.server_types if not t.deprecated]
        if found is None:
            misses.append(CatalogMiss("server type", server_type, provider, _nearest(server_type, sold)))
        elif known_location and not found.available_in(location):
            there = [t.name for t in catalog.server_types if t.available_in(location)]
            choices = _nearest(server_type, there)
            misses.append(CatalogMiss("server type", server_type, provider, choices, where=location))
    if image and catalog.images:
        offered = [i for i in catalog.images if not known_location or i.available_in(location)]
        if not any(image in (i.name, i.id) for i in offered):
            names = (i.name for i in offered)
            where = location if known_location and catalog.image(image) is not None else ""
            misses.append(CatalogMiss("image", image, provider, _nearest(image, names), where=where))
    return tuple(misses)
