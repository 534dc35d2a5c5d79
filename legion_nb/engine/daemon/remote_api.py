"""The engine API over the daemon wire, for both daemon clients.

:class:`RemoteAPI` implements every method of :class:`~legion_nb.engine.surface.EngineAPI` by sending
its name and arguments and decoding the JSON reply into the method's declared return type
(:func:`~legion_nb.engine.surface.result_type`, :func:`~legion_nb.engine.typed_json.from_jsonable`), so
``await remote.plan_show()`` returns the same ``Scheme`` an in-process engine does. A subclass
supplies only the transport: :meth:`RemoteAPI._send` (asyncio for notebooks and streams, a
blocking socket for one-shot CLI commands) and ``subscribe``.

Import-light on purpose (``typing``, the API module and the JSON views): a warm CLI command loads
a record class only when its result is one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from legion_nb.engine.billing.frame_methods import BillingFrames
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
from legion_nb.engine.surface import EngineAPI, result_type
from legion_nb.engine.view_frames import FrameMethods

if TYPE_CHECKING:
    import pandas as pd

    from legion_nb.engine.diff import Diff
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

__all__ = ["RemoteAPI"]


class RemoteAPI(FrameMethods, BillingFrames, EngineAPI):
    """Every engine API method as one daemon ``call`` whose result is decoded from its declared type
    (a DataFrame from its wire form); the view frames of :class:`FrameMethods` and the billing frames
    of :class:`BillingFrames` on top."""

    async def _send(self, name: str, args: dict[str, Any]) -> Any:
        """One ``call`` request; the reply's result as JSON (or its error raised)."""
        raise NotImplementedError

    async def call(self, name: str, /, **args: Any) -> Any:
        """Call the engine method ``name`` with JSON arguments; the result as the daemon sent it.

        The typed methods are the API; this is the wire underneath, for tools and tests that speak
        to a daemon serving some other engine. Errors arrive as the same ``LegionError`` types.
        """
        return await self._send(name, args)

    async def _typed(self, name: str, args: dict[str, Any]) -> Any:
        from legion_nb.engine.typed_json import from_jsonable  # noqa: PLC0415 - first decode only

        return from_jsonable(await self._send(name, args), result_type(name), where=f"{name} result")

    # -- lifecycle ---------------------------------------------------------------------------

    async def bootstrap(self, password: str) -> AuthResult:
        result: AuthResult = await self._typed("bootstrap", {"password": password})
        return result

    async def unlock(self, password: str) -> AuthResult:
        result: AuthResult = await self._typed("unlock", {"password": password})
        return result

    async def logout(self) -> AuthResult:
        result: AuthResult = await self._typed("logout", {})
        return result

    async def change_password(self, old: str, new: str) -> AuthResult:
        result: AuthResult = await self._typed("change_password", {"old": old, "new": new})
        return result

    # -- reading -----------------------------------------------------------------------------

    async def status(self) -> StatusReport:
        result: StatusReport = await self._typed("status", {})
        return result

    async def plan_show(self) -> Scheme:
        result: Scheme = await self._typed("plan_show", {})
        return result

    async def diff(self) -> Diff:
        result: Diff = await self._typed("diff", {})
        return result

    async def credentials_show(self) -> list[CredentialFacts]:
        result: list[CredentialFacts] = await self._typed("credentials_show", {})
        return result

    async def snapshot(self) -> AppSnapshot:
        result: AppSnapshot = await self._typed("snapshot", {})
        return result

    async def activity(self) -> ActivityView:
        result: ActivityView = await self._typed("activity", {})
        return result

    async def nbde_status(self) -> list[ClusterNbde]:
        result: list[ClusterNbde] = await self._typed("nbde_status", {})
        return result

    async def nbde_reconcile(self) -> list[ClusterNbde]:
        result: list[ClusterNbde] = await self._typed("nbde_reconcile", {})
        return result

    async def stream_start(self, satellite: str, name: str, endpoint: str) -> StreamView:
        args = {"satellite": satellite, "name": name, "endpoint": endpoint}
        result: StreamView = await self._typed("stream_start", args)
        return result

    async def stream_stop(self, name: str) -> StreamView:
        result: StreamView = await self._typed("stream_stop", {"name": name})
        return result

    async def stream_list(self, probe: bool = False) -> list[StreamView]:
        result: list[StreamView] = await self._typed("stream_list", {"probe": probe})
        return result

    async def repairs_plan(self) -> list[RepairView]:
        result: list[RepairView] = await self._typed("repairs_plan", {})
        return result

    async def repairs_run(self) -> list[RepairView]:
        result: list[RepairView] = await self._typed("repairs_run", {})
        return result

    async def catalog(self, provider: str, live: bool = True) -> CatalogView:
        result: CatalogView = await self._typed("catalog", {"provider": provider, "live": live})
        return result

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
    ) -> PlannedServer:
        args = {
            "name": name,
            "provider": provider,
            "server_type": server_type,
            "location": location,
            "image": image,
            "cluster": cluster,
            "role": role,
        }
        result: PlannedServer = await self._typed("plan_upsert_server", args)
        return result

    async def plan_remove_server(self, name: str) -> Removed:
        result: Removed = await self._typed("plan_remove_server", {"name": name})
        return result

    async def plan_upsert_domain(self, name: str, provider: str) -> PlannedDomain:
        result: PlannedDomain = await self._typed("plan_upsert_domain", {"name": name, "provider": provider})
        return result

    async def plan_remove_domain(self, name: str) -> Removed:
        result: Removed = await self._typed("plan_remove_domain", {"name": name})
        return result

    async def plan_upsert_dns_zone(self, zone: str, provider: str) -> PlannedDnsZone:
        args = {"zone": zone, "provider": provider}
        result: PlannedDnsZone = await self._typed("plan_upsert_dns_zone", args)
        return result

    async def plan_remove_dns_zone(self, zone: str) -> Removed:
        result: Removed = await self._typed("plan_remove_dns_zone", {"zone": zone})
        return result

    async def plan_upsert_dns_host(self, host: str, zone: str, servers: Sequence[str]) -> PlannedDnsHost:
        args = {"host": host, "zone": zone, "servers": list(servers)}
        result: PlannedDnsHost = await self._typed("plan_upsert_dns_host", args)
        return result

    async def plan_remove_dns_host(self, host: str, zone: str) -> Removed:
        result: Removed = await self._typed("plan_remove_dns_host", {"host": host, "zone": zone})
        return result

    async def plan_upsert_firewall(
        self,
        name: str,
        provider: str,
        rules: Sequence[str | Mapping[str, Any]] = (),
        servers: Sequence[str] = (),
    ) -> PlannedFirewall:
        args = {"name": name, "provider": provider, "rules": list(rules), "servers": list(servers)}
        result: PlannedFirewall = await self._typed("plan_upsert_firewall", args)
        return result

    async def plan_remove_firewall(self, name: str) -> Removed:
        result: Removed = await self._typed("plan_remove_firewall", {"name": name})
        return result

    async def plan_set_operator_cidrs(self, cidrs: list[str]) -> PlannedAccess:
        result: PlannedAccess = await self._typed("plan_set_operator_cidrs", {"cidrs": list(cidrs)})
        return result

    async def plan_clear_operator_cidrs(self) -> PlannedAccess:
        result: PlannedAccess = await self._typed("plan_clear_operator_cidrs", {})
        return result

    async def credentials_set(
        self, provider: str, secrets: Mapping[str, Any], endpoint: str | None = None
    ) -> CredentialFacts:
        args = {"provider": provider, "secrets": dict(secrets), "endpoint": endpoint}
        result: CredentialFacts = await self._typed("credentials_set", args)
        return result

    async def credentials_delete(self, provider: str) -> Removed:
        result: Removed = await self._typed("credentials_delete", {"provider": provider})
        return result

    # -- operations --------------------------------------------------------------------------

    async def materialize(self, yes: bool = True, settle_seconds: float | None = None) -> MaterializeReport:
        args = {"yes": yes, "settle_seconds": settle_seconds}
        result: MaterializeReport = await self._typed("materialize", args)
        return result

    async def refresh(self) -> RefreshResult:
        result: RefreshResult = await self._typed("refresh", {})
        return result

    async def server_reboot(self, name: str) -> ServerCommandResult:
        result: ServerCommandResult = await self._typed("server_reboot", {"name": name})
        return result

    async def server_reinstall(self, name: str) -> ServerCommandResult:
        result: ServerCommandResult = await self._typed("server_reinstall", {"name": name})
        return result

    async def server_delete(self, name: str) -> ServerCommandResult:
        result: ServerCommandResult = await self._typed("server_delete", {"name": name})
        return result

    async def node_reinstall(self, name: str) -> ServerCommandResult:
        result: ServerCommandResult = await self._typed("node_reinstall", {"name": name})
        return result

    async def node_resume(self, name: str) -> ServerCommandResult:
        result: ServerCommandResult = await self._typed("node_resume", {"name": name})
        return result

    async def node_repin(self, name: str) -> ServerCommandResult:
        result: ServerCommandResult = await self._typed("node_repin", {"name": name})
        return result

    async def orphan_delete(self, provider: str, resource: str) -> ServerCommandResult:
        args = {"provider": provider, "resource": resource}
        result: ServerCommandResult = await self._typed("orphan_delete", args)
        return result

    # -- billing -----------------------------------------------------------------------------

    async def billing_collect(self, days: int | None = None) -> dict[str, Any]:
        """``days`` None: the engine's default window."""
        args = {} if days is None else {"days": days}
        result: dict[str, Any] = await self._typed("billing_collect", args)
        return result

    async def billing_ledger(
        self, month: str | None = None, by: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]:
        args = {"month": month, "by": by, "collect": collect}
        result: list[dict[str, Any]] = await self._typed("billing_ledger", args)
        return result

    async def billing_reconciliation(
        self, month: str | None = None, collect: bool = True
    ) -> list[dict[str, Any]]:
        args = {"month": month, "collect": collect}
        result: list[dict[str, Any]] = await self._typed("billing_reconciliation", args)
        return result

    async def billing_forecast(self, collect: bool = True) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._typed("billing_forecast", {"collect": collect})
        return result

    async def billing_daily(self, month: str | None = None, collect: bool = True) -> list[dict[str, Any]]:
        args = {"month": month, "collect": collect}
        result: list[dict[str, Any]] = await self._typed("billing_daily", args)
        return result

    # -- telemetry and logs --------------------------------------------------------------------

    async def telemetry(
        self,
        *,
        nodes: str | Sequence[str] | None = None,
        metrics: str | Sequence[str] | None = None,
        since: str | float | dt.timedelta | None = None,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        tier: str = "raw",
    ) -> pd.DataFrame:
        args = {"nodes": nodes, "metrics": metrics, "since": since, "start": start, "end": end, "tier": tier}
        return await self._frame("telemetry", args)

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
    ) -> pd.DataFrame:
        args = {
            "text": text,
            "nodes": nodes,
            "sources": sources,
            "level": level,
            "since": since,
            "start": start,
            "end": end,
            "limit": limit,
            "after_id": after_id,
        }
        return await self._frame("logs", args)

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
    ) -> dict[str, Any]:
        """The file is written on the daemon's side; a relative ``path`` is made absolute here."""
        args = {
            "path": os.path.abspath(os.path.expanduser(path)),  # noqa: ASYNC240 - no filesystem access
            "format": format,
            "nodes": nodes,
            "metrics": metrics,
            "since": since,
            "start": start,
            "end": end,
            "tier": tier,
        }
        result: dict[str, Any] = await self._send("telemetry_export", _durations(args))
        return result

    async def _frame(self, name: str, args: dict[str, Any]) -> pd.DataFrame:
        from legion_nb.engine.frame_wire import frame_from_wire  # noqa: PLC0415 - pandas on demand

        return frame_from_wire(await self._send(name, _durations(args)))

    # -- runbooks ----------------------------------------------------------------------------

    async def runbook_list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._typed("runbook_list", {})
        return result

    async def run_runbook(
        self, name: str, parameters: Mapping[str, Any] | None = None, dry_run: bool = False
    ) -> RunRecord:
        args = {"name": name, "parameters": dict(parameters or {}), "dry_run": dry_run}
        result: RunRecord = await self._typed("run_runbook", args)
        return result

    async def runbook_runs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._typed("runbook_runs", {})
        return result

    async def runbook_show(self, run_id: str) -> RunRecord:
        result: RunRecord = await self._typed("runbook_show", {"run_id": run_id})
        return result

    async def runbook_verify(self, run_id: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._typed("runbook_verify", {"run_id": run_id})
        return result

    async def runbook_live(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._typed("runbook_live", {})
        return result

    # -- observation -------------------------------------------------------------------------

    async def observe_once(self, only: list[str] | None = None) -> dict[str, ConcernRun]:
        result: dict[str, ConcernRun] = await self._typed("observe_once", {"only": only})
        return result

    async def observation(self) -> ObservationView:
        result: ObservationView = await self._typed("observation", {})
        return result

    async def node_host_key(self, name: str) -> NodeHostKey:
        result: NodeHostKey = await self._typed("node_host_key", {"name": name})
        return result

    # -- terminals ---------------------------------------------------------------------------

    async def terminal_open(
        self, name: str, cols: int = 80, rows: int = 24, pty: bool = True
    ) -> TerminalFacts:
        args = {"name": name, "cols": cols, "rows": rows, "pty": pty}
        result: TerminalFacts = await self._typed("terminal_open", args)
        return result

    async def terminal_write(self, id: str, data: str, eof: bool = False) -> TerminalWritten:
        result: TerminalWritten = await self._typed("terminal_write", {"id": id, "data": data, "eof": eof})
        return result

    async def terminal_read(self, id: str, wait: float = 0.0) -> TerminalOutputView:
        result: TerminalOutputView = await self._typed("terminal_read", {"id": id, "wait": wait})
        return result

    async def terminal_resize(self, id: str, cols: int, rows: int) -> TerminalFacts:
        result: TerminalFacts = await self._typed("terminal_resize", {"id": id, "cols": cols, "rows": rows})
        return result

    async def terminal_close(self, id: str) -> TerminalClosed:
        result: TerminalClosed = await self._typed("terminal_close", {"id": id})
        return result

    async def terminal_list(self) -> list[TerminalFacts]:
        result: list[TerminalFacts] = await self._typed("terminal_list", {})
        return result


def _durations(args: dict[str, Any]) -> dict[str, Any]:
    """A ``timedelta`` argument as its seconds (JSON has no durations); None arguments left out,
    so the engine's defaults apply."""
    return {
        k: v.total_seconds() if isinstance(v, dt.timedelta) else v for k, v in args.items() if v is not None
    }
