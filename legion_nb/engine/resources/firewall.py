"""The firewall actor: one per firewall set (a derived cluster set or one the operator planned).

The desired set comes from :func:`legion_nb.engine.cluster.firewall_plan.build_cluster_firewall_plan`
of the current state (built once per state and shared through ``ActorContext.firewall_plans``), so
the actor always converges on the latest full set: rules (4413 only from the
cluster peers' addresses) and the servers it is applied to. What was last applied is the tracked
firewall; a wave whose desired set equals it makes no provider call. While a server of the cluster
is being created without a known address yet, or is being deleted, the set waits with a visible
reason; a server whose address is already tracked does not hold it up (the set is applied while
that server still provisions, and reapplied if its address changes later).

**Only a wave changes the firewall at the provider.** Inside a wave the set follows the addresses
the wave's own servers report, after it was applied (a server created in the wave may learn its
address later), so the wave ends with the full set. Outside one (a ``legion status``, ``legion
snapshot`` or ``legion refresh``, a notebook's unlock, a daemon) tracked addresses still move: a
settle by lookup or a server left provisioning tracks an address when a session opens, a refresh
adopts a server, another process's materialize lands its records in this session's state. The set
then rests ``applied`` and out of date, with ``legion materialize`` as its waiting reason, and the
next wave applies it. Why not follow at once, as DNS zones do: the firewall is the nodes' access
boundary, and who may reach them is the operator's decision, taken when they apply; a read-only
command that silently rewrites a security group would also race the wave of another process
that owns this change. A repair of a wave's temporary failure still finishes that wave's apply.

A provider without the firewall capability (OVH) gets no provider call at all: the set is tracked
with an empty provider id as a *node-level* plan, for deployment to enforce on the nodes,
and the snapshot says so (``enforcement=node``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from legion_nb.engine.cluster.firewall_plan import FirewallSetPlan, planned_rule
from legion_nb.engine.resources.converging import ConvergingActor
from legion_nb.engine.state.edits import with_tracked, without_observed, without_pending
from legion_nb.engine.state.model import LegionState, PlannedRule, Provider, TrackedFirewall
from legion_nb.errors import ProviderConflictError
from legion_nb.providers.contract import ProviderAdapter
from legion_nb.providers.records import Firewall, Operation

__all__ = ["NODE_LEVEL_ID", "FirewallActor"]

NODE_LEVEL_ID = ""
"""The provider id a node-level firewall plan is tracked under (no provider resource exists)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Desired:
    rules: tuple[PlannedRule, ...]
    servers: tuple[str, ...]
    server_ids: tuple[str, ...]


class FirewallActor(ConvergingActor):
    """``key.identity`` is the firewall set's name (``legion-<cluster>-<provider>`` when derived)."""

    _held_by: str | None = None
    """Why a deletion waits: the provider still refuses it as in use (``_detach_and_delete``)."""

    def plan(self) -> FirewallSetPlan | None:
        return self.context.firewall_plans.plans(self._state).get(self.name)

    def tracked(self) -> TrackedFirewall | None:
        return self._state.tracked.firewalls.get(self.name)

    def desired(self) -> _Desired | None:
        plan = self.plan()
        if plan is None:
            return None
        servers = self._state.tracked.servers
        applied = tuple(
            name for name in plan.servers if name in servers and servers[name].provider == plan.provider
        )
        return _Desired(
            rules=tuple(planned_rule(r) for r in plan.rules),
            servers=applied,
            server_ids=tuple(servers[name].provider_id for name in applied),
        )

    def _related_servers(self) -> set[str]:
        """Servers whose changes move this set: planned members, cluster peers, current bindings."""
        names: set[str] = set()
        plan = self.plan()
        tracked = self.tracked()
        if plan is not None:
            names.update(plan.servers)
            if plan.cluster is not None:
                names.update(self.context.firewall_plans.cluster_members(self._state, plan.cluster))
        if tracked is not None:
            names.update(tracked.servers)
        return names

    # -- guards --------------------------------------------------------------------------------------

    def is_tracked(self) -> bool:
        return self.tracked() is not None

    def wanted(self) -> bool:
        return self.plan() is not None

    def _blocking(self) -> list[str]:
        """Busy related servers whose change would move the set: a planned one without a tracked
        address yet, or one on its way out (its binding must not race its deletion). A planned
        server already tracked with its address does not hold the set up: the firewall is applied
        while it is still provisioning, which overlaps the two provider waits."""
        scheme = self._state.scheme
        tracked = self._state.tracked.servers
        blocking = []
        for name in self.context.busy_servers(self._related_servers()):
            record = tracked.get(name)
            known = record is not None and bool(record.ipv4 or record.ipv6)
            if scheme.find_server(name) is None or not known:
                blocking.append(name)
        return blocking

    def must_wait(self) -> bool:
        return bool(self._blocking())

    def may_follow(self) -> bool:
        """Follow moved addresses only while a wave is at work (module notes); a node-level plan
        always follows, since recording it calls no provider."""
        return self.node_level() or self.context.wave_running()

    def _out_of_date(self) -> str | None:
        """What an applied set lacks of the desired one (module notes), or None when it is current."""
        tracked = self.tracked()
        desired = self.desired()
        if tracked is None or desired is None or "applied" not in self.active or not self.must_apply():
            return None
        moved = []
        if tracked.rules != desired.rules:
            moved.append("rules")
        if tuple(sorted(tracked.servers)) != tuple(sorted(desired.servers)):
            moved.append("servers")
        return " and ".join(moved) or "an unfinished create"

    def must_apply(self) -> bool:
        tracked = self.tracked()
        desired = self.desired()
        if tracked is None or desired is None:
            return False
        if self.has_intent("firewall", self.name):
            return True  # a stale create intent: settle it while applying
        return (tracked.rules, tuple(sorted(tracked.servers))) != (
            desired.rules,
            tuple(sorted(desired.servers)),
        )

    def node_level(self) -> bool:
        plan = self.plan()
        if plan is not None:
            return plan.node_level
        tracked = self.tracked()
        return tracked is not None and tracked.provider_id == NODE_LEVEL_ID

    # -- provider work -------------------------------------------------------------------------------

    async def on_invoke_creating(self) -> None:
        plan = self.plan()
        if plan is None:
            return
        if plan.node_level:
            await self._track(NODE_LEVEL_ID, None, rules=(), servers=())
            return
        self.require_provider()
        settled = await self.settle_intent("firewall", self.name)
        if settled is not None and isinstance(settled[0], Firewall):
            await self._track(settled[0].id, settled[1], rules=(), servers=settled[0].applied_to)
            return
        resilience = self.context.providers.resilience
        rules = plan.rules
        firewall, legion_id = await self.create_once(
            f"firewall {self.name}",
            lambda legion_id: resilience.create_firewall(self.provider, self.name, rules, legion_id),
        )
        await self._track(firewall.id, legion_id, rules=tuple(planned_rule(r) for r in rules), servers=())

    async def on_invoke_applying(self) -> None:
        tracked = self.tracked()
        desired = self.desired()
        plan = self.plan()
        if tracked is None or desired is None or plan is None:
            return
        if tracked.provider_id != NODE_LEVEL_ID:
            self.require_provider()
            firewall_id = tracked.provider_id
            if self.has_intent("firewall", self.name):
                await self.settle_stale_intent("firewall", self.name, firewall_id)
            resilience = self.context.providers.resilience
            operations: list[Operation] = []
            if tracked.rules != desired.rules:
                rules = plan.rules
                operations += await resilience.converge(
                    self.provider,
                    f"set rules of firewall {self.name}",
                    lambda a: a.set_firewall_rules(firewall_id, rules),
                )
            if tuple(sorted(tracked.servers)) != tuple(sorted(desired.servers)):
                ids = desired.server_ids
                operations += await resilience.converge(
                    self.provider, f"apply firewall {self.name}", lambda a: a.apply_firewall(firewall_id, ids)
                )
            await self.context.providers.broker.wait(operations)
        await self._record(desired.rules, desired.servers)

    async def on_invoke_deleting(self) -> None:
        tracked = self.tracked()
        if tracked is None:
            return
        if tracked.provider_id != NODE_LEVEL_ID:
            self.require_provider()
            await self._detach_and_delete(tracked.provider_id)
        name = self.name

        def drop(state: LegionState) -> tuple[LegionState, None]:
            record = state.tracked.firewalls.get(name)
            firewalls = {k: v for k, v in state.tracked.firewalls.items() if k != name}
            state = with_tracked(state, firewalls=firewalls)
            if record is not None and record.provider_id:
                state = without_observed(state, record.provider, "firewalls", record.provider_id)
            return state, None

        await self.context.state.mutate(drop, reason=f"deleted firewall {name}")

    async def _detach_and_delete(self, firewall_id: str) -> None:
        """Detach the set from everything the provider still applies it to, then delete it: both
        providers refuse to delete a set in use (Hetzner ``422 resource_in_use``, Scaleway ``409``).

        A teardown deletes the cluster's servers at the same time. A server whose deletion
        completes between the detach's read and its write makes that write fail as not found
        (Hetzner's ``remove_from_resources`` names it, Scaleway's PATCH finds no server), which
        leaves the other servers attached and the delete refused as in use. The refusal is then
        a wait, not a failure: read what is applied again and detach it, at the broker's polling
        cadence and within its poll timeout, with the servers still holding the set as the
        visible waiting reason."""
        pace = self.context.providers.broker.policy.pace()
        try:
            while not await self._detached_and_deleted(firewall_id, last=False):
                if pace.expired():
                    await self._detached_and_deleted(firewall_id, last=True)
                    return
                self._held_by = self._in_use_reason()
                self.touch()
                await pace.wait()
        finally:
            if self._held_by is not None:
                self._held_by = None
                self.touch()

    async def _detached_and_deleted(self, firewall_id: str, *, last: bool) -> bool:
        """One detach and delete; False when the provider still refuses the delete as in use,
        unless it is the ``last`` attempt (then the refusal is the error the operator sees)."""
        resilience = self.context.providers.resilience
        released = await resilience.delete(
            self.provider, f"release firewall {self.name}", lambda a: _release(a, firewall_id)
        )
        await self.context.providers.broker.wait(released or [])
        try:
            await resilience.delete(
                self.provider, f"delete firewall {self.name}", lambda a: a.delete_firewall(firewall_id)
            )
        except ProviderConflictError:
            if last:
                raise
            return False
        return True

    def _in_use_reason(self) -> str:
        tracked = self.tracked()
        leaving = sorted(self.context.busy_servers(set(tracked.servers if tracked else ())))
        if leaving:
            return f"{', '.join(leaving)} to be deleted: the provider still holds the firewall in use"
        return "the provider to release it: still in use, detaching it again"

    # -- state writes --------------------------------------------------------------------------------

    async def _track(
        self,
        provider_id: str,
        legion_id: str | None,
        *,
        rules: tuple[PlannedRule, ...],
        servers: Sequence[str],
    ) -> None:
        name = self.name
        provider: Provider = self._provider_literal()
        ids_to_names = {s.provider_id: n for n, s in self._state.tracked.servers.items()}
        names = tuple(sorted(ids_to_names.get(i, i) for i in servers))

        def track(state: LegionState) -> tuple[LegionState, None]:
            record = TrackedFirewall(
                name=name, provider=provider, provider_id=provider_id, rules=rules, servers=names
            )
            if legion_id is not None:
                state = without_pending(state, legion_id)
            firewalls = {**state.tracked.firewalls, name: record}
            return with_tracked(state, firewalls=firewalls), None

        await self.context.state.mutate(track, reason=f"track firewall {name}")

    async def _record(self, rules: tuple[PlannedRule, ...], servers: tuple[str, ...]) -> None:
        name = self.name

        def write(state: LegionState) -> tuple[LegionState, None]:
            current = state.tracked.firewalls.get(name)
            if current is None:
                return state, None
            fresh = dataclasses.replace(current, rules=rules, servers=servers)
            firewalls = {**state.tracked.firewalls, name: fresh}
            return with_tracked(state, firewalls=firewalls), None

        await self.context.state.mutate(write, reason=f"applied firewall {name} to {len(servers)} servers")

    def _provider_literal(self) -> Provider:
        for record in (self._state.tracked.firewalls.get(self.name),):
            if record is not None:
                return record.provider
        for server in self._state.tracked.servers.values():
            if server.provider == self.provider:
                return server.provider
        for _cluster, planned in self._state.scheme.servers().values():
            if planned.provider == self.provider:
                return planned.provider
        planned_fw = self._state.scheme.firewalls.get(self.name)
        if planned_fw is not None:
            return planned_fw.provider
        raise ValueError(f"firewall {self.name}: provider {self.provider} is not in the state")

    # -- snapshot ------------------------------------------------------------------------------------

    def waiting(self) -> str | None:
        if self._held_by is not None:
            return self._held_by
        if not self.wanted():
            return None
        stale = self._out_of_date()
        if stale is not None:
            return f"legion materialize: {stale} out of date"
        if self.settled():
            return None
        blocking = self._blocking()
        if blocking:
            return f"waiting for endpoints of {', '.join(blocking)}"
        return None

    def facts(self) -> Mapping[str, str]:
        facts: dict[str, str] = {}
        tracked = self.tracked()
        plan = self.plan()
        if tracked is not None:
            if tracked.provider_id:
                facts["provider_id"] = tracked.provider_id
            facts["servers"] = ",".join(tracked.servers)
            facts["rules"] = str(len(tracked.rules))
        if plan is not None:
            if plan.cluster is not None:
                facts["cluster"] = plan.cluster
            peers = [r for r in plan.rules if r.port is not None and r.port.first == 4413]
            facts["sync_peers"] = ",".join(peers[0].sources) if peers else ""
        if self.node_level():
            facts["enforcement"] = "node"
        return facts


async def _release(adapter: ProviderAdapter, firewall_id: str) -> list[Operation]:
    return await adapter.apply_firewall(firewall_id, [])
