"""A stream's state from its probes, as plain values."""

from __future__ import annotations

from legion_nb.engine.state.model import PlannedStream
from legion_nb.engine.stream_health import StreamProbe, StreamStatus, classify

FEED = PlannedStream("feed", "sat1", "tcp://127.0.0.1:9000")


def session(delivered: int, state: str = "running", error: str | None = None) -> dict[str, object]:
    return {"name": "feed", "state": state, "bytes": delivered, "error": error}


def fold(*probes: StreamProbe, planned: PlannedStream = FEED) -> list[StreamStatus]:
    statuses: list[StreamStatus] = []
    previous = None
    for probe in probes:
        previous = classify(previous, planned, probe)
        statuses.append(previous)
    return statuses


def test_progress_is_live_and_a_probe_without_progress_is_stalled_until_bytes_move_again() -> None:
    up = {"reachable": True, "latency_ms": 0.4}
    states = fold(
        StreamProbe(0.0),
        StreamProbe(1.0, session(0), **up),
        StreamProbe(2.0, session(4096), **up),
        StreamProbe(3.0, session(4096), **up),
        StreamProbe(5.0, session(4096), **up),
        StreamProbe(6.0, session(8192), **up),
    )
    assert [s.state for s in states] == ["starting", "starting", "live", "stalled", "stalled", "live"]
    assert states[3].reason == "no bytes delivered for 1 s"
    assert states[4].reason == "no bytes delivered for 3 s"
    assert (states[5].bytes, states[5].progressed_at, states[5].reason) == (8192, 6.0, None)


def test_failures_name_their_cause_and_a_planned_stop_is_stopped() -> None:
    (dead,) = fold(StreamProbe(1.0, satellite_error="satellite sat1 does not answer"))
    assert (dead.state, dead.reason) == ("failed", "satellite sat1 does not answer")
    (crashed,) = fold(StreamProbe(1.0, session(10, "failed", "encoder crashed"), reachable=True))
    assert (crashed.state, crashed.reason, crashed.bytes) == ("failed", "sender failed: encoder crashed", 10)
    (cut,) = fold(StreamProbe(1.0, session(10), reachable=False, endpoint_error="127.0.0.1:9000 refused"))
    assert (cut.state, cut.reason) == ("failed", "endpoint unreachable: 127.0.0.1:9000 refused")
    stopped = PlannedStream("feed", "sat1", "tcp://127.0.0.1:9000", running=False)
    (off,) = fold(StreamProbe(1.0), planned=stopped)
    assert (off.state, off.reason) == ("stopped", "stopped by the operator")
