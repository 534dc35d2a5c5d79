"""Running the ``legion`` command in a child process, the way an operator's shell runs it.

Why: the CLI tests drive the real entry point (``python -m legion_nb``) and judge its exit code and
output; one runner keeps their timeout, captured text and failure message alike. It lives at the top
of ``tests/`` (on pytest's ``pythonpath``) so that every test folder imports it by name.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

TIMEOUT = 120
"""Seconds a single ``legion`` command may take before the test fails instead of hanging."""


def run_legion(
    *args: str, env: Mapping[str, str], stdin: str = "", timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``legion ARGS`` in a child process with ``env``, ``stdin`` fed to it; its exit code is not judged."""
    return subprocess.run(
        [sys.executable, "-m", "legion_nb", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env),
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``result`` when the command succeeded; otherwise the test fails showing its output."""
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result
