"""Mutations whose answer was lost: settle them by reading the provider, never by guessing.

A create that times out, loses its connection or gets a 5xx *may* have landed. Sending it again
blindly can make a second server (Scaleway and OVH names are not unique) and billing twice; giving up
blindly leaves an orphan that costs money. Legion does neither:

1. Before a create is sent, a durable *pending* record is written through :class:`PendingRecorder`
   (the engine implements it on its encrypted state store; the provider layer cannot import the
   engine). The record holds the provider, the kind, the deterministic name and the Legion id that
   the resource carries as an ownership label.
2. If the outcome is unknown (``http.OutcomeUnknownError``), the provider is re-read by ownership
   labels (or by the unique name where the provider has no labels for that kind). Success is
   accepted only when the resource is visible. Not visible after ``SettlePolicy.reads`` reads: the
   create did not land, and it is sent again, up to ``SettlePolicy.create_attempts`` times.
3. A resend that gets a uniqueness conflict proves the first attempt landed: the resource is read
   back (and must carry our Legion id, or it is someone else's and the conflict stands).
4. After a crash the engine calls :meth:`Resilience.settle_pending` for every pending record left in
   its state: it looks for the resource and never creates anything.

Idempotent mutations (set rules, set records, apply, delete) are simpler: after an unknown outcome
they are sent again (:meth:`Resilience.converge`); a delete that finds nothing left has succeeded.

Seam for the engine: implement ``PendingRecorder`` on the state store (``record`` must be durable
before it returns), construct ``Resilience(broker, recorder)``, and call its ``create_*`` methods
instead of the broker's ``mutate`` for creates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from legion_nb.errors import (
    ProviderAmbiguousError,
    ProviderConflictError,
    ProviderError,
    ProviderNotFoundError,
)
from legion_nb.providers.broker import ProviderBroker
from legion_nb.providers.contract import ProviderAdapter, UniquenessConflictError
from legion_nb.providers.http import OutcomeUnknownError
from legion_nb.providers.ownership import LEGION_ID_LABEL, OwnershipLabels
from legion_nb.providers.records import (
    DnsZone,
    Firewall,
    FirewallRule,
    Operation,
    PendingServer,
    PublicIp,
    PublicIpKind,
    Server,
    ServerSpec,
    SshKey,
)

__all__ = [
    "CreateIntent",
    "PendingKind",
    "PendingRecorder",
    "Resilience",
    "SettlePolicy",
]

T = TypeVar("T")
PendingKind = Literal["server", "ssh_key", "firewall", "floating_ip", "dns_zone"]
Settled = Server | SshKey | Firewall | PublicIp | DnsZone
R = TypeVar("R", bound=Settled)


@dataclass(frozen=True)
class CreateIntent:
    """A create about to be sent, with what it takes to find the resource again."""

    provider: str
    kind: PendingKind
    name: str
    legion_id: str

    @property
    def ownership(self) -> OwnershipLabels:
        return OwnershipLabels(self.legion_id)

    def to_json(self) -> dict[str, str]:
        return {"provider": self.provider, "kind": self.kind, "name": self.name, "legion_id": self.legion_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreateIntent:
        kind = data["kind"]
        if kind not in ("server", "ssh_key", "firewall", "floating_ip", "dns_zone"):
            raise ValueError(f"unknown pending kind {kind!r}")
        return cls(str(data["provider"]), kind, str(data["name"]), str(data["legion_id"]))

    def describe(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.name}"


class PendingRecorder(Protocol):
    """Durable storage for create intents; implemented by the engine on its state store."""

    async def record(self, intent: CreateIntent) -> None:
        """Persist ``intent`` durably; a create is sent only after this returns."""
        ...

    async def clear(self, intent: CreateIntent) -> None:
        """Forget ``intent``: it landed (and the caller now tracks the resource) or it was refused."""
        ...


@dataclass(frozen=True)
class SettlePolicy:
    reads: int = 3
    """Re-reads after an unknown outcome before concluding that the create did not land."""
    create_attempts: int = 3
    """Sends of one create in total (the first plus resends after "did not land")."""
    idempotent_attempts: int = 4
    """Sends of an idempotent mutation after unknown outcomes."""


def _owned(labels: Mapping[str, str], legion_id: str) -> bool:
    return labels.get(LEGION_ID_LABEL) == legion_id


class Resilience:
    """Creates, deletes and converging mutations that survive lost answers (module docstring)."""

    def __init__(
        self, broker: ProviderBroker, recorder: PendingRecorder, policy: SettlePolicy | None = None
    ) -> None:
        self._broker = broker
        self._recorder = recorder
        self.policy = policy or SettlePolicy()

    # --------------------------------------------------------------------------------------- creates

    async def create_server(self, spec: ServerSpec, provider: str) -> PendingServer:
        """Create ``spec`` once, whatever happens to the answers. ``spec.labels`` must carry the
        ownership labels (their Legion id is the intent's). A server found by re-reading comes back
        without operations: wait for it with ``broker.wait_for_server``."""
        ownership = spec.ownership
        if ownership is None:
            raise ValueError("ServerSpec.labels must carry Legion's ownership labels (OwnershipLabels)")
        intent = CreateIntent(provider, "server", spec.name, ownership.legion_id)

        async def send(adapter: ProviderAdapter) -> PendingServer:
            return await adapter.create_server(spec)

        found = await self._create(intent, send)
        if isinstance(found, PendingServer):
            return found
        assert isinstance(found, Server)
        return PendingServer(server=found, operations=())

    async def create_and_wait_server(self, spec: ServerSpec, provider: str) -> Server:
        """Create, then wait until the server runs; the final read carries its addresses."""
        pending = await self.create_server(spec, provider)
        return await self.until_running(provider, pending.server.id, spec.name, pending.operations)

    async def until_running(
        self, provider: str, server_id: str, name: str, operations: Sequence[Operation] = ()
    ) -> Server:
        """Wait until the server runs, starting it when it is off; the final read carries its addresses.

        ``operations`` are the create's (or a rebuild's) own actions: they end with the server
        running. Without them (a server found by re-reading, adopted or rebuilt) the create may have
        landed while a start that belonged to it did not (Scaleway creates stopped and starts with
        a second call), so an ``off`` server is powered on here (idempotent, :meth:`converge`).
        """
        if operations:
            await self._broker.wait(operations)
            return await self._broker.wait_for_server(provider, server_id)
        server = await self._broker.wait_for_server(provider, server_id, ("running", "off"))
        if server.status == "off":
            started = await self.converge(provider, f"power on {name}", lambda a: a.power_on(server_id))
            await self._broker.wait([started] if started else [])
            server = await self._broker.wait_for_server(provider, server_id)
        return server

    async def create_ssh_key(self, provider: str, name: str, public_key: str, legion_id: str) -> SshKey:
        return await self._create_owned(
            CreateIntent(provider, "ssh_key", name, legion_id),
            SshKey,
            lambda adapter, labels: adapter.create_ssh_key(name, public_key, labels),
        )

    async def create_firewall(
        self, provider: str, name: str, rules: Sequence[FirewallRule], legion_id: str
    ) -> Firewall:
        return await self._create_owned(
            CreateIntent(provider, "firewall", name, legion_id),
            Firewall,
            lambda adapter, labels: adapter.create_firewall(name, rules, labels),
        )

    async def create_floating_ip(
        self, provider: str, name: str, ip_type: Literal["ipv4", "ipv6"], location: str, legion_id: str
    ) -> PublicIp:
        return await self._create_owned(
            CreateIntent(provider, "floating_ip", name, legion_id),
            PublicIp,
            lambda adapter, labels: adapter.create_floating_ip(name, ip_type, location, labels),
        )

    async def create_zone(self, provider: str, name: str, ttl: int, legion_id: str) -> DnsZone:
        return await self._create_owned(
            CreateIntent(provider, "dns_zone", name, legion_id),
            DnsZone,
            lambda adapter, labels: adapter.create_zone(name, ttl, labels),
        )

    async def _create_owned(
        self,
        intent: CreateIntent,
        record: type[R],
        send: Callable[[ProviderAdapter, dict[str, str]], Awaitable[R]],
    ) -> R:
        """:meth:`_create` for a resource whose only labels are the intent's ownership labels."""
        labels = intent.ownership.as_labels()
        result = await self._create(intent, lambda adapter: send(adapter, labels))
        assert isinstance(result, record)  # what _find settles on is always of the intent's kind
        return result

    async def _create(
        self, intent: CreateIntent, send: Callable[[ProviderAdapter], Awaitable[T]]
    ) -> T | Settled:
        await self._recorder.record(intent)
        try:
            result = await self._send_until_settled(intent, send)
        except ProviderAmbiguousError:
            raise  # keep the pending record: settle_pending resolves it later
        except ProviderError:
            await self._recorder.clear(intent)  # refused outright: nothing landed
            raise
        await self._recorder.clear(intent)
        return result

    async def _send_until_settled(
        self, intent: CreateIntent, send: Callable[[ProviderAdapter], Awaitable[T]]
    ) -> T | Settled:
        label = f"create {intent.describe()}"
        for attempt in range(self.policy.create_attempts):
            try:
                return await self._broker.mutate(intent.provider, label, send)
            except UniquenessConflictError:
                # Ours if it carries our id: an earlier attempt (or a run before a crash) landed.
                found = await self._find(intent)
                if found is not None:
                    return found
                raise
            except OutcomeUnknownError:
                found = await self._settle(intent)
                if found is not None:
                    return found
                if attempt + 1 < self.policy.create_attempts:
                    continue
        raise ProviderAmbiguousError(
            intent.provider,
            f"could not confirm whether {intent.describe()} was created after "
            f"{self.policy.create_attempts} attempts; run `legion refresh` before materializing again",
        )

    async def settle_pending(self, intent: CreateIntent) -> Settled | None:
        """After a crash: the resource a pending create made, or None if it never landed. Never creates.
        The record is cleared either way; the caller tracks what was found (or plans the create again)."""
        found = await self._settle(intent)
        await self._recorder.clear(intent)
        return found

    async def _settle(self, intent: CreateIntent) -> Settled | None:
        for read in range(self.policy.reads):
            found = await self._find(intent)
            if found is not None:
                return found
            if read + 1 < self.policy.reads:
                await self._broker.policy.sleep(self._broker.policy.poll.delay(read))
        return None

    async def _find(self, intent: CreateIntent) -> Settled | None:
        """The resource the intent describes, by Legion id (or unique name where labels are absent)."""
        labels = {LEGION_ID_LABEL: intent.legion_id}
        label = f"find {intent.describe()}"
        legion_id = intent.legion_id

        def pick(items: Sequence[Settled], *, by_name: bool) -> Settled | None:
            owned = [i for i in items if _owned(i.labels, legion_id)]
            if owned:
                return owned[0]
            if by_name:
                named = [i for i in items if i.name == intent.name and not i.labels.get(LEGION_ID_LABEL)]
                return named[0] if named else None
            return None

        broker = self._broker
        provider = intent.provider
        if intent.kind == "server":
            return pick(await broker.read(provider, label, lambda a: a.list_servers(labels)), by_name=False)
        if intent.kind == "ssh_key":
            return pick(await broker.read(provider, label, lambda a: a.list_ssh_keys()), by_name=True)
        if intent.kind == "firewall":
            return pick(await broker.read(provider, label, lambda a: a.list_firewalls(labels)), by_name=False)
        if intent.kind == "floating_ip":
            ips = await broker.read(provider, label, lambda a: a.list_public_ips(labels))
            return pick([ip for ip in ips if ip.kind == "floating"], by_name=False)
        zones = await broker.read(provider, label, lambda a: a.list_zones())
        return pick(zones, by_name=True)

    # --------------------------------------------------------------------------- idempotent mutations

    async def converge(self, provider: str, label: str, fn: Callable[[ProviderAdapter], Awaitable[T]]) -> T:
        """Send an idempotent mutation; after an unknown outcome, send it again (same end state)."""
        for attempt in range(self.policy.idempotent_attempts):
            try:
                return await self._broker.mutate(provider, label, fn)
            except OutcomeUnknownError:
                if attempt + 1 >= self.policy.idempotent_attempts:
                    break
        raise ProviderAmbiguousError(
            provider,
            f"{label}: no answer after {self.policy.idempotent_attempts} attempts; run `legion refresh`",
        )

    async def delete(
        self, provider: str, label: str, fn: Callable[[ProviderAdapter], Awaitable[T]]
    ) -> T | None:
        """An idempotent delete: a resource already gone (also after an unknown outcome) is success.

        A resource between two states (a Scaleway server still ``starting``) refuses a delete with a
        temporary conflict that its next state lifts. The delete waits that out at the broker's poll
        pace, up to its poll timeout, instead of failing an operator's cleanup a moment too early.
        """
        pace = self._broker.policy.pace()
        while True:
            try:
                return await self.converge(provider, label, fn)
            except ProviderNotFoundError:
                return None
            except ProviderConflictError as exc:
                if not exc.temporary or pace.expired():
                    raise
            await pace.wait()

    async def delete_server(self, provider: str, server_id: str) -> None:
        """Delete a server and wait until it is gone; safe to repeat."""
        op: Operation | None = await self.delete(
            provider, f"delete server {server_id}", lambda a: a.delete_server(server_id)
        )
        if op is not None:
            await self._broker.wait([op])
        await self._wait_gone(provider, server_id)

    async def delete_public_ip(self, provider: str, kind: PublicIpKind, ip_id: str) -> None:
        """Delete a floating or primary IP; safe to repeat (the provider deletes it at once)."""
        await self.delete(provider, f"delete {kind} IP {ip_id}", lambda a: a.delete_public_ip(kind, ip_id))

    async def _wait_gone(self, provider: str, server_id: str) -> None:
        pace = self._broker.policy.pace()
        while True:
            try:
                await self._broker.read(
                    provider, f"get server {server_id}", lambda a: a.get_server(server_id)
                )
            except ProviderNotFoundError:
                return
            if pace.expired():
                raise ProviderAmbiguousError(
                    provider, f"server {server_id} still exists after its delete; check the provider console"
                )
            await pace.wait()
