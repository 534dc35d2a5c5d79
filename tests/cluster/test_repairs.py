"""The repair budget and node reports as plain values."""

from __future__ import annotations

from legion_nb.engine.cluster.repairs import NodeReport, RepairBudget, RepairTarget, report_of

TARGET = RepairTarget("n1", "reconfigure", ("membership: node lacks peer n2",))


def test_a_report_keeps_what_the_node_said_and_leaves_the_rest_unknown() -> None:
    body = {"membership": ["n3", "n2"], "nbde": {"mode": "quorum", "tang": ["n2"]}}
    assert report_of("n1", body) == NodeReport("n1", ("n2", "n3"), ("n2",))
    assert report_of("n1", {"membership": "n2", "nbde": None}) == NodeReport("n1", None, None)


def test_the_budget_backs_off_doubling_and_stops_at_its_hourly_limit() -> None:
    budget = RepairBudget(per_hour=3, backoff=100.0)
    assert budget.decide(TARGET, 0.0).action == "run"
    budget.attempted("n1", 0.0)
    held = budget.decide(TARGET, 99.0)
    assert (held.action, held.held_because, held.next_attempt) == (
        "held",
        "backing off 100 s after attempt 1",
        100.0,
    )
    budget.attempted("n1", 100.0)
    assert budget.decide(TARGET, 299.0).action == "held"  # 200 s after the second
    budget.attempted("n1", 300.0)
    spent = budget.decide(TARGET, 3000.0)
    assert spent.held_because == "budget spent: 3 attempts on n1 in the last hour"
    assert spent.next_attempt == 3600.0
    assert budget.decide(TARGET, 3600.0).action == "run"


def test_a_node_found_clean_starts_over() -> None:
    budget = RepairBudget(per_hour=1, backoff=100.0)
    budget.attempted("n1", 0.0)
    budget.settle(["n1"])
    assert budget.attempts("n1") == 0
    assert budget.decide(TARGET, 1.0).action == "run"


def test_the_recorded_attempts_keep_the_window_and_restore_the_same_decisions() -> None:
    budget = RepairBudget(per_hour=3, backoff=100.0)
    budget.attempted("n1", 0.0)
    budget.attempted("n1", 200.0)
    budget.attempted("n2", 10.0)

    assert budget.recorded(300.0) == {"n1": (0.0, 200.0), "n2": (10.0,)}
    assert budget.recorded(3615.0) == {"n1": (200.0,)}  # an attempt that left the hour is dropped

    again = RepairBudget(per_hour=3, backoff=100.0)
    again.restore(budget.recorded(300.0))
    for now in (250.0, 399.0, 400.0):
        assert again.decide(TARGET, now) == budget.decide(TARGET, now)
    assert again.decide(TARGET, 399.0).held_because == "backing off 200 s after attempt 2"
