"""Node health classification: pure rules over polls."""

from __future__ import annotations

from legion_nb.engine.node_health import NodeHealth, NodeProbe, classify, probe_of

ALL_UP = {"tribes": "active", "tribes-sync": "active", "tang": "active"}


def _ok(at: float, **overrides: object) -> NodeProbe:
    fields: dict[str, object] = {"ready": True, "services": ALL_UP, "sampled_at": at - 5}
    fields["sample_interval"] = 15.0
    fields.update(overrides)
    return NodeProbe("n1", at, **fields)  # type: ignore[arg-type]


def test_a_healthy_node() -> None:
    verdict = classify(None, _ok(100.0), interval=30)
    assert verdict == NodeHealth("n1", "healthy", 100.0, None, 0, 100.0)


def test_a_stopped_tribes_is_unhealthy_at_once_with_the_reason() -> None:
    previous = classify(None, _ok(100.0), interval=30)
    probe = _ok(
        130.0,
        services={**ALL_UP, "tribes": "inactive", "tribes-sync": "inactive"},
        ready=False,
        failing=("tribes",),
    )
    verdict = classify(previous, probe, interval=30)
    assert verdict.health == "unhealthy"
    assert verdict.reason == "tribes is inactive; peer sync (4413) is inactive; not ready (failing: tribes)"
    assert classify(verdict, _ok(160.0), interval=30).reason is None  # restored: the reason clears


def test_one_missed_poll_keeps_the_verdict_two_make_it_unreachable() -> None:
    healthy = classify(None, _ok(100.0), interval=30)
    missed = classify(healthy, NodeProbe("n1", 130.0, error="timed out"), interval=30)
    assert (missed.health, missed.reason, missed.misses, missed.checked_at) == ("healthy", None, 1, 130.0)
    twice = classify(missed, NodeProbe("n1", 160.0, error="timed out"), interval=30)
    assert twice.health == "unreachable" and twice.reason is not None
    assert "2 polls in a row" in twice.reason and "timed out" in twice.reason
    back = classify(twice, _ok(190.0), interval=30)
    assert (back.health, back.misses) == ("healthy", 0)


def test_a_miss_keeps_an_unhealthy_verdict_too() -> None:
    unhealthy = classify(None, _ok(100.0, services={**ALL_UP, "tribes": "inactive"}), interval=30)
    missed = classify(unhealthy, NodeProbe("n1", 130.0, error="HTTP 500"), interval=30)
    assert (missed.health, missed.reason) == ("unhealthy", "tribes is inactive")


def test_a_first_poll_that_misses_is_unreachable_at_once() -> None:
    # With no earlier verdict there is nothing to keep: the node never answered.
    assert classify(None, NodeProbe("n1", 1.0, error="refused"), interval=30).health == "unreachable"


def test_stale_metrics_after_two_intervals_of_the_longer_clock() -> None:
    fresh = classify(None, _ok(100.0, sampled_at=100.0 - 29), interval=1.0)  # 2 x 15 s sampling
    assert fresh.health == "healthy"
    stale = classify(None, _ok(100.0, sampled_at=100.0 - 61), interval=30.0)
    assert (stale.health, stale.reason) == ("degraded", "metrics stale (newest sample 61 s old)")


def test_tang_not_serving_degrades() -> None:
    verdict = classify(None, _ok(1.0, services={**ALL_UP, "tang": "inactive"}), interval=30)
    assert (verdict.health, verdict.reason) == ("degraded", "tang is inactive")


def test_probe_of_reads_the_admin_api_bodies() -> None:
    probe = probe_of(
        "n1",
        50.0,
        health={"services": {"tribes": "active"}},
        readiness=(False, ("tribes",)),
        metrics={"sampled_at_ms": 45_000, "sample_interval_ms": 15_000},
    )
    assert probe == NodeProbe("n1", 50.0, None, False, ("tribes",), {"tribes": "active"}, 45.0, 15.0)
    assert probe_of("n1", 1.0, health={"services": "junk"}).services == {}
