"""legion-nb: operate Tribes clusters on Hetzner, OVH and Scaleway from Jupyter, the CLI or a daemon.

The public face is deliberately small. ``import legion_nb`` imports nothing heavy (no pandas, httpx,
aiohttp, asyncssh or widgets): everything is imported inside the functions that need it, so the CLI
and notebooks start fast.

    engine = await legion_nb.open("~/ops/state.legion")     # creates the state if needed, unlocks it
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legion_nb.engine.daemon.client import RemoteEngine
    from legion_nb.engine.runtime import Engine
    from legion_nb.widgets import Dashboard, EventSource

__all__ = ["__version__", "connect", "open", "sandbox", "show"]

# cryptography 51 deprecates DSA, and asyncssh names DSA types in annotations its modules evaluate at
# import time. The warning fires on import, whatever key an operator uses (Legion itself makes ed25519
# keys only), so it tells nobody anything; left alone it lands on stderr of every CLI command and in every
# notebook that opens a node session. The filter matches only that message raised from asyncssh's
# crypto modules, so any other deprecation still shows.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh\.crypto\.")

__version__ = "0.1.0"


async def open(state: str | os.PathLike[str] | None = None, *, password: str | None = None) -> Engine:
    """An unlocked engine for ``state`` (default: ``LEGION_STATE`` or the user data dir).

    A missing state is created (bootstrapped) with ``password``; an existing one is unlocked with it.
    Without ``password`` it is asked for with :func:`getpass.getpass`, so it never sits in a notebook
    cell. Raises :class:`~legion_nb.errors.WrongPasswordError` and the other
    :class:`~legion_nb.errors.StateError` kinds.
    """
    from legion_nb.engine.paths import resolve_state_path  # noqa: PLC0415
    from legion_nb.engine.runtime import create_engine  # noqa: PLC0415

    path = resolve_state_path(state)
    if password is None:
        import getpass  # noqa: PLC0415

        password = getpass.getpass(f"Password for {path}: ")
    engine = create_engine(path)
    try:
        if engine.state_exists():
            await engine.unlock(password)
        else:
            await engine.bootstrap(password)
    except BaseException:
        await engine.aclose()
        raise
    return engine


async def connect(state: str | os.PathLike[str] | None = None, *, token: str | None = None) -> RemoteEngine:
    """The engine of the local daemon serving ``state``, reached with its token (``legion daemon start``).

    ``token`` defaults to ``LEGION_DAEMON_TOKEN``. The result implements the same
    :class:`~legion_nb.engine.surface.EngineAPI` as the engine :func:`open` gives, with the same typed
    results (``await remote.plan_show()`` is a ``Scheme``) and ``subscribe()``; close it with
    ``await remote.aclose()``. Inside a runbook run (``state`` and ``token`` not given,
    ``LEGION_RUNBOOK_CHANNEL`` set by the runner) it is the running engine, reached through the run's
    private channel (see docs/security.md).

    Raises :class:`~legion_nb.errors.DaemonNotRunningError` when no daemon serves that state and
    :class:`~legion_nb.errors.DaemonAuthError` when it refuses the token.
    """
    from legion_nb.engine.daemon.client import connect as connect_daemon  # noqa: PLC0415
    from legion_nb.engine.runbooks.channel import CHANNEL_ENV, connect_channel  # noqa: PLC0415

    channel = os.environ.get(CHANNEL_ENV)
    if channel and state is None and token is None:
        return await connect_channel(channel)
    return await connect_daemon(state, token=token)


async def sandbox(**options: Any) -> Engine:
    """An unlocked engine on a throwaway state, wired to an in-process sandbox cloud.

    The three provider emulators run on 127.0.0.1 and their credentials are stored in the state, so
    plan, materialize and the panels work with no provider account and no traffic leaving the
    machine. ``await engine.aclose()`` stops the sandbox too. ``options`` (``seed``, ``latency_ms``,
    ``fault_rate``, ``action_seconds``, ``boot_seconds``, ...) are those of
    :func:`legion_nb.sandbox_engine.sandbox`.
    """
    from legion_nb.sandbox_engine import sandbox as start_sandbox  # noqa: PLC0415

    return await start_sandbox(**options)


def show(engine: EventSource, **options: Any) -> Dashboard:
    """The live panels (resources, plan diff, activity) for ``engine``; the last line of a cell shows them.

    ``engine`` is an in-process engine or a daemon client; the panels follow its snapshot and activity
    streams until ``close()``. ``options`` go to each panel (e.g. ``min_interval=0.25``).
    """
    from legion_nb.widgets import show as show_panels  # noqa: PLC0415 - widgets are heavy to import

    return show_panels(engine, **options)
