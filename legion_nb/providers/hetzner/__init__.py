"""Hetzner Cloud: the adapter (``client``), its wire shapes (``wire``) and error body (``errors``)."""

from __future__ import annotations

from legion_nb.providers.contract import ProviderDescriptor
from legion_nb.providers.hetzner.client import CAPABILITIES, DEFAULT_ENDPOINT, HetznerAdapter

__all__ = ["DESCRIPTOR", "HetznerAdapter"]

DESCRIPTOR = ProviderDescriptor(
    name="hetzner",
    title="Hetzner Cloud",
    capabilities=CAPABILITIES,
    default_endpoint=DEFAULT_ENDPOINT,
    secret_keys=("token",),
    factory=HetznerAdapter,
)
