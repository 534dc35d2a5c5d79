"""A Scaleway server a killed materialize left stopped stays stopped until ``legion materialize``.

Scaleway creates servers stopped and Legion powers each one on right after its create. A ``legion
materialize`` SIGKILLed between the two (the emulator holds the power-on request until the kill,
and never applies it) leaves the create intent and a stopped server. The ``legion status`` and
``legion --json snapshot`` processes after it settle the intent by lookup and show the server off,
waiting for ``legion materialize``; the emulator answers them no mutating request at all (no power
action, no create, no security group change: the cluster firewall the killed wave created rests
out of date, waiting for ``legion materialize`` too). ``legion materialize --yes`` then powers the
server on, deploys the node and applies the firewall.

A Hetzner node deployed, then powered off with hcloud and seen off by ``legion refresh`` (its row's
status field: observed ``off``, tracked ``running``; its system: ``down``, waiting for ``legion
materialize``), stays off across the same read-only commands
(no POST either) until ``legion materialize`` powers it on; it is deployed again without a new
install.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from e2ekit import LinkedSandbox, durable_state, finished, legion_process, linked_sandbox
from hcloud import Client

from legion_nb.emulators.scaleway.instance.servers import ServersApi
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.session import SessionSettings
from legion_nb.sandbox_engine import sandbox_policy, write_sandbox_link

pytestmark = pytest.mark.slow

PASSWORD = "server left off password"
NODE = "n1"


class PowerOnHold:
    """Holds the Scaleway power actions the emulator receives while ``holding``; a held one is
    answered 503 when let go, never applied."""

    def __init__(self) -> None:
        self.holding = True
        self.reached = asyncio.Event()
        self.released = asyncio.Event()


@pytest.fixture
async def sandbox(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[LinkedSandbox, PowerOnHold]]:
    hold = PowerOnHold()
    action = ServersApi.server_action

    async def held_action(api: ServersApi, request: web.Request) -> web.Response:
        if not hold.holding:
            return await action(api, request)
        hold.reached.set()
        await hold.released.wait()
        return web.json_response({"message": "held by the test", "type": "service_unavailable"}, status=503)

    monkeypatch.setattr(ServersApi, "server_action", held_action)  # before the routes are built
    async with linked_sandbox(37) as linked:
        try:
            yield linked, hold
        finally:
            hold.released.set()


def posts(linked: LinkedSandbox, provider: str = "scaleway", *, containing: str = "") -> int:
    """POSTs (creates and actions) a provider's emulator answered so far, of routes ``containing``."""
    counts = linked.cloud.world.counters.snapshot().get(provider, {})
    return sum(n for route, n in counts.items() if route.startswith("POST ") and containing in route)


def power_actions(linked: LinkedSandbox) -> int:
    return posts(linked, containing="/action")


def mutations(linked: LinkedSandbox) -> int:
    """Requests that may change what any provider holds (POST, PUT, PATCH, DELETE)."""
    return linked.cloud.world.counters.mutations()


async def quiet(linked: LinkedSandbox) -> tuple[int, int, int]:
    """The power actions, POSTs and mutating requests the emulator counted, once the requests the
    killed process sent before it died (still in the sockets' buffers) are all read: two reads
    0.2 s apart agree."""
    seen = (-1, -1, -1)
    while (now := (power_actions(linked), posts(linked), mutations(linked))) != seen:
        seen = now
        await asyncio.sleep(0.2)
    return seen


def node_row(out: str, kind: str = "server", name: str = NODE) -> dict[str, Any]:
    (row,) = [r for r in json.loads(out)["rows"] if r["kind"] == kind and r["name"] == name]
    return dict(row)


FIREWALL = "legion-alpha-scaleway"


async def test_a_server_a_killed_materialize_left_stopped_stays_off_until_materialize(
    sandbox: tuple[LinkedSandbox, PowerOnHold], tmp_path: Path
) -> None:
    linked, hold = sandbox
    path = tmp_path / "left-off.legion"
    engine = create_engine(path, linked.link.settings(SessionSettings(broker=sandbox_policy())))
    try:
        await engine.bootstrap(PASSWORD)
        write_sandbox_link(path, linked.link)
        block = linked.cloud.endpoints()["scaleway"]
        fields = {key: value for key, value in block.items() if key != "url"}
        await engine.credentials_set("scaleway", fields, endpoint=block["url"])
        await engine.plan_upsert_server(name=NODE, provider="scaleway", cluster="alpha")
    finally:
        await engine.aclose()

    applying = await legion_process(path, PASSWORD, "--json", "materialize", "--yes")
    try:
        await asyncio.wait_for(hold.reached.wait(), 120)  # created; its power-on is held
    finally:
        with contextlib.suppress(ProcessLookupError):
            applying.send_signal(signal.SIGKILL)
    assert await applying.wait() == -signal.SIGKILL
    hold.holding = False
    hold.released.set()
    left = await durable_state(path, PASSWORD)
    assert [p.name for p in left.tracked.pending.values()] == [NODE] and not left.tracked.servers

    actions, sent, written = await quiet(linked)

    async def read_only(*command: str) -> str:
        out = await finished(await legion_process(path, PASSWORD, *command))
        assert (posts(linked), power_actions(linked), mutations(linked)) == (sent, actions, written), command
        return out

    for command in (("status",), ("--json", "snapshot"), ("status",), ("--json", "snapshot")):
        out = await read_only(*command)
        if command[0] == "--json" and "provider_id" not in (row := node_row(out))["facts"]:
            # This process ended before its settle did (a read-only command does not wait for it).
            assert (row["operation"], row["error"]) == ("settle create", ""), row
    for _ in range(20):  # each session settles by lookup; one that ends first leaves it to the next
        if not (await durable_state(path, PASSWORD)).tracked.pending:
            break
        await read_only("status")
    settled = await durable_state(path, PASSWORD)
    assert not settled.tracked.pending and settled.tracked.servers[NODE].status == "off"
    for _ in range(2):
        row = node_row(out := await read_only("--json", "snapshot"))
        assert (row["system"], row["error"], row["facts"]["status"]) == ("down", "", "off"), row
        assert row["waiting"] == "legion materialize: server is off", row
        firewall = node_row(out, "firewall", FIREWALL)
        assert (firewall["state"], firewall["error"]) == ("applied", ""), firewall
        assert firewall["waiting"] == "legion materialize: rules and servers out of date", firewall

    await finished(await legion_process(path, PASSWORD, "materialize", "--yes"))
    assert power_actions(linked) == actions + 1  # the one power-on, by the wave
    out = await finished(await legion_process(path, PASSWORD, "--json", "snapshot"))
    row = node_row(out)
    assert (row["system"], row["waiting"], row["error"]) == ("deployed", "", ""), row
    firewall = node_row(out, "firewall", FIREWALL)
    assert (firewall["state"], firewall["waiting"], firewall["facts"]["servers"]) == ("applied", "", NODE)
    done = await durable_state(path, PASSWORD)
    execution = done.tracked.servers[NODE].execution
    assert execution is not None and (execution.operation, execution.status) == ("add", "succeeded")
    assert len(done.tracked.servers) == 1


async def test_a_node_powered_off_at_the_provider_stays_off_until_materialize(
    sandbox: tuple[LinkedSandbox, PowerOnHold], tmp_path: Path
) -> None:
    linked, hold = sandbox
    hold.holding = False
    path = tmp_path / "powered-off.legion"
    engine = create_engine(path, linked.link.settings(SessionSettings(broker=sandbox_policy())))
    block = linked.cloud.endpoints()["hetzner"]
    try:
        await engine.bootstrap(PASSWORD)
        write_sandbox_link(path, linked.link)
        await engine.credentials_set("hetzner", {"token": block["token"]}, endpoint=block["url"])
        await engine.plan_upsert_server(name=NODE, provider="hetzner", cluster="alpha")
        report = await engine.materialize(settle_seconds=120)
        assert report.ok, (report.summary, report.errors)
    finally:
        await engine.aclose()
    installed = (await durable_state(path, PASSWORD)).tracked.servers[NODE].execution

    hcloud = Client(token=block["token"], api_endpoint=block["url"], poll_interval=0.02)
    server = await asyncio.to_thread(hcloud.servers.get_by_name, NODE)
    assert server is not None
    await asyncio.to_thread(lambda: server.power_off().wait_until_finished())
    powered = posts(linked, "hetzner", containing="/actions/")
    sent = posts(linked, "hetzner")

    for command in (("refresh",), ("status",), ("--json", "snapshot"), ("status",), ("--json", "snapshot")):
        out = await finished(await legion_process(path, PASSWORD, *command))
        assert posts(linked, "hetzner") == sent, command  # refreshing and reading start nothing
        if command[0] == "--json":
            # The refresh reports the server off beside what Legion last tracked (running).
            (status,) = [f for f in node_row(out)["fields"] if f["field"] == "status"]
            assert (status["observed"], status["tracked"]) == ("off", "running"), status
            # ... and the node shows down, waiting for the wave that powers it on.
            row = node_row(out)
            assert (row["system"], row["error"], row["facts"]["status"]) == ("down", "", "off"), row
            assert row["waiting"] == "legion materialize: server is off", row
    off = await asyncio.to_thread(hcloud.servers.get_by_id, server.id)
    assert off.status == "off"

    await finished(await legion_process(path, PASSWORD, "materialize", "--yes"))
    assert posts(linked, "hetzner", containing="/actions/") == powered + 1  # the wave's power-on
    assert (await asyncio.to_thread(hcloud.servers.get_by_id, server.id)).status == "running"
    row = node_row(await finished(await legion_process(path, PASSWORD, "--json", "snapshot")))
    assert (row["system"], row["waiting"], row["error"]) == ("deployed", "", ""), row
    assert (await durable_state(path, PASSWORD)).tracked.servers[NODE].execution == installed  # no reinstall
