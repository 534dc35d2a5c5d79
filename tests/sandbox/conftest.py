"""Shared fixtures for sandbox tests: a world whose simulated work finishes in milliseconds."""

from __future__ import annotations

import pytest

from legion_nb.emulators.world import SandboxWorld, Timing


@pytest.fixture
def fast_world() -> SandboxWorld:
    """Actions and boots take 50 ms, so SDK waits stay quick (tests never assert on durations)."""
    return SandboxWorld(seed=7, timing=Timing(action_seconds=0.05, boot_seconds=0.05))
