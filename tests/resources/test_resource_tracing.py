"""LEGION_TRACE_ACTORS: one JSON line per transition, in the log directory, with no secrets."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from resourcekit import SandboxProviders, State, materialize, plan_cluster

from legion_nb.emulators.cloud import SandboxCloud
from legion_nb.engine.resources.actor import ResourceSettings
from legion_nb.engine.resources.supervisor import ResourceSupervisor
from legion_nb.engine.resources.tracing import TRACE_ENV, ActorTracer, tracing_enabled


async def test_transitions_are_traced_as_json_lines_without_secrets(
    providers: SandboxProviders, persistence: State, cloud: SandboxCloud, tmp_path: Path
) -> None:
    supervisor = ResourceSupervisor(
        persistence, providers, settings=ResourceSettings(), trace=True, log_dir=tmp_path / "logs"
    )
    async with supervisor:
        await plan_cluster(persistence, ("web-1",), zone="example.org")
        await materialize(supervisor)

    text = (tmp_path / "logs" / "actors.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    web = [(r["event"], r["source"], r["target"]) for r in lines if r["actor"] == "server:web-1"]
    assert ("sync", "absent", "creating") in web
    assert ("done.invoke.creating", "creating", "provisioning") in web
    assert ("done.invoke.provisioning", "provisioning", "running") in web
    assert ("observe", "unknown", "reachable") in web
    assert web[-1] == ("stop", "alive", "stopped")
    zone = [(r["event"], r["target"]) for r in lines if r["actor"] == "dns_zone:example.org"]
    assert ("done.invoke.creating", "waiting") in zone or ("done.invoke.creating", "applying") in zone
    assert all(set(r) == {"ts", "actor", "event", "source", "target", "config"} for r in lines)
    for block in cloud.endpoints().values():
        for key, value in block.items():
            if key not in ("url", "zone", "project_id", "organization_id", "service_name"):
                assert value not in text


def test_tracing_is_off_unless_asked_for() -> None:
    assert not tracing_enabled({})
    assert not tracing_enabled({TRACE_ENV: "0"})
    assert tracing_enabled({TRACE_ENV: "1"})
    assert tracing_enabled({TRACE_ENV: "yes"})


def test_the_trace_file_is_the_operators_alone(tmp_path: Path) -> None:
    """0600 when created, and an older world-readable trace is narrowed when reopened."""
    first = ActorTracer(tmp_path / "logs")
    first.write({"actor": "server:web-1"})
    first.close()
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    first.path.chmod(0o644)
    again = ActorTracer(tmp_path / "logs")
    again.write({"actor": "server:web-2"})
    again.close()
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600
    assert len(again.path.read_text().splitlines()) == 2
