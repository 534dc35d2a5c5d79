"""Cloud providers behind one contract.

``contract`` holds the adapter contract (capabilities, credentials, the ``ProviderAdapter`` protocol),
``records`` the provider-neutral domain records, ``ownership`` the labels that mark a resource as
Legion's, ``http`` the shared httpx plumbing, ``registry`` the list of providers, ``broker`` the
per-provider call lanes and batched waits, ``resilience`` the settling of mutations whose answer was
lost, and ``catalog`` the embedded catalogs and the choice policy. Each provider is a package:
``hetzner``, ``scaleway``, ``ovh``. This layer never imports the engine, the widgets, the CLI or the
emulators.
"""

from __future__ import annotations

from legion_nb.providers.broker import BrokerPolicy, ProviderBroker, ProviderStatus
from legion_nb.providers.contract import Capability, ProviderAdapter, ProviderCredentials
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import ServerSpec
from legion_nb.providers.registry import PROVIDERS, connect, create_adapter
from legion_nb.providers.resilience import CreateIntent, PendingRecorder, Resilience

__all__ = [
    "PROVIDERS",
    "BrokerPolicy",
    "Capability",
    "CreateIntent",
    "OwnershipLabels",
    "PendingRecorder",
    "ProviderAdapter",
    "ProviderBroker",
    "ProviderCredentials",
    "ProviderStatus",
    "Resilience",
    "ServerSpec",
    "connect",
    "create_adapter",
]
