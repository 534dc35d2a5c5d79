"""The engine's billing surface: wire methods returning JSON rows, and frame methods over them.

The wire methods (marked :func:`~legion_nb.engine.api.engine_api`) answer the CLI, the daemon and
panels with the row shape of :mod:`legion_nb.engine.billing.frames`; the ``*_frame`` methods are
the analyst's API (:class:`~legion_nb.engine.billing.frame_methods.BillingFrames`, shared with the
daemon clients) and build their DataFrame from those very rows, so a frame made from rows that
crossed the daemon equals the one built in process. Each wire method collects first when
asked (``collect``, the default), so an answer reflects the providers now.
"""

from __future__ import annotations

from typing import Any

from legion_nb.engine.api import engine_api
from legion_nb.engine.billing.frame_methods import BillingFrames
from legion_nb.engine.billing.frames import (
    Grouping,
    day_rows,
    forecast_rows,
    ledger_rows,
    parse_month,
    reconciliation_rows,
    summary_rows,
)
from legion_nb.engine.billing.service import DEFAULT_WINDOW_DAYS, BillingService
from legion_nb.errors import UsageError

__all__ = ["BillingMethods"]


class BillingMethods(BillingFrames):
    """Mixed into the engine, which provides ``_billing``: the live session's billing service
    (:class:`~legion_nb.errors.LockedError` when the state is locked)."""

    def _billing(self) -> BillingService:
        raise NotImplementedError

    async def _collected(self, collect: bool) -> BillingService:
        billing = self._billing()
        if collect:
            await billing.collect()
        return billing

    @engine_api
    async def billing_collect(self, days: int | None = None) -> dict[str, Any]:
        """One collection pass over every provider with credentials, ``days`` back (from the first
        of that month; None: :data:`DEFAULT_WINDOW_DAYS`); returns rows written and errors per
        provider."""
        if days is None:
            days = DEFAULT_WINDOW_DAYS
        if not 1 <= days <= 3660:
            raise UsageError(f"billing window {days} days is not valid; use 1 to 3660 days")
        report = await self._billing().collect(days)
        return {
            "since": report.since.isoformat(),
            "until": report.until.isoformat(),
            "rows": dict(report.rows),
            "errors": dict(report.errors),
        }

    @engine_api
    async def billing_ledger(
        self, month: str | None = None, by: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]:
        """The ledger rows of ``month`` (YYYY-MM, default this month), or their totals ``by``
        provider, cluster, resource or day. A bad month or grouping is refused before any provider
        is asked."""
        start = parse_month(month)
        grouping = None if by is None else _grouping(by)
        service = await self._collected(collect)
        rows = await service.rows(start)
        if grouping is None:
            return ledger_rows(rows)
        return summary_rows(rows, grouping)

    @engine_api
    async def billing_reconciliation(
        self, month: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]:
        """Estimate vs the provider's figure per resource for ``month``, orphans flagged."""
        start = parse_month(month)
        service = await self._collected(collect)
        return reconciliation_rows(await service.reconciliation(start))

    @engine_api
    async def billing_forecast(self, collect: bool = True) -> list[dict[str, Any]]:
        """This month's end per provider and currency: month to date plus what runs until then."""
        service = await self._collected(collect)
        return forecast_rows(await service.forecast())

    @engine_api
    async def billing_daily(self, month: str | None = None, collect: bool = True) -> list[dict[str, Any]]:
        """Estimated cost per provider and day of ``month``, each day flagged when far above the
        mean of the week before it."""
        start = parse_month(month)
        service = await self._collected(collect)
        return day_rows(await service.daily(start))


def _grouping(by: str) -> Grouping:
    for name in ("provider", "cluster", "resource", "day"):
        if by == name:
            return name
    raise UsageError(f"cannot summarize billing by {by!r}; use provider, cluster, resource or day")
