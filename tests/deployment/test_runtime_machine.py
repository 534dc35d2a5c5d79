"""The phase machine alone, for every operation and every place it can stop (property tests).

The runtime is driven over a real persistence supervisor on an encrypted state, with phase services
that only record which phase ran (and fail, or get cancelled, once where the example says): what is
under test is the runtime's contract, not the node work. For any operation and any stopping phase:
every phase's start and end are durable in plan order up to the stop; the stop is recorded at that
phase (``failed`` or ``interrupted``, retryable); a resume runs the stopped phase again and then only
the phases after it, and ends ``succeeded``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtimekit import PASSWORD

from legion_nb.engine.deployment.phases import (
    PLANS,
    ROLES,
    NodeOperation,
    Phase,
    PhaseContext,
    PhaseHandler,
    execution_of,
)
from legion_nb.engine.deployment.runtime import DeploymentBusyError, OperationRunner
from legion_nb.engine.state.edits import track_server
from legion_nb.engine.state.model import LegionState, TrackedServer, empty_state, encode_state, utcnow
from legion_nb.engine.state.persistence import PersistenceSupervisor, StateChange
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.errors import NodeError

Stop = tuple[str, bool, str]


class StepRefused(NodeError):
    code = "test_step_refused"


class Scripted:
    """Phase services that record each phase run; ``stop_at`` fails or hangs (to be cancelled) once."""

    def __init__(
        self, state: PersistenceSupervisor[LegionState], stop_at: Phase | None, *, hang: bool
    ) -> None:
        self.state = state
        self.stop_at = stop_at
        self.hang = hang
        self.ran: list[Phase] = []
        self.inside = asyncio.Event()

    async def prepare(self, node: str, operation: NodeOperation) -> None:
        del node, operation  # nothing to prepare: these phases touch no material

    def handler(self, phase: Phase) -> PhaseHandler:
        async def perform(ctx: PhaseContext) -> None:
            self.ran.append(phase)
            if phase is Phase.PROVISION and ctx.node not in self.state.state.tracked.servers:
                record = TrackedServer(ctx.node, "hetzner", "42", utcnow(), cluster="alpha")
                await self.state.mutate(lambda s: (track_server(s, record), None), reason="test: track")
            if phase is self.stop_at:
                self.stop_at = None
                if self.hang:
                    self.inside.set()
                    await asyncio.Event().wait()
                raise StepRefused(f"node {ctx.node}: {phase} refused once")

        return perform


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStateStore]:
    path = tmp_path_factory.mktemp("machine") / "state.legion"
    opened = asyncio.run(SecureStateStore.create(Path(path), PASSWORD, encode_state(empty_state())))
    yield opened
    opened.close()


def initial(operation: NodeOperation) -> LegionState:
    """For ``add`` the server is not tracked yet; every other operation needs it tracked, with the
    role the operation is for."""
    state = empty_state()
    if operation is NodeOperation.ADD:
        return state
    record = TrackedServer("n1", "hetzner", "42", utcnow(), cluster="alpha", role=ROLES[operation])
    return replace(state, tracked=replace(state.tracked, servers={"n1": record}))


async def exercise(store: SecureStateStore, operation: NodeOperation, stop: int, *, hang: bool) -> None:
    plan = PLANS[operation]
    state = PersistenceSupervisor(store, initial(operation), encode_state)
    services = Scripted(state, plan[stop], hang=hang)
    runtime = OperationRunner(state, services)
    seen: list[Stop] = []

    def listener(change: StateChange[LegionState]) -> None:
        after = execution_of(change.after, "n1")
        if after is not None and after != execution_of(change.before, "n1"):
            seen.append((after.phase, after.phase_done, after.status))

    state.subscribe(listener)
    if hang:
        task = asyncio.create_task(runtime.run("n1", operation))
        inside = asyncio.create_task(services.inside.wait())
        await asyncio.wait({task, inside}, return_when=asyncio.FIRST_COMPLETED)
        assert inside.done() and not task.done(), "the run ended before reaching its stopping phase"
        with pytest.raises(DeploymentBusyError, match="is already running"):
            await runtime.run("n1", operation)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        with pytest.raises(StepRefused, match="refused once"):
            await runtime.run("n1", operation)

    expected: list[Stop] = []
    for phase in plan[:stop]:
        expected += [(phase.value, False, "running"), (phase.value, True, "running")]
    expected += [
        (plan[stop].value, False, "running"),
        (plan[stop].value, False, "interrupted" if hang else "failed"),
    ]
    assert seen == expected
    stopped = runtime.execution("n1")
    assert stopped is not None and stopped.retryable and stopped.operation == operation.value

    done = await runtime.resume("n1")
    assert done.status == "succeeded" and done.started == stopped.started
    assert services.ran == [*plan[: stop + 1], *plan[stop:]]
    assert seen[-1] == (plan[-1].value, True, "succeeded")
    # No aclose: it would close the module's store, which the next example writes through.


@settings(max_examples=40, deadline=None)
@given(
    operation=st.sampled_from(list(NodeOperation)),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    hang=st.booleans(),
)
def test_property_any_stop_is_recorded_and_resume_runs_the_rest(
    store: SecureStateStore, operation: NodeOperation, where: float, hang: bool
) -> None:
    stop = int(where * len(PLANS[operation]))
    asyncio.run(exercise(store, operation, stop, hang=hang))


async def test_a_second_cancellation_still_lands_the_interrupted_record_before_settle_returns(
    tmp_path: Path,
) -> None:
    """A closing session cancels an actor twice (its task, then the group): the first cancellation
    starts the ``interrupted`` write under a shield, the second leaves the run at once - and
    ``settle`` is what the session awaits so the record lands before the state closes."""
    store = await SecureStateStore.create(tmp_path / "state.legion", PASSWORD, encode_state(empty_state()))
    try:
        state = PersistenceSupervisor(store, empty_state(), encode_state)
        services = Scripted(state, Phase.OS_INSTALL, hang=True)
        runtime = OperationRunner(state, services)
        task = asyncio.create_task(runtime.run("n1", NodeOperation.ADD))
        await services.inside.wait()
        task.cancel()
        while not runtime._stopping:  # the first cancellation reached the shielded write
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await runtime.settle()
        stopped = runtime.execution("n1")
        assert stopped is not None
        assert (stopped.phase, stopped.status, stopped.retryable) == ("os_install", "interrupted", True)
        assert not runtime._stopping
    finally:
        store.close()
