"""Every shipped runbook executes headless against a sandbox cluster, and each run leaves its record.

The kernels are real (papermill on nbclient, this virtualenv's ``python3``); the engine is an
in-process sandbox with simulated nodes, reached from the kernel through the run's channel.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import nbformat
import pytest

from legion_nb.emulators.hetzner import state_of
from legion_nb.emulators.nodes.streams import SenderSession
from legion_nb.engine.redaction import REDACTED, Redactor
from legion_nb.engine.runtime import Engine
from legion_nb.errors import UsageError
from legion_nb.sandbox_engine import create_unplanned_server, sandbox_cloud

PROBE = Path(__file__).resolve().parent / "probe"


def server_row(snapshot: dict[str, object], name: str) -> dict[str, object]:
    rows = snapshot["rows"]
    assert isinstance(rows, list)
    return next(r for r in rows if r["kind"] == "server" and r["name"] == name)


async def test_node_recovery_reinstalls_the_node_and_records_the_run(cluster: Engine) -> None:
    before = {op.id for op in cluster.state.operations}
    record = await cluster.run_runbook("node-recovery", {"node": "web-2"})

    assert record.status == "succeeded" and record.exit_status == 0, record.failed_cell
    assert record.failed_cell is None
    assert record.parameters == {"node": "web-2"} and record.dry_run is False
    assert record.operator and record.host and record.start < record.end
    assert len(record.input_sha256) == 64 and len(record.output_sha256) == 64
    assert record.cells and all(c.status == "completed" and c.duration is not None for c in record.cells)
    # The operations it caused are the reinstall's entries in the state's operation log.
    caused = {op.id: op for op in cluster.state.operations if op.id not in before}
    assert set(record.operations) == set(caused) and record.operations
    assert any(op.kind == "server reinstall" and op.status == "succeeded" for op in caused.values()), caused
    row = server_row(await cluster.snapshot(), "web-2")
    assert row["system"] == "deployed" and row["settled"]

    # The output notebook is a valid notebook with its outputs and papermill's metadata.
    output = Path(record.output_path)
    assert output.stat().st_mode & 0o777 == 0o600
    nb = nbformat.read(output, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["papermill"]["parameters"] == {"node": "web-2"}
    text = json.dumps(nb)
    assert "web-2: ready" in text
    assert (await cluster.runbook_show(record.id)).to_json() == record.to_json()


async def test_a_failing_runbook_says_which_cell_failed_and_why(cluster: Engine) -> None:
    record = await cluster.run_runbook("node-recovery", {"node": "no-such-node"})

    assert record.status == "failed" and record.exit_status == 1
    assert record.failed_cell is not None
    assert "LookupError: no server 'no-such-node'" in record.failed_cell.error
    assert "server_row(await engine.snapshot(), node)" in record.failed_cell.source
    assert record.operations == ()
    nb = nbformat.read(Path(record.output_path), as_version=4)
    failed = nb.cells[record.failed_cell.index]
    assert failed.metadata["papermill"]["status"] == "failed" or failed.metadata["papermill"]["exception"]
    assert [r["status"] for r in await cluster.runbook_runs()] == ["failed"]
    assert (await cluster.runbook_verify())["ok"]


async def test_every_runbook_runs_headless_and_dry_runs_change_nothing(
    cluster: Engine, sender: SenderSession
) -> None:
    names = [r["name"] for r in await cluster.runbook_list()]
    assert set(names) >= {
        "node-recovery",
        "nbde-reconcile",
        "node-health-triage",
        "cost-cleanup",
        "stream-recovery",
    }
    given = {"node-recovery": {"node": "web-1"}, "stream-recovery": {"stream": "feed"}}
    for name in names:
        parameters = given.get(name, {})
        record = await cluster.run_runbook(name, parameters, dry_run=True)
        assert record.exit_status == 0, (name, record.failed_cell)
        assert record.dry_run is True and record.operations == (), name
        assert "dry run" in Path(record.output_path).read_text() or name == "cost-cleanup"
    # Cost cleanup and triage are dry runs by default; NBDE reconcile runs for real and keeps policy.
    triage = await cluster.run_runbook("node-health-triage", {})
    assert triage.dry_run is True and triage.exit_status == 0
    nbde = await cluster.run_runbook("nbde-reconcile", {})
    assert nbde.exit_status == 0, nbde.failed_cell
    assert all(n["in_policy"] for c in await cluster.nbde_status() for n in c["nodes"])
    runs = await cluster.runbook_runs()
    assert len(runs) == len(names) + 2 and (await cluster.runbook_verify())["ok"]


async def test_stream_recovery_restarts_a_stalled_stream_until_it_is_live(
    cluster: Engine, sender: SenderSession
) -> None:
    sender.stall()
    while (await cluster.stream_list(probe=True))[0]["state"] != "stalled":
        await asyncio.sleep(0.01)

    record = await cluster.run_runbook("stream-recovery", {"stream": "feed"})
    assert record.status == "succeeded" and record.exit_status == 0, record.failed_cell
    output = Path(record.output_path).read_text()
    assert "feed on sat1 to tcp://127.0.0.1:" in output and ": stalled (no bytes delivered for" in output
    assert "feed: stopped (stopped by the operator)" in output and "feed: live (" in output
    after = (await cluster.stream_list(probe=True))[0]
    assert (after["name"], after["satellite"], after["state"], after["reason"]) == (
        "feed",
        "sat1",
        "live",
        None,
    )
    fleet = sandbox_cloud(cluster).nodes
    assert fleet is not None and fleet.by_hostname("sat1").senders.session("feed") is not sender


async def test_stream_recovery_of_an_unknown_stream_fails_in_the_cell_that_reads_it(
    cluster: Engine, sender: SenderSession
) -> None:
    record = await cluster.run_runbook("stream-recovery", {"stream": "no-such-stream"})

    assert record.status == "failed" and record.exit_status == 1
    assert record.failed_cell is not None
    assert (
        "LookupError: no stream 'no-such-stream' is planned; the streams are: feed"
        in record.failed_cell.error
    )
    assert "before = await stream_view(stream)" in record.failed_cell.source
    assert (await cluster.stream_list())[0]["state"] != "stopped"  # nothing was restarted
    assert (await cluster.runbook_verify())["ok"]


async def test_cost_cleanup_deletes_only_labelled_orphans(cluster: Engine) -> None:
    await create_unplanned_server(cluster, "console-copy")
    await create_unplanned_server(cluster, "someone-elses", legion_labels=False)
    dry = await cluster.run_runbook("cost-cleanup", {})
    assert dry.exit_status == 0 and dry.operations == ()
    listed = Path(dry.output_path).read_text()
    assert "would delete hetzner" in listed and "console-copy" in listed and "someone-elses" in listed

    real = await cluster.run_runbook("cost-cleanup", {"dry_run": False})
    assert real.exit_status == 0, real.failed_cell
    assert real.dry_run is False and len(real.operations) == 1
    rows = await cluster.billing_reconciliation()
    names = {r["resource_name"] for r in rows if r["orphan"]}
    assert "console-copy" not in names and "someone-elses" in names
    with pytest.raises(UsageError, match="carries no Legion labels"):
        orphan = next(r for r in rows if r["resource_name"] == "someone-elses")
        await cluster.orphan_delete(provider="hetzner", resource=orphan["resource"])


async def test_cost_cleanup_lists_a_labelled_floating_ip_with_its_address_then_deletes_it(
    cluster: Engine,
) -> None:
    # made with Legion's labels and tracked by nobody, as a killed run leaves it
    resilience = cluster.core.providers.resilience
    ip = await resilience.create_floating_ip("hetzner", "vip", "ipv4", "fsn1", str(uuid.uuid4()))
    resource = f"floating_ip/{ip.id}"

    dry = await cluster.run_runbook("cost-cleanup", {})
    assert dry.exit_status == 0 and dry.operations == ()
    listed = Path(dry.output_path).read_text()
    assert f"(floating_ip {ip.ip})" in listed and f"would delete hetzner {resource} (vip)" in listed

    real = await cluster.run_runbook("cost-cleanup", {"dry_run": False})
    assert real.exit_status == 0, real.failed_cell
    assert len(real.operations) == 1
    assert int(ip.id) not in state_of(sandbox_cloud(cluster).emulator("hetzner")).floating_ips
    assert resource not in {r["resource"] for r in await cluster.billing_reconciliation() if r["orphan"]}


async def test_node_health_triage_lists_a_diverged_node_then_repairs_it(cluster: Engine) -> None:
    fleet = sandbox_cloud(cluster).nodes
    assert fleet is not None
    left = fleet.by_hostname("web-1").diverge_membership()

    triage = await cluster.run_runbook("node-health-triage", {})
    assert triage.dry_run is True and triage.exit_status == 0 and triage.operations == ()
    listed = Path(triage.output_path).read_text()
    assert f"web-1: reconfigure (membership: node lacks peer {left})" in listed
    assert "dry run: would run reconfigure on web-1" in listed
    assert fleet.by_hostname("web-1").system.membership() == []  # a dry run changed nothing

    repair = await cluster.run_runbook("node-health-triage", {"dry_run": False})
    assert repair.exit_status == 0, repair.failed_cell
    assert "web-1: reconfigure -> ok" in Path(repair.output_path).read_text()
    assert fleet.by_hostname("web-1").system.membership() == ["web-2"]
    assert await cluster.repairs_plan() == []


async def test_canary_no_secret_reaches_kernel_outputs_or_records(
    cluster: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password, token = "canary-state-password-7f3a9c", "canary-daemon-token-51e0b2d4"
    monkeypatch.setenv("LEGION_PASSWORD", password)
    monkeypatch.setenv("LEGION_DAEMON_TOKEN", token)
    secrets = sorted(Redactor.from_state(cluster.state).variants)
    assert secrets, "the sandbox state holds provider secrets"
    provider_secret = next(s for s in secrets if len(s) >= 16)
    cluster.runbooks.directory = PROBE
    dump_path = tmp_path / "kernel.json"

    record = await cluster.run_runbook("probe", {"out": str(dump_path), "leak": provider_secret})
    assert record.exit_status == 0, record.failed_cell
    dump = json.loads(dump_path.read_text())
    kernel = json.dumps({k: dump[k] for k in ("env", "argv", "cmdline")})
    assert "LEGION_RUNBOOK_CHANNEL" in dump["env"] and dump["channel"] == ["engine.sock"]
    assert dump["second_connect"].startswith("refused")
    # Mid-run, the engine's live view names the run and the cell that is executing (the probe's).
    probe_cell = next(c.index for c in record.cells if "runbook_live" in c.source)
    assert [(r["id"], r["current"]) for r in dump["live"]] == [(record.id, probe_cell)]
    assert dump["live"][0]["done"] == [c.index for c in record.cells if c.index < probe_cell]
    for key in ("LEGION_PASSWORD", "LEGION_DAEMON_TOKEN", "LEGION_STATE"):
        assert key not in dump["env"]

    output = Path(record.output_path).read_text()
    records = "".join(p.read_text() for p in cluster.runbooks.store.records_dir.iterdir())
    assert REDACTED in output and REDACTED in records  # the leaked value was scrubbed, not dropped
    for canary in (password, token, *secrets):
        assert canary not in kernel, "a secret reached the kernel's environment or argv"
        assert canary not in output, "a secret reached the output notebook"
        assert canary not in records, "a secret reached a run record"


async def test_unknown_runbooks_and_parameters_are_refused_before_anything_runs(cluster: Engine) -> None:
    with pytest.raises(UsageError, match=r"no runbook 'nope'; the runbooks are: .*node-recovery"):
        await cluster.run_runbook("nope", {})
    with pytest.raises(UsageError, match="has no parameter 'nod'; it takes: node, settle_seconds, dry_run"):
        await cluster.run_runbook("node-recovery", {"nod": "web-1"})
    assert await cluster.runbook_runs() == []


async def test_a_kernel_that_never_starts_is_still_a_recorded_failed_run(
    cluster: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_kernel(*_: object, **__: object) -> None:
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    monkeypatch.setattr("legion_nb.engine.runbooks.service.execute", no_kernel)
    record = await cluster.run_runbook("node-recovery", {"node": "web-1"})
    assert record.status == "failed" and record.exit_status == 1 and record.failed_cell is None
    assert record.extra == {"error": "RuntimeError: Kernel didn't respond in 60 seconds"}
    assert record.output_path == "" and record.cells == ()
    assert (await cluster.runbook_runs())[0]["error"] == record.extra["error"]
    assert (await cluster.runbook_verify())["ok"]
    assert cluster.runbooks.live == {}
