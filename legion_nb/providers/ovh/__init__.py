"""OVHcloud: the adapter (``client``), request signing (``signing``), wire shapes (``wire``), the
wire-to-record conversion (``convert``) and the error body (``errors``)."""

from __future__ import annotations

from legion_nb.providers.contract import ProviderDescriptor
from legion_nb.providers.ovh.client import CAPABILITIES, DEFAULT_ENDPOINT, OvhAdapter

__all__ = ["DESCRIPTOR", "OvhAdapter"]

DESCRIPTOR = ProviderDescriptor(
    name="ovh",
    title="OVHcloud",
    capabilities=CAPABILITIES,
    default_endpoint=DEFAULT_ENDPOINT,
    secret_keys=("application_key", "application_secret", "consumer_key"),
    factory=OvhAdapter,
    option_keys=("service_name",),
)
