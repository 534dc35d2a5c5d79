"""Resilience: creates whose answers are lost are settled by re-reading, never duplicated.

The provider is the sandbox's Hetzner emulator (Scaleway's where its stopped-at-create servers
matter). Lost answers are produced by a real transport wrapper: it forwards a request to the emulator
(which commits it) and then raises the transport error a dropped connection would, answers 503
without forwarding (nothing committed), or answers a list read with the empty list a lagging index
would give.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal

import httpx
import pytest

from legion_nb.errors import ProviderAmbiguousError, ProviderConflictError, ProviderInvalidInputError
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.contract import ProviderCredentials, UniquenessConflictError
from legion_nb.providers.hetzner import HetznerAdapter
from legion_nb.providers.ownership import OwnershipLabels
from legion_nb.providers.records import FirewallRule, Operation, PortRange, Server, ServerSpec
from legion_nb.providers.resilience import CreateIntent, Resilience, SettlePolicy
from legion_nb.providers.scaleway import ScalewayAdapter
from legion_nb.providers.scaleway.errors import TransientStateError

if TYPE_CHECKING:
    from conftest import MemoryRecorder

Fate = Literal["drop_answer", "refuse_503", "stale_empty_list"]
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.org"


class LossyTransport(httpx.AsyncBaseTransport):
    """The real transport, except that chosen requests lose their answer."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.plan: list[tuple[str, str, Fate]] = []
        self.hooks: list[tuple[str, str, Callable[[], Awaitable[None]]]] = []
        self.sent: list[str] = []

    def lose(self, method: str, path: str, fate: Fate, times: int = 1) -> None:
        self.plan.extend([(method, path, fate)] * times)

    def before(self, method: str, path: str, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once, just before the next matching request is forwarded."""
        self.hooks.append((method, path, hook))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path}"
        self.sent.append(key)
        for index, (method, path, hook) in enumerate(self.hooks):
            if request.method == method and request.url.path.endswith(path):
                del self.hooks[index]
                await hook()
                break
        for index, (method, path, fate) in enumerate(self.plan):
            if request.method == method and request.url.path.endswith(path):
                del self.plan[index]
                if fate == "refuse_503":
                    body = {"error": {"code": "unavailable", "message": "service unavailable", "details": {}}}
                    return httpx.Response(503, json=body)
                if fate == "stale_empty_list":
                    key = request.url.path.rpartition("/")[2]
                    return httpx.Response(200, json={key: []}, headers={"X-Total-Count": "0"})
                response = await self._inner.handle_async_request(request)
                await response.aread()
                await response.aclose()
                raise httpx.RemoteProtocolError(
                    "server disconnected without sending a response", request=request
                )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def lossy() -> LossyTransport:
    return LossyTransport()


@pytest.fixture
async def resilient(
    credentials: Callable[[str], ProviderCredentials],
    lossy: LossyTransport,
    broker: ProviderBroker,
    recorder: MemoryRecorder,
) -> AsyncIterator[Resilience]:
    async with httpx.AsyncClient(transport=lossy) as client:
        broker.register(HetznerAdapter(client, credentials("hetzner")))
        yield Resilience(broker, recorder, SettlePolicy(reads=2, create_attempts=3))


def spec(name: str, legion_id: str | None = None, server_type: str = "cx22") -> ServerSpec:
    labels = (OwnershipLabels(legion_id) if legion_id else OwnershipLabels.new()).as_labels()
    return ServerSpec(name, server_type, "fsn1", "debian-13", labels=labels)


async def servers(broker: ProviderBroker) -> list[Server]:
    return await broker.read("hetzner", "list", lambda a: a.list_servers())


@asynccontextmanager
async def direct(credentials: Callable[[str], ProviderCredentials]) -> AsyncIterator[HetznerAdapter]:
    async with httpx.AsyncClient() as client:
        yield HetznerAdapter(client, credentials("hetzner"))


async def test_a_create_whose_answer_was_lost_is_found_not_repeated(
    resilient: Resilience, lossy: LossyTransport, broker: ProviderBroker, recorder: MemoryRecorder
) -> None:
    lossy.lose("POST", "/servers", "drop_answer")
    wanted = spec("web-1")
    server = await resilient.create_and_wait_server(wanted, "hetzner")
    assert server.name == "web-1" and server.status == "running" and server.ipv4
    assert server.ownership == wanted.ownership
    assert lossy.sent.count("POST /v1/servers") == 1
    assert [s.name for s in await servers(broker)] == ["web-1"]
    assert [event for event, _ in recorder.log] == ["record", "clear"]
    assert recorder.pending == {}


async def test_a_server_found_off_by_settling_is_powered_on(
    credentials: Callable[[str], ProviderCredentials],
    lossy: LossyTransport,
    broker: ProviderBroker,
    recorder: MemoryRecorder,
) -> None:
    """Scaleway creates servers stopped and starts them with a second call. When the create's answer
    is lost and the adapter's own look-up still sees nothing, that start never happens: resilience
    finds the server off by re-reading, and must start it, since a running server was asked for."""
    async with httpx.AsyncClient(transport=lossy) as client:
        broker.register(ScalewayAdapter(client, credentials("scaleway")))
        resilient = Resilience(broker, recorder, SettlePolicy(reads=2, create_attempts=3))
        lossy.lose("POST", "/servers", "drop_answer")
        lossy.lose("GET", "/servers", "stale_empty_list")
        labels = OwnershipLabels.new().as_labels()
        wanted = ServerSpec("web-off", "DEV1-S", "fr-par-1", "debian_bookworm", labels=labels)
        server = await resilient.create_and_wait_server(wanted, "scaleway")
        listed = await broker.read("scaleway", "list", lambda a: a.list_servers())
    assert server.name == "web-off" and server.status == "running" and server.ipv4
    assert server.ownership == wanted.ownership
    assert lossy.plan == []  # both losses happened
    assert lossy.sent.count("POST /instance/v1/zones/fr-par-1/servers") == 1
    zone, raw_id = server.id.split("/")
    assert f"POST /instance/v1/zones/{zone}/servers/{raw_id}/action" in lossy.sent  # resilience's power-on
    assert [(s.id, s.status) for s in listed] == [(server.id, "running")]
    assert [event for event, _ in recorder.log] == ["record", "clear"] and recorder.pending == {}


async def test_a_create_that_did_not_land_is_sent_again(
    resilient: Resilience, lossy: LossyTransport, broker: ProviderBroker, recorder: MemoryRecorder
) -> None:
    lossy.lose("POST", "/servers", "refuse_503")
    pending = await resilient.create_server(spec("web-2"), "hetzner")
    assert pending.operations  # the second send answered normally
    assert lossy.sent.count("POST /v1/servers") == 2
    assert [s.name for s in await servers(broker)] == ["web-2"]
    assert recorder.pending == {}


async def test_a_uniqueness_conflict_on_our_own_earlier_create_reads_it_back(
    resilient: Resilience,
    credentials: Callable[[str], ProviderCredentials],
    broker: ProviderBroker,
    recorder: MemoryRecorder,
) -> None:
    legion_id = OwnershipLabels.new().legion_id
    async with direct(credentials) as adapter:
        earlier = await adapter.create_server(spec("db-1", legion_id))  # a run that crashed before recording
    pending = await resilient.create_server(spec("db-1", legion_id), "hetzner")
    assert pending.server.id == earlier.server.id and pending.operations == ()
    assert len(await servers(broker)) == 1
    assert recorder.pending == {}


async def test_a_name_taken_by_someone_else_is_a_conflict(
    resilient: Resilience, credentials: Callable[[str], ProviderCredentials], recorder: MemoryRecorder
) -> None:
    async with direct(credentials) as adapter:
        await adapter.create_server(spec("shared"))
    with pytest.raises(UniquenessConflictError, match="server name is already used"):
        await resilient.create_server(spec("shared"), "hetzner")
    assert recorder.pending == {}


async def test_a_refused_create_clears_its_record_and_creates_nothing(
    resilient: Resilience, broker: ProviderBroker, recorder: MemoryRecorder
) -> None:
    with pytest.raises(ProviderInvalidInputError, match=r"hetzner: .*server_type"):
        await resilient.create_server(spec("bad", server_type="cx999"), "hetzner")
    assert await servers(broker) == []
    assert recorder.pending == {} and [e for e, _ in recorder.log] == ["record", "clear"]


async def test_an_outcome_that_never_settles_keeps_the_pending_record(
    resilient: Resilience, lossy: LossyTransport, broker: ProviderBroker, recorder: MemoryRecorder
) -> None:
    lossy.lose("POST", "/servers", "refuse_503", times=3)
    wanted = spec("ghost")
    with pytest.raises(ProviderAmbiguousError, match=r"could not confirm whether server ghost was created"):
        await resilient.create_server(wanted, "hetzner")
    assert wanted.ownership is not None
    assert list(recorder.pending) == [wanted.ownership.legion_id]
    assert await servers(broker) == []


async def test_settle_pending_after_a_crash_finds_or_reports_absence_and_never_creates(
    resilient: Resilience,
    credentials: Callable[[str], ProviderCredentials],
    lossy: LossyTransport,
    recorder: MemoryRecorder,
) -> None:
    landed = OwnershipLabels.new().legion_id
    async with direct(credentials) as adapter:
        await adapter.create_server(spec("api-1", landed))
    found = await resilient.settle_pending(CreateIntent("hetzner", "server", "api-1", landed))
    assert isinstance(found, Server) and found.name == "api-1"
    lost = CreateIntent("hetzner", "server", "api-2", OwnershipLabels.new().legion_id)
    assert await resilient.settle_pending(lost) is None
    assert not any(sent.startswith("POST") for sent in lossy.sent)
    assert recorder.pending == {}


async def test_other_kinds_settle_by_labels_or_unique_name(
    resilient: Resilience, lossy: LossyTransport, broker: ProviderBroker
) -> None:
    lossy.lose("POST", "/ssh_keys", "drop_answer")
    lossy.lose("POST", "/firewalls", "drop_answer")
    lossy.lose("POST", "/zones", "drop_answer")
    key = await resilient.create_ssh_key(
        "hetzner", "legion-key-ops", SSH_KEY, OwnershipLabels.new().legion_id
    )
    rule = FirewallRule("in", "tcp", PortRange.single(22), ("0.0.0.0/0",))
    firewall = await resilient.create_firewall(
        "hetzner", "legion-fw", [rule], OwnershipLabels.new().legion_id
    )
    zone = await resilient.create_zone("hetzner", "example.org", 3600, OwnershipLabels.new().legion_id)
    assert (key.name, firewall.name, zone.name) == ("legion-key-ops", "legion-fw", "example.org")
    assert len(await broker.read("hetzner", "keys", lambda a: a.list_ssh_keys())) == 1
    assert len(await broker.read("hetzner", "fws", lambda a: a.list_firewalls())) == 1
    assert len(await broker.read("hetzner", "zones", lambda a: a.list_zones())) == 1


async def test_a_detach_naming_a_server_deleted_meanwhile_is_sent_again_for_the_rest(
    credentials: Callable[[str], ProviderCredentials],
    lossy: LossyTransport,
    broker: ProviderBroker,
    recorder: MemoryRecorder,
) -> None:
    """One server is deleted between the adapter's read of the firewall and its remove: the emulator,
    like Hetzner, refuses the whole remove (404 ``firewall_resource_not_found``); the adapter reads
    the applied set again and detaches the server still listed, so the firewall can be deleted."""
    async with httpx.AsyncClient(transport=lossy) as client:
        adapter = HetznerAdapter(client, credentials("hetzner"))
        broker.register(adapter)
        resilient = Resilience(broker, recorder, SettlePolicy(reads=2, create_attempts=3))
        kept = await resilient.create_and_wait_server(spec("fw-kept"), "hetzner")
        gone = await resilient.create_and_wait_server(spec("fw-gone"), "hetzner")
        rule = FirewallRule("in", "tcp", PortRange.single(22), ("0.0.0.0/0",))
        firewall = await resilient.create_firewall(
            "hetzner", "legion-fw", [rule], OwnershipLabels.new().legion_id
        )
        await broker.wait(await adapter.apply_firewall(firewall.id, [kept.id, gone.id]))
        remove = f"/firewalls/{firewall.id}/actions/remove_from_resources"
        lossy.before("POST", remove, lambda: resilient.delete_server("hetzner", gone.id))
        await broker.wait(await adapter.apply_firewall(firewall.id, []))
        (listed,) = await adapter.list_firewalls()
        assert listed.applied_to == ()
        assert lossy.sent.count(f"POST /v1{remove}") == 2
        await adapter.delete_firewall(firewall.id)
        assert await adapter.list_firewalls() == []
        assert [s.name for s in await servers(broker)] == ["fw-kept"]


async def test_idempotent_mutations_are_resent_and_deletes_accept_absence(
    resilient: Resilience, lossy: LossyTransport, broker: ProviderBroker
) -> None:
    created = await resilient.create_and_wait_server(spec("tmp-1"), "hetzner")
    await resilient.create_zone("hetzner", "example.net", 3600, OwnershipLabels.new().legion_id)
    lossy.lose("POST", "/rrsets", "drop_answer")
    await resilient.converge(
        "hetzner", "set www", lambda a: a.set_records("example.net", "www", "A", 300, ["127.20.0.9"])
    )
    records = await broker.read("hetzner", "records", lambda a: a.list_records("example.net"))
    assert [r.values for r in records if r.name == "www"] == [("127.20.0.9",)]
    lossy.lose("DELETE", f"/servers/{created.id}", "drop_answer")
    await resilient.delete_server("hetzner", created.id)
    assert lossy.sent.count(f"DELETE /v1/servers/{created.id}") == 2
    assert await servers(broker) == []


async def test_a_delete_refused_while_the_server_is_between_states_is_sent_again_once_it_settles(
    credentials: Callable[[str], ProviderCredentials], broker: ProviderBroker, recorder: MemoryRecorder
) -> None:
    """Scaleway refuses to delete a server that is still ``starting`` (409 ``transient_state``); the
    delete waits at the poll pace and succeeds once the server settles. A conflict that waiting
    cannot lift (a firewall still in use) is raised at once, with nothing sent again."""
    async with httpx.AsyncClient() as client:
        adapter = ScalewayAdapter(client, credentials("scaleway"))
        broker.register(adapter)
        resilient = Resilience(broker, recorder)
        labels = OwnershipLabels.new().as_labels()
        wanted = ServerSpec("web-busy", "DEV1-S", "fr-par-1", "debian_bookworm", labels=labels)
        server = await resilient.create_and_wait_server(wanted, "scaleway")
        real_delete = adapter.delete_server
        sent: list[str] = []

        async def starting_twice(server_id: str) -> Operation | None:
            sent.append(server_id)
            if len(sent) <= 2:  # what the API answers while the server is still starting
                raise TransientStateError("scaleway", "server is in a transient state: starting")
            return await real_delete(server_id)

        adapter.delete_server = starting_twice  # type: ignore[method-assign]
        await resilient.delete_server("scaleway", server.id)
        assert sent == [server.id] * 3
        assert await broker.read("scaleway", "list", lambda a: a.list_servers()) == []

        refusals: list[str] = []

        async def in_use(server_id: str) -> Operation | None:
            refusals.append(server_id)
            raise ProviderConflictError("scaleway", "resource is in use")

        adapter.delete_server = in_use  # type: ignore[method-assign]
        with pytest.raises(ProviderConflictError, match="in use"):
            await resilient.delete_server("scaleway", "fr-par-1/11111111-1111-1111-1111-111111111111")
        assert len(refusals) == 1


def test_intents_round_trip_through_json() -> None:
    intent = CreateIntent("ovh", "dns_zone", "example.org", OwnershipLabels.new().legion_id)
    assert CreateIntent.from_json(intent.to_json()) == intent
    with pytest.raises(ValueError, match="unknown pending kind 'volume'"):
        CreateIntent.from_json({**intent.to_json(), "kind": "volume"})
