"""Embedded catalogs and the pure catalog policy."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legion_nb.errors import ValidationError
from legion_nb.providers.catalog import (
    PROFILES,
    DeploymentProfile,
    UnknownImageError,
    UnknownLocationError,
    UnknownProfileError,
    UnknownProviderError,
    UnknownServerTypeError,
    choose_image,
    choose_location,
    choose_server_type,
    embedded_catalog,
    embedded_providers,
    resolve_server_choice,
)
from legion_nb.providers.records import Catalog, CatalogLocation


def test_every_provider_ships_a_realistic_snapshot() -> None:
    assert embedded_providers() == ("hetzner", "ovh", "scaleway")
    hetzner = embedded_catalog("hetzner")
    assert {"cx22", "cx32", "cax11", "cpx11"} <= {t.name for t in hetzner.server_types}
    assert {loc.name for loc in hetzner.locations} == {"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}
    assert {"debian-12", "debian-13"} <= {i.name for i in hetzner.images}
    scaleway = embedded_catalog("scaleway")
    assert {"DEV1-S", "DEV1-M", "PLAY2-PICO"} <= {t.name for t in scaleway.server_types}
    assert {"fr-par-1", "fr-par-2", "nl-ams-1", "pl-waw-1"} == {loc.name for loc in scaleway.locations}
    assert "debian_bookworm" in {i.name for i in scaleway.images}
    ovh = embedded_catalog("ovh")
    assert {"d2-2", "b2-7", "b3-8"} <= {t.name for t in ovh.server_types}
    assert {"GRA11", "SBG5", "BHS5", "WAW1"} <= {loc.name for loc in ovh.locations}
    assert "Debian 12" in {i.name for i in ovh.images}
    for catalog in (hetzner, scaleway, ovh):
        assert catalog.source == "embedded" and catalog.currency == "EUR"
        for server_type in catalog.server_types:
            assert server_type.locations, server_type.name
            for location in server_type.locations:
                price = server_type.price_in(location)
                assert price is not None and isinstance(price.monthly, Decimal) and price.monthly > 0


def test_unknown_provider_names_the_valid_ones() -> None:
    with pytest.raises(
        UnknownProviderError, match=r"unknown provider 'aws'; choose one of hetzner, ovh, scaleway"
    ):
        embedded_catalog("aws")


@pytest.mark.parametrize(
    ("provider", "location", "profile", "expected"),
    [
        ("hetzner", "fsn1", "cluster-node", "cx22"),
        ("hetzner", "ash", "cluster-node", "cpx21"),  # no cost-optimised line in the US
        ("hetzner", "ash", "satellite", "cpx11"),
        ("scaleway", "fr-par-1", "cluster-node", "DEV1-M"),
        ("scaleway", "fr-par-1", "satellite", "DEV1-S"),
        ("ovh", "GRA11", "cluster-node", "d2-4"),
        ("ovh", "GRA11", "satellite", "d2-2"),
    ],
)
def test_cheapest_type_meeting_the_profile(provider: str, location: str, profile: str, expected: str) -> None:
    chosen = choose_server_type(embedded_catalog(provider), PROFILES[profile], location)
    assert chosen.name == expected


def test_block_storage_types_meet_any_disk_minimum() -> None:
    big_disk = DeploymentProfile("archive", min_cores=2, min_memory_gb=4, min_disk_gb=200)
    chosen = choose_server_type(embedded_catalog("scaleway"), big_disk, "fr-par-1")
    assert chosen.block_storage and chosen.name == "PLAY2-NANO"


def test_no_fitting_type_lists_what_is_sold() -> None:
    huge = DeploymentProfile("huge", min_cores=64, min_memory_gb=512, min_disk_gb=10)
    with pytest.raises(
        UnknownServerTypeError, match=r"sells no server type in fsn1 that meets huge .*cx22"
    ) as e:
        choose_server_type(embedded_catalog("hetzner"), huge, "fsn1")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("provider", "expected"), [("hetzner", "fsn1"), ("scaleway", "fr-par-1"), ("ovh", "GRA11")]
)
def test_default_location_is_the_recommended_one(provider: str, expected: str) -> None:
    assert choose_location(embedded_catalog(provider)).name == expected


def test_a_catalog_without_the_recommended_location_falls_back_to_its_first() -> None:
    catalog = replace(embedded_catalog("hetzner"), locations=(CatalogLocation("hel1", "Helsinki", "FI"),))
    assert choose_location(catalog).name == "hel1"
    other = Catalog("elsewhere", "EUR", (), (CatalogLocation("x1", "X", "XX"),), ())
    assert choose_location(other).name == "x1"


def test_unknown_location_names_valid_ones() -> None:
    with pytest.raises(
        UnknownLocationError, match=r"hetzner has no location 'fra1'; choose one of ash, fsn1"
    ):
        choose_location(embedded_catalog("hetzner"), "fra1")


def test_current_debian_is_chosen_per_arch() -> None:
    hetzner = embedded_catalog("hetzner")
    assert choose_image(hetzner, "fsn1").name == "debian-13"
    assert choose_image(hetzner, "fsn1", arch="arm").arch == "arm"
    assert choose_image(embedded_catalog("scaleway"), "fr-par-1").name == "debian_trixie"
    assert choose_image(embedded_catalog("ovh"), "GRA11").name == "Debian 13"
    assert choose_image(hetzner, "fsn1", requested="debian-12").name == "debian-12"


def test_images_without_debian_or_unknown_names_fail_clearly() -> None:
    hetzner = embedded_catalog("hetzner")
    with pytest.raises(
        UnknownImageError, match=r"no x86 image 'windows-11' in fsn1; choose one of debian-12"
    ):
        choose_image(hetzner, "fsn1", requested="windows-11")
    no_debian = replace(hetzner, images=tuple(i for i in hetzner.images if i.os_flavor != "debian"))
    with pytest.raises(UnknownImageError, match="offers no Debian x86 image in fsn1; pass one of ubuntu"):
        choose_image(no_debian, "fsn1")


def test_resolve_fills_omitted_choices_and_validates_given_ones() -> None:
    hetzner = embedded_catalog("hetzner")
    choice = resolve_server_choice(hetzner)
    assert (choice.server_type.name, choice.location.name, choice.image.name) == ("cx22", "fsn1", "debian-13")
    assert choice.price is not None and choice.price.monthly == Decimal("3.79")
    arm = resolve_server_choice(hetzner, server_type="cax11", location="nbg1")
    assert arm.image.arch == "arm"
    with pytest.raises(UnknownServerTypeError, match=r"no server type 'cx99'; choose one of .*cx22"):
        resolve_server_choice(hetzner, server_type="cx99")
    with pytest.raises(
        UnknownServerTypeError, match=r"'cx22' is not sold in ash; it is sold in fsn1, hel1, nbg1"
    ):
        resolve_server_choice(hetzner, server_type="cx22", location="ash")
    with pytest.raises(UnknownProfileError, match="choose one of cluster-node, satellite"):
        resolve_server_choice(hetzner, "gpu-box")


def test_choice_errors_are_validation_errors() -> None:
    assert issubclass(UnknownServerTypeError, ValidationError)
    assert UnknownLocationError("x").exit_code == 2


@given(
    cores=st.integers(min_value=1, max_value=8),
    memory=st.sampled_from([1.0, 2.0, 4.0, 8.0, 16.0]),
    disk=st.integers(min_value=10, max_value=160),
    provider=st.sampled_from(["hetzner", "scaleway", "ovh"]),
)
def test_the_choice_fits_and_nothing_cheaper_fits(
    cores: int, memory: float, disk: int, provider: str
) -> None:
    catalog = embedded_catalog(provider)
    location = choose_location(catalog).name
    wanted = DeploymentProfile("p", cores, memory, disk)
    fitting = [t for t in catalog.server_types if t.available_in(location) and wanted.admits(t)]
    if not fitting:
        with pytest.raises(UnknownServerTypeError):
            choose_server_type(catalog, wanted, location)
        return
    chosen = choose_server_type(catalog, wanted, location)
    assert wanted.admits(chosen)
    chosen_price = chosen.price_in(location)
    assert chosen_price is not None
    for other in fitting:
        other_price = other.price_in(location)
        assert other_price is not None and other_price.monthly >= chosen_price.monthly
