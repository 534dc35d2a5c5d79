"""The deployment runtime against the sandbox: a Hetzner emulator and real simulated nodes over SSH.

Covers the phase persistence order, the interrupted marking on start, resuming a failed execution
from its recorded phase (earlier phases are not run again), bad input, and NBDE promotion as a
cluster grows to three healthy nodes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from runtimekit import PASSWORD, Engine, Sandbox, connector, create_state, engine, node_access, sandbox

from legion_nb.emulators.world import Timing
from legion_nb.engine.cluster.nbde import nbde_repairs
from legion_nb.engine.deployment.node_channel import (
    HOST_KEY_PATH,
    TRIBES_CONFIG_PATH,
    NodeNotReadyError,
    NodeStepError,
)
from legion_nb.engine.deployment.node_reach import PinnedHostKeyRefusedError, reopen_host_key_window
from legion_nb.engine.deployment.phase_work import NodePhaseWork
from legion_nb.engine.deployment.phases import (
    INSTALL_PHASES,
    PLANS,
    NodeOperation,
    Phase,
    PhaseContext,
    UnknownOperationError,
    execution_of,
    resume_phase,
)
from legion_nb.engine.deployment.reinstall import reinstall_image
from legion_nb.engine.deployment.runtime import (
    DeploymentService,
    DeploymentSettings,
    NothingToResumeError,
)
from legion_nb.engine.runtime import create_engine
from legion_nb.engine.session import Session, SessionSettings
from legion_nb.engine.state.edits import mark_interrupted, with_execution
from legion_nb.engine.state.model import (
    CreatePending,
    LegionState,
    NodeExecution,
    TrackedServer,
    decode_state,
    empty_state,
    encode_state,
)
from legion_nb.engine.state.persistence import StateChange
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.errors import LockedError, UsageError
from legion_nb.providers.catalog import embedded_catalog
from legion_nb.providers.ownership import LEGION_ID_LABEL

NOW = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)


@pytest.fixture
async def world() -> AsyncIterator[Sandbox]:
    async with sandbox() as running:
        yield running


@pytest.fixture
async def parts(world: Sandbox, tmp_path: Path) -> AsyncIterator[Engine]:
    path = tmp_path / "state" / "state.legion"
    await create_state(path, servers=("n1", "n2", "n3"))
    async with engine(path, world.credentials(), world.ssh_port) as running:
        yield running


def watch_executions(parts: Engine, node: str) -> list[tuple[str, bool, str]]:
    """Every durable change of ``node``'s execution record, as (phase, phase_done, status)."""
    seen: list[tuple[str, bool, str]] = []

    def listener(change: StateChange[LegionState]) -> None:
        before, after = execution_of(change.before, node), execution_of(change.after, node)
        if after is not None and after != before:
            seen.append((after.phase, after.phase_done, after.status))

    parts.persistence.subscribe(listener)
    return seen


async def test_add_persists_each_phase_start_and_end_in_plan_order(world: Sandbox, parts: Engine) -> None:
    seen = watch_executions(parts, "n1")
    result = await parts.runtime.run("n1", "add")

    expected: list[tuple[str, bool, str]] = []
    for phase in PLANS[NodeOperation.ADD]:
        expected += [(phase.value, False, "running"), (phase.value, True, "running")]
    expected.append((Phase.NBDE_RECONCILE.value, True, "succeeded"))
    assert seen == expected
    assert result.status == "succeeded"

    state = parts.persistence.state
    record = state.tracked.servers["n1"]
    assert record.execution == result
    assert state.deployment.nodes["n1"].execution is None  # moved onto the tracked server
    assert state.tracked.pending == {}
    node = world.fleet.node(record.ipv4 or "")
    assert node.system.readiness()["ready"] is True
    assert world.hetzner_servers() == ["n1"]
    nbde = state.deployment.nodes["n1"].nbde
    assert nbde is not None and nbde.mode == "local" and nbde.recovery_passphrase
    assert nbde.recovery_passphrase not in repr(state.deployment)


async def test_running_add_again_finds_everything_done_and_changes_nothing(
    world: Sandbox, parts: Engine
) -> None:
    await parts.runtime.run("n1", "add")
    record = parts.persistence.state.tracked.servers["n1"]
    node = world.fleet.node(record.ipv4 or "")
    steps = ("kexec", "install", "reboot", "write-file", "activate-certs", "configure-tribes")
    for step in steps:
        node.faults.fail(step, "an idempotent phase must not repeat this step")
    boots = node.boots

    again = await parts.runtime.run("n1", "add")

    assert again.status == "succeeded"
    assert [node.faults.take(step) for step in steps] == ["an idempotent phase must not repeat this step"] * 6
    assert node.boots == boots
    assert parts.persistence.state.tracked.servers["n1"].provider_id == record.provider_id
    assert world.hetzner_servers() == ["n1"]


async def test_a_failed_phase_is_recorded_and_resume_starts_there(world: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.legion"
    await create_state(path, servers=("n1",))

    async def break_certificates(node: str, phase: Phase, point: str) -> None:
        if (phase, point) == (Phase.CERTIFICATES, "start") and not failed_once:
            failed_once.append(node)
            address = parts.persistence.state.tracked.servers[node].ipv4 or ""
            world.fleet.node(address).faults.fail("activate-certs", "tls port already in use")

    failed_once: list[str] = []
    async with engine(path, world.credentials(), world.ssh_port, delay=break_certificates) as parts:
        with pytest.raises(NodeStepError, match=r"activate-certs' failed .*tls port already in use") as info:
            await parts.runtime.run("n1", "add")
        assert "\n" not in str(info.value)
        failed = parts.runtime.execution("n1")
        assert failed is not None
        assert (failed.operation, failed.phase, failed.status, failed.retryable) == (
            "add",
            "certificates",
            "failed",
            True,
        )
        assert "tls port already in use" in (failed.error or "")

        runs_before = dict(parts.runtime.metrics.runs)
        done = await parts.runtime.resume("n1")
        assert done.status == "succeeded" and done.operation == "add" and done.started == failed.started
        reran = {p for p, n in parts.runtime.metrics.runs.items() if n > runs_before.get(p, 0)}
        assert reran == set(PLANS[NodeOperation.ADD][PLANS[NodeOperation.ADD].index(Phase.CERTIFICATES) :])
        assert await parts.runtime.resume("n1") == done  # nothing left: the record is returned as is
        assert world.hetzner_servers() == ["n1"]


async def test_reconfigure_is_a_no_op_on_a_node_that_holds_its_configuration(
    world: Sandbox, parts: Engine
) -> None:
    await parts.runtime.run("n1", "add")
    node = world.fleet.node(parts.persistence.state.tracked.servers["n1"].ipv4 or "")
    node.faults.fail("configure-tribes", "must not be called")
    result = await parts.runtime.run("n1", "reconfigure")
    assert result.status == "succeeded" and result.operation == "reconfigure"
    assert node.faults.take("configure-tribes") == "must not be called"


async def test_initialize_marks_running_executions_interrupted_and_retryable(parts: Engine) -> None:
    running = NodeExecution("add", Phase.OS_INSTALL.value, "running", NOW, NOW)
    finished = NodeExecution("add", Phase.NBDE_RECONCILE.value, "succeeded", NOW, NOW, phase_done=True)

    def seed(state: LegionState) -> tuple[LegionState, None]:
        tracked = {
            "n1": TrackedServer("n1", "hetzner", "1", NOW, cluster="alpha", execution=running),
            "n2": TrackedServer("n2", "hetzner", "2", NOW, cluster="alpha", execution=finished),
        }
        state = replace(state, tracked=replace(state.tracked, servers=tracked))
        return with_execution(state, "n3", replace(running, phase=Phase.PROVISION.value)), None

    await parts.persistence.mutate(seed, reason="test: a crashed process")
    assert await parts.runtime.initialize() == ("n1", "n3")
    first = parts.runtime.execution("n1")
    assert first is not None and first.status == "interrupted" and first.retryable
    assert first.error == "interrupted during os_install: Legion stopped; resume to continue from there"
    assert resume_phase(first) == Phase.OS_INSTALL
    pre = parts.runtime.execution("n3")
    assert pre is not None and (pre.status, pre.phase) == ("interrupted", "provision")
    assert parts.runtime.execution("n2") == finished
    assert await parts.runtime.initialize() == ()


def test_resume_phase_follows_the_recorded_phase() -> None:
    started = NodeExecution("add", "kexec", "interrupted", NOW, NOW, retryable=True)
    assert resume_phase(started) == Phase.KEXEC
    assert resume_phase(replace(started, phase_done=True)) == Phase.OS_INSTALL
    assert resume_phase(replace(started, phase="nbde_reconcile", phase_done=True)) is None
    assert resume_phase(replace(started, phase="from-a-newer-version")) == Phase.PROVISION
    assert PLANS[NodeOperation.REINSTALL][1:] == INSTALL_PHASES


def test_mark_interrupted_touches_nothing_that_is_not_running() -> None:
    state = empty_state()
    assert mark_interrupted(state) == (state, ())


async def test_bad_requests_are_one_line_errors_that_change_nothing(parts: Engine) -> None:
    before = parts.persistence.state
    with pytest.raises(UnknownOperationError, match="unknown node operation 'explode'; use one of add"):
        await parts.runtime.run("n1", "explode")
    with pytest.raises(NothingToResumeError, match="node n1 has no deployment execution to resume"):
        await parts.runtime.resume("n1")
    assert parts.persistence.state is before


def test_reinstall_keeps_a_catalog_image_and_otherwise_asks_the_policy() -> None:
    catalog = embedded_catalog("hetzner")
    current = next(image for image in catalog.images if image.name.startswith("debian"))
    record = TrackedServer("n1", "hetzner", "1", NOW, server_type="cx22", location="fsn1", image=current.id)
    assert reinstall_image(catalog, record, None) == current.id
    retired = replace(record, image="debian-9-retired")
    chosen = reinstall_image(catalog, retired, None)
    assert chosen != "debian-9-retired" and catalog.image(chosen) is not None


async def test_nbde_moves_from_local_to_tang_to_quorum_as_the_cluster_grows(
    world: Sandbox, parts: Engine
) -> None:
    modes = []
    for name in ("n1", "n2", "n3"):
        await parts.runtime.run(name, NodeOperation.ADD)
        nbde = parts.persistence.state.deployment.nodes[name].nbde
        assert nbde is not None
        modes.append(nbde.mode)
    assert modes == ["local", "local", "tang"]

    repairs = nbde_repairs(parts.persistence.state)
    assert {r.node for r in repairs} == {"n1", "n2", "n3"}
    for repair in repairs:
        await parts.runtime.run(repair.node, NodeOperation.NBDE_PROMOTE)
    nodes = parts.persistence.state.deployment.nodes
    assert {name: nodes[name].nbde.mode for name in ("n1", "n2", "n3")} == dict.fromkeys(  # type: ignore[union-attr]
        ("n1", "n2", "n3"), "quorum"
    )
    n1 = nodes["n1"].nbde
    assert n1 is not None and n1.tang_peers == ("n2", "n3") and n1.threshold == 2
    assert not n1.local_boot_key
    assert nbde_repairs(parts.persistence.state) == ()
    servers = parts.persistence.state.tracked.servers
    held = world.fleet.node(servers["n1"].ipv4 or "").system.files[TRIBES_CONFIG_PATH]
    assert [peer["name"] for peer in json.loads(held)["peers"]] == ["n2", "n3"]


@asynccontextmanager
async def one_node_rebuilt_slowly(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Engine]]:
    """A state planning n1 and a sandbox whose rebuilds outlast a watcher poll (a rebuild then shows
    as a fresh node booting from the image)."""
    path = tmp_path / "state" / "state.legion"
    await create_state(path, servers=("n1",))
    slow_rebuild = Timing(action_seconds=0.2, boot_seconds=0.02, latency_ms=0.0)
    async with (
        sandbox(timing=slow_rebuild) as world,
        engine(path, world.credentials(), world.ssh_port) as parts,
    ):
        yield world, parts


async def test_reinstall_rebuilds_from_the_tracked_image_and_installs_again(tmp_path: Path) -> None:
    async with one_node_rebuilt_slowly(tmp_path) as (world, parts):
        await parts.runtime.run("n1", "add")
        record = parts.persistence.state.tracked.servers["n1"]
        first = world.fleet.node(record.ipv4 or "")
        pinned = parts.persistence.state.deployment.nodes["n1"].security["identity"]

        result = await parts.runtime.run("n1", "reinstall")

        assert result.status == "succeeded" and result.operation == "reinstall"
        again = world.fleet.node(record.ipv4 or "")
        assert again is not first  # the rebuilt machine booted from the provider image
        assert again.system.readiness()["ready"] is True
        assert again.host_public_key.split()[:2] == pinned["host_key"]["public"].split()[:2]
        after = parts.persistence.state.tracked.servers["n1"]
        assert after.image == record.image and after.provider_id == record.provider_id
        assert world.hetzner_servers() == ["n1"]


async def test_the_engine_service_marks_interrupted_executions_at_unlock(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.legion"
    await create_state(path, servers=("n1",))
    store, payload = await SecureStateStore.unlock(path, PASSWORD)
    running = NodeExecution("add", Phase.REBOOT.value, "running", NOW, NOW)
    state = decode_state(payload)
    server = TrackedServer("n1", "hetzner", "1", NOW, cluster="alpha", status="running", execution=running)
    await store.save(encode_state(replace(state, tracked=replace(state.tracked, servers={"n1": server}))))
    store.close()

    def deployment(session: Session) -> DeploymentService:
        """The service alone, as an extra session service: no node actor drives it here."""
        return DeploymentService(session.persistence, session.providers, DeploymentSettings())

    legion = create_engine(path, SessionSettings(services=(deployment,)))
    with pytest.raises(LockedError, match="unlock it first"):
        _ = legion.core.extras
    try:
        await legion.unlock(PASSWORD)
        (service,) = legion.core.extras
        assert isinstance(service, DeploymentService)
        assert service.interrupted == ("n1",)
        execution = service.runtime.execution("n1")
        assert execution is not None
        assert (execution.status, execution.retryable, execution.phase) == ("interrupted", True, "reboot")
    finally:
        await legion.aclose()
    with pytest.raises(LockedError):
        _ = legion.core.extras


async def test_an_ssh_key_intent_left_by_a_crash_is_settled_by_the_key_itself(
    world: Sandbox, parts: Engine
) -> None:
    await parts.runtime.run("n1", "add")
    key = parts.persistence.state.tracked.servers["n1"].ssh_keys[0]
    listed = await parts.broker.read("hetzner", "test: keys", lambda a: a.list_ssh_keys())
    legion_id = next(k for k in listed if k.id == key.provider_id).labels[LEGION_ID_LABEL]
    stale = CreatePending(legion_id, "hetzner", "ssh_key", key.name, NOW, {LEGION_ID_LABEL: legion_id})

    def crash_left(state: LegionState) -> tuple[LegionState, None]:
        return replace(state, tracked=replace(state.tracked, pending={legion_id: stale})), None

    await parts.persistence.mutate(crash_left, reason="test: a crash after the key was created")
    assert await parts.services.provider_ssh_key("n1", "hetzner") == key  # found, not created again
    assert parts.persistence.state.tracked.pending == {}


async def test_provision_waits_for_the_node_actor_and_never_creates_a_server(
    world: Sandbox, parts: Engine
) -> None:
    """Without a node actor to make the server, the provision phase gives up (retryable) having
    created nothing; a server that is neither planned nor tracked is the operator's error."""
    access = replace(node_access(world.ssh_port), provisioning=0.2)
    work = NodePhaseWork(parts.persistence, parts.providers, access=access, connector=connector())

    async def nowhere(point: str) -> None:
        del point

    provision = work.handler(Phase.PROVISION)
    ctx = PhaseContext("n1", NodeOperation.ADD, Phase.PROVISION, checkpoint=nowhere)
    with pytest.raises(NodeNotReadyError, match=r"server n1 is not tracked after 0.2 s; its node actor"):
        await provision(ctx)
    with pytest.raises(UsageError, match=r"server n9 is not planned; plan it with `legion plan server add`"):
        await provision(replace(ctx, node="n9"))
    assert world.hetzner_servers() == []
    assert parts.persistence.state.tracked.servers == {}


async def test_a_node_that_presented_its_pinned_key_is_never_trusted_on_another(tmp_path: Path) -> None:
    """A server rebuilt behind Legion's back answers with a key Legion never installed: resuming or
    repeating its install refuses it (before, Legion trusted that key and sent it the host private
    key); only the operator's re-pin lets the install trust it, and then installs Legion's key."""
    async with one_node_rebuilt_slowly(tmp_path) as (world, parts):
        await parts.runtime.run("n1", "add")
        record = parts.persistence.state.tracked.servers["n1"]
        address = record.ipv4 or ""
        assert parts.persistence.state.deployment.nodes["n1"].security["host_key_presented_by"] == (
            record.provider_id
        )
        first = world.fleet.node(address)
        block = world.cloud.endpoints()["hetzner"]
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {block['token']}"}) as client:
            rebuilt = await client.post(
                f"{block['url']}/servers/{record.provider_id}/actions/rebuild", json={"image": record.image}
            )
        assert rebuilt.status_code == 201, rebuilt.text
        await until(lambda: address in world.fleet.addresses() and world.fleet.node(address) is not first)

        with pytest.raises(PinnedHostKeyRefusedError, match=r"legion server repin n1") as info:
            await parts.runtime.run("n1", "add")
        assert "\n" not in str(info.value)
        impostor = world.fleet.node(address)
        assert HOST_KEY_PATH not in impostor.system.files  # the host private key was not handed over
        assert impostor.system.phase == "cloud-image"

        await reopen_host_key_window(parts.persistence, "n1", reason="operator re-pinned node n1")
        done = await parts.runtime.run("n1", "add")
        assert done.status == "succeeded"
        pinned = parts.persistence.state.deployment.nodes["n1"].security["identity"]["host_key"]["public"]
        assert impostor.host_public_key.split()[:2] == pinned.split()[:2]
        assert parts.persistence.state.deployment.nodes["n1"].security["host_key_presented_by"] == (
            record.provider_id
        )


async def until(predicate: Callable[[], bool], *, rounds: int = 2000) -> None:
    """Let the sandbox run until ``predicate`` holds (bounded short waits, never a timing)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")
