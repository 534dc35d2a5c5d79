"""``legion stream``: an empty list, and a stream refused on a server that is no satellite."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_no_streams_then_a_cluster_node_refuses_one(legion: Legion, state: str) -> None:
    s = ("--state", state)
    assert json.loads(legion(*s, "--json", "stream", "list").out) == []
    assert legion(*s, "stream", "list").out.startswith("no streams planned")
    assert legion(*s, "plan", "server", "add", "c1", "--provider", "hetzner").code == 0

    refused = legion(*s, "stream", "start", "c1", "feed", "tcp://127.0.0.1:9")

    assert refused.code != 0 and refused.out == ""
    assert "streams run on satellites" in refused.err and len(refused.err.strip().splitlines()) == 1
    assert json.loads(legion(*s, "--json", "stream", "list").out) == []
