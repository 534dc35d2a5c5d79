"""The domain actor: reports a planned or tracked domain honestly.

Registering, renewing and delegating domains through the providers' domain APIs is not part of
legion-nb yet: none of the adapters speaks those APIs. The actor therefore never calls a provider.
It exists so that every planned domain has a row with a clear reason ("not managed through the
provider API") instead of silently looking converged, and so that the supervisor treats domains like
every other resource (one actor per entity, stopped at lock).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statemachine import State, StateChart

from legion_nb.engine.resources.actor import ResourceActor

__all__ = ["NOT_MANAGED", "DomainActor", "DomainChart"]

NOT_MANAGED = "registration is not managed through the provider API; manage it at the registrar"


class DomainChart(StateChart[Any]):
    class alive(State.Compound):  # state ids are the chart's vocabulary
        planned = State(initial=True)
        unmanaged = State()
        absent = State()

        sync = (
            planned.to(unmanaged, cond="wanted") | planned.to(absent) | unmanaged.to(absent, unless="wanted")
        )
        replan = absent.to(unmanaged, cond="wanted")

    stopped = State(final=True)
    stop = alive.to(stopped)


class DomainActor(ResourceActor):
    """``key.identity`` is the domain name."""

    chart_class = DomainChart

    def wanted(self) -> bool:
        return self.key.identity in self.context.state.state.scheme.domains

    def resting_configuration(self) -> tuple[str, ...]:
        """The chart has no ``restore`` transition: a domain rests where it starts."""
        return ("alive", "planned")

    async def sync(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        await self.send("replan")
        await self.send("sync")

    def lifecycle(self) -> str:
        active = self.active
        for name in ("unmanaged", "absent"):
            if name in active:
                return name
        return "planned"

    def settled(self) -> bool:
        return True

    def facts(self) -> Mapping[str, str]:
        tracked = self.context.state.state.tracked.domains.get(self.key.identity)
        facts = {"note": NOT_MANAGED}
        if tracked is not None:
            facts["provider_id"] = tracked.provider_id
            facts["status"] = tracked.status
        return facts
