"""One contract, three clouds: every adapter against its sandbox emulator, through the same suite.

Each test runs once per provider with the adapter the registry builds from the sandbox's credentials
(the way the engine builds it), with the broker and resilience in front where the engine would use
them. What a provider cannot do must fail with the typed ``CapabilityMissingError``, before any call.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from legion_nb.errors import (
    CapabilityMissingError,
    ProviderAuthError,
    ProviderError,
    ProviderInvalidInputError,
    ProviderNotFoundError,
    ProviderUnavailableError,
    ValidationError,
)
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.catalog import ServerChoice, UnknownProviderError, resolve_server_choice
from legion_nb.providers.contract import Capability, ProviderAdapter, ProviderCredentials
from legion_nb.providers.http import OutcomeUnknownError
from legion_nb.providers.ownership import OwnershipLabels, deterministic_name
from legion_nb.providers.records import FirewallRule, PortRange, ServerSpec
from legion_nb.providers.registry import PROVIDERS, create_adapter, descriptor, validate_credentials
from legion_nb.providers.resilience import Resilience

if TYPE_CHECKING:
    from conftest import AdapterFactory, MemoryRecorder

SSH_KEY = (
    Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
    + " conformance@legion.test"
)
ZONE = "example.org"


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def adapter(
    adapter_for: AdapterFactory, provider: str, broker: ProviderBroker
) -> AsyncIterator[ProviderAdapter]:
    async with adapter_for(provider) as opened:
        broker.register(opened)
        yield opened


@pytest.fixture
def resilience(broker: ProviderBroker, recorder: MemoryRecorder) -> Resilience:
    return Resilience(broker, recorder)


async def choice_for(adapter: ProviderAdapter) -> ServerChoice:
    return resolve_server_choice(await adapter.fetch_catalog(), "satellite")


def server_spec(choice: ServerChoice, name: str, *, key_ids: tuple[str, ...] = ()) -> ServerSpec:
    return ServerSpec(
        name=name,
        server_type=choice.server_type.name,
        location=choice.location.name,
        image=choice.image.id,
        ssh_key_ids=key_ids,
        labels=OwnershipLabels.new().as_labels(),
    )


def bare_rule(rule: FirewallRule) -> FirewallRule:
    """Descriptions are a nicety some providers drop (Scaleway security group rules have none)."""
    return replace(rule, description=None)


def bare(rules: tuple[FirewallRule, ...]) -> set[FirewallRule]:
    return {bare_rule(r) for r in rules}


def one_line_naming(error: BaseException, provider: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert text.startswith(f"{provider}: "), text


async def test_credentials_and_catalog(adapter: ProviderAdapter, provider: str) -> None:
    await adapter.verify_credentials()
    catalog = await adapter.fetch_catalog()
    assert catalog.provider == provider and catalog.source == "live"
    assert catalog.server_types and catalog.locations and catalog.images
    choice = resolve_server_choice(catalog)
    assert choice.image.os_flavor == "debian"
    assert choice.price is not None and choice.price.hourly > 0
    assert choice.server_type.cores >= 2 and choice.server_type.memory_gb >= 4


async def test_ssh_key_lifecycle(adapter: ProviderAdapter) -> None:
    legion_id = OwnershipLabels.new().legion_id
    name = deterministic_name("key", "ops", legion_id)
    key = await adapter.create_ssh_key(name, SSH_KEY, OwnershipLabels(legion_id).as_labels())
    assert key.name == name and key.public_key.split()[:2] == SSH_KEY.split()[:2]
    assert key.id in {k.id for k in await adapter.list_ssh_keys()}
    await adapter.delete_ssh_key(key.id)
    assert key.id not in {k.id for k in await adapter.list_ssh_keys()}


async def test_server_lifecycle(
    adapter: ProviderAdapter, provider: str, broker: ProviderBroker, resilience: Resilience
) -> None:
    choice = await choice_for(adapter)
    key = await adapter.create_ssh_key(f"legion-conf-{provider}", SSH_KEY, OwnershipLabels.new().as_labels())
    spec = server_spec(choice, f"conf-{provider}-1", key_ids=(key.id,))
    server = await resilience.create_and_wait_server(spec, provider)
    assert server.status == "running" and server.provider == provider
    assert server.ipv4 is not None and ipaddress.ip_address(server.ipv4) in ipaddress.ip_network(
        "127.0.0.0/8"
    )
    assert server.ownership == spec.ownership
    assert spec.ownership is not None
    by_labels = await adapter.list_servers(spec.ownership.as_labels())
    assert [s.id for s in by_labels] == [server.id]
    assert [s.id for s in await adapter.find_servers_by_name(spec.name)] == [server.id]
    assert (await adapter.get_server(server.id)).name == spec.name
    assert await adapter.list_servers(OwnershipLabels.new().as_labels()) == []

    await resilience.delete_server(provider, server.id)
    assert await adapter.list_servers(spec.ownership.as_labels()) == []
    with pytest.raises(ProviderNotFoundError) as caught:
        await adapter.get_server(server.id)
    one_line_naming(caught.value, provider)
    await adapter.delete_ssh_key(key.id)


async def test_dns_records_upsert_and_delete(adapter: ProviderAdapter, provider: str) -> None:
    zone = await adapter.create_zone(ZONE, 3600, OwnershipLabels.new().as_labels())
    assert zone.name == ZONE
    assert ZONE in {z.name for z in await adapter.list_zones()}

    await adapter.set_records(ZONE, "www", "A", 300, ["127.20.0.10"])
    await adapter.set_records(ZONE, "www", "A", 600, ["127.20.0.12", "127.20.0.11"])
    await adapter.set_records(ZONE, "@", "TXT", 300, ['"legion conformance"'])
    records = {(r.name, r.type): r for r in await adapter.list_records(ZONE)}
    assert records[("www", "A")].values == ("127.20.0.11", "127.20.0.12")
    assert records[("www", "A")].ttl == 600
    assert ("@", "TXT") in records

    await adapter.delete_records(ZONE, "www", "A")
    await adapter.delete_records(ZONE, "www", "A")  # absent already: still fine
    remaining = {(r.name, r.type) for r in await adapter.list_records(ZONE)}
    assert ("www", "A") not in remaining and ("@", "TXT") in remaining
    await adapter.delete_records(ZONE, "@", "TXT")


async def test_firewall_or_its_typed_absence(
    adapter: ProviderAdapter, provider: str, broker: ProviderBroker, resilience: Resilience
) -> None:
    rule = FirewallRule("in", "tcp", PortRange.single(22), ("0.0.0.0/0",), description="ssh")
    if Capability.FIREWALL not in adapter.capabilities:
        with pytest.raises(CapabilityMissingError, match="has no firewall capability") as caught:
            await adapter.create_firewall("legion-fw", [rule], OwnershipLabels.new().as_labels())
        one_line_naming(caught.value, provider)
        with pytest.raises(CapabilityMissingError):
            await adapter.list_firewalls()
        return

    labels = OwnershipLabels.new().as_labels()
    firewall = await adapter.create_firewall(f"legion-fw-{provider}", [rule], labels)
    assert bare(firewall.rules) == {bare_rule(rule)}
    sync = FirewallRule("in", "tcp", PortRange.single(4413), ("127.20.0.0/16",), description="sync")
    await broker.wait(await adapter.set_firewall_rules(firewall.id, [rule, sync]))
    (listed,) = await adapter.list_firewalls(labels)
    assert bare(listed.rules) == {bare_rule(rule), bare_rule(sync)}

    server = await resilience.create_and_wait_server(
        server_spec(await choice_for(adapter), f"fw-{provider}"), provider
    )
    await broker.wait(await adapter.apply_firewall(firewall.id, [server.id]))
    (applied,) = await adapter.list_firewalls(labels)
    assert applied.applied_to == (server.id,)
    await broker.wait(await adapter.apply_firewall(firewall.id, []))
    await adapter.delete_firewall(firewall.id)
    assert await adapter.list_firewalls(labels) == []
    await resilience.delete_server(provider, server.id)


@pytest.mark.parametrize("field", ["server_type", "location"])
async def test_unknown_type_or_location_is_refused_and_nothing_is_created(
    adapter: ProviderAdapter, provider: str, field: str
) -> None:
    spec = server_spec(await choice_for(adapter), f"bad-{field}")
    if field == "server_type":
        bad = replace(spec, server_type="no-such-type")
    else:
        bad = replace(spec, location="no-such-location")
    with pytest.raises((ProviderInvalidInputError, ProviderNotFoundError)) as caught:
        await adapter.create_server(bad)
    one_line_naming(caught.value, provider)
    assert spec.ownership is not None
    assert await adapter.list_servers(spec.ownership.as_labels()) == []
    assert await adapter.find_servers_by_name(bad.name) == []


async def test_bad_credentials_are_an_auth_error(
    credentials: Callable[[str], ProviderCredentials], provider: str
) -> None:
    good = credentials(provider)
    wrong = replace(good, secrets={key: "wrong-" + value for key, value in good.secrets.items()})
    async with httpx.AsyncClient() as client:
        adapter = create_adapter(client, wrong)
        with pytest.raises(ProviderAuthError) as caught:
            await adapter.verify_credentials()
    one_line_naming(caught.value, provider)
    for secret in good.secrets.values():
        assert secret not in str(caught.value)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_endpoint_is_one_line_and_creates_nothing(
    credentials: Callable[[str], ProviderCredentials], adapter: ProviderAdapter, provider: str
) -> None:
    good = credentials(provider)
    url = httpx.URL(good.endpoint)
    dead = replace(good, endpoint=str(url.copy_with(port=closed_port())))
    spec = server_spec(await choice_for(adapter), f"dead-{provider}")
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        unreachable = create_adapter(client, dead)
        with pytest.raises(ProviderError) as caught:
            await unreachable.verify_credentials()
        assert isinstance(caught.value, ProviderUnavailableError)
        one_line_naming(caught.value, provider)
        with pytest.raises(ProviderUnavailableError) as on_create:
            await unreachable.create_server(spec)
        assert not isinstance(
            on_create.value, OutcomeUnknownError
        )  # nothing was sent, nothing can have landed
    assert spec.ownership is not None
    assert await adapter.list_servers(spec.ownership.as_labels()) == []


def test_the_registry_describes_every_provider() -> None:
    assert PROVIDERS == ("hetzner", "ovh", "scaleway")
    for name in PROVIDERS:
        info = descriptor(name)
        assert info.name == name and info.secret_keys
        assert {Capability.COMPUTE, Capability.SSH_KEYS, Capability.DNS} <= info.capabilities
    assert Capability.FIREWALL not in descriptor("ovh").capabilities
    assert Capability.FIREWALL in descriptor("hetzner").capabilities
    with pytest.raises(
        UnknownProviderError, match="unknown provider 'aws'; choose one of hetzner, ovh, scaleway"
    ):
        descriptor("aws")
    with pytest.raises(
        ValidationError, match="ovh credentials lack application_secret, consumer_key, service_name"
    ):
        validate_credentials(ProviderCredentials("ovh", "", {"application_key": "k"}))
