"""``legion repairs`` and ``legion repairs run`` on a state with nothing deployed, and locked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_nothing_deployed_means_nothing_to_repair(legion: Legion, state: str) -> None:
    planned = legion("--state", state, "--json", "repairs")
    assert (planned.code, json.loads(planned.out)) == (0, [])
    assert legion("--state", state, "repairs").out == "nothing to repair\n"
    ran = legion("--state", state, "--json", "repairs", "run")
    assert (ran.code, json.loads(ran.out)) == (0, [])


def test_a_wrong_password_is_one_line(legion: Legion, state: str) -> None:
    result = legion("--state", state, "repairs", password="not it at all")
    assert result.code != 0 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1
