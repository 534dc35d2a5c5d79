"""Operators' loops: many ``legion`` writers at once all land, none is refused for being second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Legion = Callable[..., Any]  # the ``legion`` fixture of conftest.py


def test_ten_parallel_writers_are_all_acknowledged_and_all_present(
    state: str, legion: Legion, password: str
) -> None:
    # Before: 1 of 10 succeeded; 9 failed with StateConflictError (each had loaded the same generation).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGION_")}
    env["LEGION_PASSWORD"] = password
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "legion_nb",
                "--state",
                state,
                "plan",
                "server",
                "add",
                f"node-{n}",
                "--provider",
                "hetzner",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(10)
    ]
    outcomes = [(writer.wait(timeout=300), *writer.communicate()) for writer in writers]
    assert [code for code, _out, _err in outcomes] == [0] * 10, [err for _code, _out, err in outcomes]
    shown = legion("--state", state, "--json", "plan", "show")
    assert shown.code == 0, shown.err
    servers = json.loads(shown.out)["clusters"]["default"]["servers"]
    assert sorted(servers) == sorted(f"node-{n}" for n in range(10))


def test_lock_timeout_is_a_global_option_checked_up_front(state: str, legion: Legion, tmp_path: Path) -> None:
    assert (
        legion(
            "--state", state, "--lock-timeout", "0.5", "plan", "server", "add", "a1", "--provider", "ovh"
        ).code
        == 0
    )
    refused = legion("--state", state, "--lock-timeout", "soon", "status")
    assert refused.code == 2
    assert "'soon' is not a number of seconds" in refused.err and len(refused.err.strip().splitlines()) == 1
