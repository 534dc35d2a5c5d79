"""Where legion-nb keeps things on the operator's machine."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_state_path", "log_dir_for", "node_locks_dir_for", "resolve_state_path"]

STATE_ENV = "LEGION_STATE"
STATE_FILENAME = "state.legion"


def default_state_path() -> Path:
    """The platform's per-user data directory, e.g. ``~/.local/share/legion-nb/state.legion``."""
    from platformdirs import user_data_path  # noqa: PLC0415 - keeps CLI start-up light

    return user_data_path("legion-nb", appauthor=False) / STATE_FILENAME


def resolve_state_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--state`` wins, then ``LEGION_STATE``, then the platform default."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return default_state_path()


def log_dir_for(state_path: Path) -> Path:
    """Logs, telemetry databases and traces live beside the state they belong to."""
    return state_path.parent / f"{state_path.stem}.logs"


def node_locks_dir_for(state_path: Path) -> Path:
    """The locks a process holds while it runs node operations on the state (``deployment.liveness``)."""
    return state_path.parent / f"{state_path.stem}.operations"
