"""Billing frames on any engine: the DataFrames of the billing rows, in process or over the daemon.

The engine answers billing with JSON rows (:mod:`legion_nb.engine.billing.methods`); these methods
turn the rows of whichever engine serves them (the engine itself, or a daemon client) into the
analyst's frames with :func:`~legion_nb.engine.billing.frames.billing_frame`, so a frame made from a
daemon's reply equals the one made in process. This module stays light (no pandas, SQLite or
provider code until a frame is asked for): the daemon clients import it on the warm CLI path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pandas loads only when a frame is asked for
    import pandas as pd

__all__ = ["BillingFrames", "BillingRows"]


class BillingRows(Protocol):
    """What the billing frames read: any engine's billing rows (in process or over the daemon)."""

    async def billing_ledger(
        self, month: str | None = None, by: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]: ...

    async def billing_reconciliation(
        self, month: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]: ...

    async def billing_forecast(self, collect: bool = True) -> list[dict[str, Any]]: ...

    async def billing_daily(self, month: str | None = None, collect: bool = True) -> list[dict[str, Any]]: ...


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    from legion_nb.engine.billing.frames import billing_frame  # noqa: PLC0415 - off the warm CLI path

    return billing_frame(rows)


class BillingFrames:
    """``billing_*_frame``: a UTC ``DatetimeIndex`` named ``start``, money as exact ``Decimal``."""

    async def billing_frame(
        self: BillingRows, month: str | None = None, by: str | None = None, collect: bool = True
    ) -> pd.DataFrame:
        """The ledger rows of ``month`` (or their totals ``by`` provider, cluster, resource or day)."""
        return _frame(await self.billing_ledger(month=month, by=by, collect=collect))

    async def billing_reconciliation_frame(
        self: BillingRows, month: str | None = None, collect: bool = True
    ) -> pd.DataFrame:
        """Estimate against the provider's figure per resource, orphans flagged."""
        return _frame(await self.billing_reconciliation(month=month, collect=collect))

    async def billing_forecast_frame(self: BillingRows, collect: bool = True) -> pd.DataFrame:
        """This month's end per provider and currency."""
        return _frame(await self.billing_forecast(collect=collect))

    async def billing_daily_frame(
        self: BillingRows, month: str | None = None, collect: bool = True
    ) -> pd.DataFrame:
        """Estimated cost per provider and day, anomalies flagged."""
        return _frame(await self.billing_daily(month=month, collect=collect))
