"""Scaleway: the adapter (``client``), wire shapes (``wire``), conversions (``convert``) and error body
(``errors``)."""

from __future__ import annotations

from legion_nb.providers.contract import ProviderDescriptor
from legion_nb.providers.scaleway.client import CAPABILITIES, DEFAULT_ENDPOINT, ScalewayAdapter

__all__ = ["DESCRIPTOR", "ScalewayAdapter"]

DESCRIPTOR = ProviderDescriptor(
    name="scaleway",
    title="Scaleway",
    capabilities=CAPABILITIES,
    default_endpoint=DEFAULT_ENDPOINT,
    secret_keys=("secret_key",),
    factory=ScalewayAdapter,
    option_keys=("project_id",),
)
