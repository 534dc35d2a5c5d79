"""One notebook scenario, two ways of reaching an engine, the same typed results.

The scenario (plan, materialize on the sandbox, snapshot, diff, a terminal on the deployed node)
runs once against an in-process sandbox engine and once through ``legion_nb.connect()`` against a
daemon serving another sandbox engine of the same kind. Every result must have the same type and,
once what legitimately differs between two sandboxes is set aside (operation and terminal ids,
provider ids, addresses, ports, timestamps), the same value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from pathlib import Path
from typing import Any

import pytest

import legion_nb
from legion_nb.engine.cluster.firewall_plan import OPEN_WARNING
from legion_nb.engine.daemon.client import RemoteEngine
from legion_nb.engine.daemon.endpoint import endpoint_for
from legion_nb.engine.daemon.host import serve
from legion_nb.engine.diff import Diff
from legion_nb.engine.reports import FlaggedResource, MaterializeReport, PlanWarning
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state.model import PlannedDnsZone, PlannedServer, Scheme
from legion_nb.engine.surface import EngineAPI

pytestmark = pytest.mark.slow

SANDBOX = {"seed": 7, "nodes": True, "providers": ("hetzner",), "action_seconds": 0.02, "boot_seconds": 0.02}
VARYING_FIELDS = {"provider_id", "ipv4", "ipv6", "created", "fingerprint"}


async def scenario(api: EngineAPI) -> dict[str, Any]:
    """What a notebook does, step by step; every result kept as the API returned it."""
    out: dict[str, Any] = {}
    out["server"] = await api.plan_upsert_server(name="web-1", provider="hetzner")
    out["zone"] = await api.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
    out["plan"] = await api.plan_show()
    out["diff_before"] = await api.diff()
    out["credentials"] = await api.credentials_show()
    out["materialize"] = await api.materialize(settle_seconds=120)
    out["snapshot"] = await api.snapshot()
    out["diff_after"] = await api.diff()
    out["status"] = await api.status()
    out["activity"] = await api.activity()
    out["nbde"] = await api.nbde_status()
    out["opened"] = opened = await api.terminal_open("web-1", cols=100, rows=30)
    out["listed"] = await api.terminal_list()
    out["written"] = await api.terminal_write(opened["id"], "hostname\r")
    text, read = "", None
    for _ in range(600):
        read = await api.terminal_read(opened["id"], wait=0.5)
        text += read["data"]
        if "web-1\r\n" in text.split("hostname", 1)[-1]:
            break
    out["read"], out["text"] = read, text
    out["closed"] = await api.terminal_close(opened["id"])
    out["after_close"] = await api.terminal_list()
    return out


def comparable(name: str, value: Any) -> Any:
    """``value`` with what differs between two sandboxes set aside (types are compared apart)."""
    if isinstance(value, MaterializeReport):
        return (value.ok, value.status, value.counts, value.errors, value.unsettled, value.warnings)
    if isinstance(value, Diff):
        return [
            (
                r.kind,
                r.name,
                r.provider,
                r.action,
                r.note,
                r.warnings,
                [f for f in r.fields if f.field not in VARYING_FIELDS],
            )
            for r in value.resources
        ]
    if name == "credentials":
        return [(c["provider"], c["fields"]) for c in value]
    if name == "snapshot":
        keep = ("kind", "name", "provider", "action", "state", "health", "settled", "error")
        keep += ("note", "warnings")
        return (value["locked"], [{k: row.get(k) for k in keep} for row in value["rows"]])
    if name == "status":
        return {k: v for k, v in value.items() if k not in ("state", "revision")}
    if name == "activity":
        return {k: value[k] for k in ("counts", "total", "settled", "current", "errors")}
    if name in ("opened", "listed"):
        rows = value if isinstance(value, list) else [value]
        return [{k: v for k, v in row.items() if k not in ("id", "host")} for row in rows]
    if name in ("written", "closed", "read"):
        return {k: v for k, v in value.items() if k not in ("id", "data")}
    if name == "text":
        return "web-1\r\n" in value.split("hostname", 1)[-1]
    return value


def same_shape(local: Any, remote: Any, where: str) -> None:
    """The same Python types all the way down (tuples stay tuples, records stay records)."""
    assert type(local) is type(remote), (where, type(local), type(remote))
    if dataclasses.is_dataclass(local):
        for f in dataclasses.fields(local):
            same_shape(getattr(local, f.name), getattr(remote, f.name), f"{where}.{f.name}")
    elif isinstance(local, dict):
        for key in local.keys() & remote.keys():
            same_shape(local[key], remote[key], f"{where}[{key!r}]")
    elif isinstance(local, list | tuple):
        for i, (a, b) in enumerate(zip(local, remote, strict=False)):
            same_shape(a, b, f"{where}[{i}]")


async def test_in_process_and_through_the_daemon_give_equal_typed_results(runtime_dir: Path) -> None:
    del runtime_dir  # a short private runtime directory for the daemon's socket
    engine = await legion_nb.sandbox(**SANDBOX)
    try:
        local = await scenario(engine)
    finally:
        await engine.aclose()

    served = await legion_nb.sandbox(**SANDBOX)
    token = secrets.token_hex(32)
    stop, ready = asyncio.Event(), asyncio.Event()

    async def open_engine() -> Engine:
        return served

    task = asyncio.create_task(
        serve(endpoint_for(served.state_path), open_engine, token, on_ready=lambda _: ready.set(), stop=stop)
    )
    try:
        while not (ready.is_set() or task.done()):
            await asyncio.sleep(0.01)
        async with await legion_nb.connect(served.state_path, token=token) as remote:
            assert isinstance(remote, RemoteEngine)
            through_daemon = await scenario(remote)
    finally:
        stop.set()
        await task
        await served.aclose()

    assert local["materialize"].ok, (local["materialize"].summary, local["materialize"].errors)
    assert isinstance(through_daemon["plan"], Scheme) and isinstance(through_daemon["server"], PlannedServer)
    assert isinstance(through_daemon["zone"], PlannedDnsZone)
    assert isinstance(through_daemon["diff_after"].resources, tuple)
    assert comparable("text", local["text"]) and through_daemon["after_close"] == []
    assert local.keys() == through_daemon.keys()
    for name in local:
        same_shape(local[name], through_daemon[name], name)
        assert comparable(name, local[name]) == comparable(name, through_daemon[name]), name

    # The plan's warnings (no operator access planned) travel as records, not as words in a note.
    firewall = "legion-default-hetzner"
    for result in (local, through_daemon):
        [row] = [r for r in result["diff_before"].resources if r.name == firewall]
        assert row.warnings == (OPEN_WARNING,) and isinstance(row.warnings[0], PlanWarning)
        assert row.note == "derived from cluster default"
        assert result["materialize"].warnings == [FlaggedResource("firewall", firewall, (OPEN_WARNING,))]
        [shown] = [r for r in result["snapshot"]["rows"] if r["name"] == firewall]
        assert shown["warnings"] == [{"code": "open_access", "message": OPEN_WARNING.message}]
