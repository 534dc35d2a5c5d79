"""The engine's public surface: one declared, typed API for every way of reaching an engine.

:class:`EngineAPI` is what a notebook, a widget or the CLI may call, with typed results.
:class:`~legion_nb.engine.runtime.Engine` implements it in process; the daemon clients
(:class:`~legion_nb.engine.daemon.client.RemoteEngine` for notebooks and streams, the blocking
client of one-shot CLI commands) implement it over the daemon wire and decode each result from the
method's declared return type (:func:`result_type`), so both return the same values.

Which engine methods a daemon token holder may call is the list of methods marked with
:func:`~legion_nb.engine.api.engine_api`; a test pins that they are exactly the methods declared
here, bar ``subscribe``, which the daemon offers as its own method. Public methods are ``async``
and take keyword arguments of JSON types.

This module stays apart from the marker (which wraps methods with the redaction layer) so that it
imports only :mod:`typing` and the JSON views: the warm CLI path resolves result types with it.

Results are either the JSON-shaped views of :mod:`legion_nb.engine.results` (``TypedDict``) or
frozen records (the plan, the diff, the reports of operations). This module imports the views at
run time and the records only for type checking: resolving a view's type never loads the records,
which keeps a warm CLI command light; a record's module is imported at its first decode.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from legion_nb.engine.results import (
    ActivityView,
    AppSnapshot,
    AuthResult,
    CatalogView,
    ClusterNbde,
    ConcernRun,
    CredentialFacts,
    NodeHostKey,
    ObservationView,
    Removed,
    RepairView,
    StatusReport,
    StreamView,
    TerminalClosed,
    TerminalFacts,
    TerminalOutputView,
    TerminalWritten,
)
from legion_nb.errors import UsageError

if TYPE_CHECKING:
    import datetime as dt
    import os

    import pandas as pd

    from legion_nb.engine.diff import Diff
    from legion_nb.engine.events import Event
    from legion_nb.engine.reports import MaterializeReport, RefreshResult, ServerCommandResult
    from legion_nb.engine.runbooks.records import RunRecord
    from legion_nb.engine.state.model import (
        PlannedAccess,
        PlannedDnsHost,
        PlannedDnsZone,
        PlannedDomain,
        PlannedFirewall,
        PlannedServer,
        Scheme,
    )

__all__ = ["EngineAPI", "api_methods", "result_type"]


class EngineAPI(Protocol):
    """The engine's public surface, the same in process and through the daemon."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def bootstrap(self, password: str) -> AuthResult: ...

    async def unlock(self, password: str) -> AuthResult: ...

    async def logout(self) -> AuthResult: ...

    async def change_password(self, old: str, new: str) -> AuthResult: ...

    # -- reading -----------------------------------------------------------------------------

    async def status(self) -> StatusReport: ...

    async def plan_show(self) -> Scheme: ...

    async def diff(self) -> Diff: ...

    async def credentials_show(self) -> list[CredentialFacts]: ...

    async def snapshot(self) -> AppSnapshot: ...

    async def activity(self) -> ActivityView: ...

    async def nbde_status(self) -> list[ClusterNbde]: ...

    async def nbde_reconcile(self) -> list[ClusterNbde]: ...

    async def stream_start(self, satellite: str, name: str, endpoint: str) -> StreamView: ...

    async def stream_stop(self, name: str) -> StreamView: ...

    async def stream_list(self, probe: bool = False) -> list[StreamView]: ...

    async def repairs_plan(self) -> list[RepairView]: ...

    async def repairs_run(self) -> list[RepairView]: ...

    async def catalog(self, provider: str, live: bool = True) -> CatalogView: ...

    # -- changing the plan -------------------------------------------------------------------

    async def plan_upsert_server(
        self,
        *,
        name: str,
        provider: str,
        server_type: str | None = None,
        location: str | None = None,
        image: str | None = None,
        cluster: str | None = None,
        role: str = "cluster",
    ) -> PlannedServer: ...

    async def plan_remove_server(self, name: str) -> Removed: ...

    async def plan_upsert_domain(self, name: str, provider: str) -> PlannedDomain: ...

    async def plan_remove_domain(self, name: str) -> Removed: ...

    async def plan_upsert_dns_zone(self, zone: str, provider: str) -> PlannedDnsZone: ...

    async def plan_remove_dns_zone(self, zone: str) -> Removed: ...

    async def plan_upsert_dns_host(self, host: str, zone: str, servers: Sequence[str]) -> PlannedDnsHost: ...

    async def plan_remove_dns_host(self, host: str, zone: str) -> Removed: ...

    async def plan_upsert_firewall(
        self,
        name: str,
        provider: str,
        rules: Sequence[str | Mapping[str, Any]] = (),
        servers: Sequence[str] = (),
    ) -> PlannedFirewall: ...

    async def plan_remove_firewall(self, name: str) -> Removed: ...

    async def plan_set_operator_cidrs(self, cidrs: list[str]) -> PlannedAccess: ...

    async def plan_clear_operator_cidrs(self) -> PlannedAccess: ...

    async def credentials_set(
        self, provider: str, secrets: Mapping[str, Any], endpoint: str | None = None
    ) -> CredentialFacts: ...

    async def credentials_delete(self, provider: str) -> Removed: ...

    # -- operations --------------------------------------------------------------------------

    async def materialize(
        self, yes: bool = True, settle_seconds: float | None = None
    ) -> MaterializeReport: ...

    async def refresh(self) -> RefreshResult: ...

    async def server_reboot(self, name: str) -> ServerCommandResult: ...

    async def server_reinstall(self, name: str) -> ServerCommandResult: ...

    async def server_delete(self, name: str) -> ServerCommandResult: ...

    async def node_reinstall(self, name: str) -> ServerCommandResult: ...

    async def node_resume(self, name: str) -> ServerCommandResult: ...

    async def node_repin(self, name: str) -> ServerCommandResult: ...

    async def node_host_key(self, name: str) -> NodeHostKey: ...

    async def orphan_delete(self, provider: str, resource: str) -> ServerCommandResult: ...

    # -- billing (rows of JSON types; see legion_nb.engine.billing.frames) --------------------

    async def billing_collect(self, days: int | None = None) -> dict[str, Any]: ...

    async def billing_ledger(
        self, month: str | None = None, by: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]: ...

    async def billing_reconciliation(
        self, month: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]: ...

    async def billing_forecast(self, collect: bool = True) -> list[dict[str, Any]]: ...

    async def billing_daily(self, month: str | None = None, collect: bool = True) -> list[dict[str, Any]]: ...

    # -- telemetry and logs (DataFrames; see legion_nb.engine.observe.methods) ----------------

    async def telemetry(
        self,
        *,
        nodes: str | Sequence[str] | None = None,
        metrics: str | Sequence[str] | None = None,
        since: str | float | dt.timedelta | None = None,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        tier: str = "raw",
    ) -> pd.DataFrame: ...

    async def logs(
        self,
        *,
        text: str | None = None,
        nodes: str | Sequence[str] | None = None,
        sources: str | Sequence[str] | None = None,
        level: str | int | None = None,
        since: str | float | dt.timedelta | None = None,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        limit: int = 200,
        after_id: int | None = None,
    ) -> pd.DataFrame: ...

    async def telemetry_export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "parquet",
        nodes: str | Sequence[str] | None = None,
        metrics: str | Sequence[str] | None = None,
        since: str | float | dt.timedelta | None = None,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        tier: str = "raw",
    ) -> dict[str, Any]: ...

    # -- runbooks (records, and rows of JSON types; see legion_nb.engine.runbooks) -------------

    async def runbook_list(self) -> list[dict[str, Any]]: ...

    async def run_runbook(
        self, name: str, parameters: Mapping[str, Any] | None = None, dry_run: bool = False
    ) -> RunRecord: ...

    async def runbook_runs(self) -> list[dict[str, Any]]: ...

    async def runbook_show(self, run_id: str) -> RunRecord: ...

    async def runbook_verify(self, run_id: str | None = None) -> dict[str, Any]: ...

    async def runbook_live(self) -> list[dict[str, Any]]: ...

    # -- observation -------------------------------------------------------------------------

    async def observe_once(self, only: list[str] | None = None) -> dict[str, ConcernRun]: ...

    async def observation(self) -> ObservationView: ...

    # -- terminals ---------------------------------------------------------------------------

    async def terminal_open(
        self, name: str, cols: int = 80, rows: int = 24, pty: bool = True
    ) -> TerminalFacts: ...

    async def terminal_write(self, id: str, data: str, eof: bool = False) -> TerminalWritten: ...

    async def terminal_read(self, id: str, wait: float = 0.0) -> TerminalOutputView: ...

    async def terminal_resize(self, id: str, cols: int, rows: int) -> TerminalFacts: ...

    async def terminal_close(self, id: str) -> TerminalClosed: ...

    async def terminal_list(self) -> list[TerminalFacts]: ...

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = ...) -> AsyncGenerator[Event, None]:
        """Coalesced "snapshot"/"activity" events; a new subscriber first gets the latest snapshot."""
        ...


def api_methods() -> frozenset[str]:
    """The callable methods :class:`EngineAPI` declares (``subscribe`` is the daemon's own method)."""
    return frozenset(
        name
        for name, value in vars(EngineAPI).items()
        if not name.startswith("_") and callable(value) and name != "subscribe"
    )


_result_types: dict[str, Any] = {}


def result_type(name: str) -> Any:
    """The declared return type of the API method ``name``, for decoding its JSON result.

    A view's type resolves from this module's names; a record's module is imported on the first
    call that needs it (the record types are then in scope for every later resolution).
    """
    found = _result_types.get(name)
    if found is not None:
        return found
    if name not in api_methods():
        raise UsageError(f"{name!r} is not an engine API method")
    method = getattr(EngineAPI, name)
    try:
        hints = typing.get_type_hints(method)
    except NameError:  # a record result: bring the record types into scope
        hints = typing.get_type_hints(method, globalns={**globals(), **_record_types()})
    found = _result_types[name] = hints["return"]
    return found


def _record_types() -> dict[str, Any]:
    from legion_nb.engine import diff, reports  # noqa: PLC0415 - records load only when decoded
    from legion_nb.engine.runbooks import records  # noqa: PLC0415
    from legion_nb.engine.state import model  # noqa: PLC0415

    return {
        "Diff": diff.Diff,
        "MaterializeReport": reports.MaterializeReport,
        "RefreshResult": reports.RefreshResult,
        "ServerCommandResult": reports.ServerCommandResult,
        "RunRecord": records.RunRecord,
        **{
            name: getattr(model, name)
            for name in (
                "PlannedAccess",
                "PlannedDnsHost",
                "PlannedDnsZone",
                "PlannedDomain",
                "PlannedFirewall",
                "PlannedServer",
                "Scheme",
            )
        },
    }
