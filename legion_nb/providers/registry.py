"""Which providers exist, what they can do, and how to build an adapter for one.

Shared orchestration asks the registry for an adapter instead of importing provider modules, so a
new provider is one package exporting ``DESCRIPTOR`` plus one name in :data:`PROVIDERS`. Provider
packages are imported on first use: planning against the embedded catalogs never pays for importing
every adapter.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache

import httpx

from legion_nb.errors import ValidationError
from legion_nb.providers.catalog import UnknownProviderError
from legion_nb.providers.contract import Capability, ProviderAdapter, ProviderCredentials, ProviderDescriptor

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROVIDERS",
    "capabilities",
    "connect",
    "create_adapter",
    "descriptor",
    "open_adapter",
    "validate_credentials",
]

PROVIDERS: tuple[str, ...] = ("hetzner", "ovh", "scaleway")
"""Every provider Legion integrates, in display order."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@cache
def descriptor(name: str) -> ProviderDescriptor:
    """The provider's descriptor; ``UnknownProviderError`` naming the valid providers otherwise."""
    if name not in PROVIDERS:
        raise UnknownProviderError(f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}")
    module = importlib.import_module(f"legion_nb.providers.{name}")
    found = getattr(module, "DESCRIPTOR", None)
    if not isinstance(found, ProviderDescriptor):
        raise UnknownProviderError(f"provider {name!r} has no adapter in this build; choose another provider")
    return found


def capabilities(name: str) -> frozenset[Capability]:
    return descriptor(name).capabilities


def validate_credentials(credentials: ProviderCredentials) -> None:
    """Check that every secret and option the provider needs is present (no I/O)."""
    info = descriptor(credentials.provider)
    missing = [k for k in info.secret_keys if not credentials.secrets.get(k)]
    missing += [k for k in info.option_keys if not credentials.options.get(k)]
    if missing:
        raise ValidationError(
            f"{credentials.provider} credentials lack {', '.join(missing)}; "
            f"expected secrets {', '.join(info.secret_keys)}"
            + (f" and options {', '.join(info.option_keys)}" if info.option_keys else "")
        )


def create_adapter(client: httpx.AsyncClient, credentials: ProviderCredentials) -> ProviderAdapter:
    """Build the adapter for ``credentials.provider`` over ``client`` (which the caller owns)."""
    validate_credentials(credentials)
    info = descriptor(credentials.provider)
    if not credentials.endpoint:
        credentials = ProviderCredentials(
            credentials.provider, info.default_endpoint, credentials.secrets, credentials.options
        )
    return info.factory(client, credentials)


def open_adapter(
    credentials: ProviderCredentials,
    *,
    http_timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[ProviderAdapter, Callable[[], Awaitable[None]]]:
    """An adapter with its own ``httpx.AsyncClient``, and the coroutine function that closes it.

    Building one sends nothing and never waits, so code that must not yield (a state listener
    registering new credentials before the writer's caller resumes) can open adapters; the caller
    owns the closing. Credentials are checked before the client exists, so a refusal leaves nothing
    to close.
    """
    validate_credentials(credentials)
    client = httpx.AsyncClient(timeout=http_timeout, transport=transport, follow_redirects=False)
    return create_adapter(client, credentials), client.aclose


@asynccontextmanager
async def connect(
    credentials: ProviderCredentials,
    *,
    http_timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[ProviderAdapter]:
    """An adapter with its own ``httpx.AsyncClient``, closed on exit."""
    adapter, aclose = open_adapter(credentials, http_timeout=http_timeout, transport=transport)
    try:
        yield adapter
    finally:
        await aclose()
