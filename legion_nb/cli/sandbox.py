"""``legion sandbox serve``: run the three provider emulators on loopback until told to stop.

Once every emulator accepts connections it prints ONE line: with ``--json`` the GUIDE §3 endpoints
document, otherwise a short human summary (credentials only in ``--json``, which is meant for piping
into ``legion credentials set``). SIGINT and SIGTERM stop it cleanly with exit 0.

Without ``--seed`` the seed is random, so the generated credentials cannot be guessed by another local
user; pass ``--seed`` for a reproducible run.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext
from legion_nb.errors import UsageError

if TYPE_CHECKING:
    import asyncio

__all__ = ["register"]


def register(sub: Any) -> None:
    sandbox = sub.add_parser("sandbox", help="the embedded default cloud (provider emulators on 127.0.0.1)")
    commands = sandbox.add_subparsers(dest="sandbox_command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the Hetzner, Scaleway and OVH emulators until stopped")
    serve.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the endpoints as one JSON line"
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.0/8)")
    serve.add_argument("--latency-ms", type=float, default=0.0, metavar="N", help="added to every request")
    serve.add_argument(
        "--fault-rate", type=float, default=0.0, metavar="F", help="fraction of API calls failing"
    )
    serve.add_argument(
        "--seed", type=int, default=None, metavar="S", help="reproduce a run (default: random)"
    )
    serve.add_argument(
        "--history-days",
        type=int,
        default=0,
        metavar="N",
        help="give the accounts N days of back-dated billing history",
    )
    for provider in ("hetzner", "scaleway", "ovh"):
        serve.add_argument(f"--{provider}-port", type=int, default=0, metavar="PORT", help=argparse.SUPPRESS)
    serve.set_defaults(handler=serve_command)


async def serve_command(ctx: CliContext, args: argparse.Namespace) -> int:
    # Imported here so that 'legion --help' stays fast and the sandbox loads only when used.
    import secrets  # noqa: PLC0415

    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415
    from legion_nb.emulators.faults import FaultPlan  # noqa: PLC0415
    from legion_nb.emulators.httpkit import ensure_loopback  # noqa: PLC0415
    from legion_nb.emulators.world import SandboxWorld, Timing  # noqa: PLC0415

    as_json = ctx.json or bool(getattr(args, "json", False))
    try:
        host = ensure_loopback(args.host)
    except ValueError as exc:
        raise UsageError(f"--host: {exc}") from exc
    if not math.isfinite(args.latency_ms) or args.latency_ms < 0:
        raise UsageError("--latency-ms must be a non-negative number of milliseconds")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise UsageError("--fault-rate must be a fraction between 0 and 1, e.g. 0.05")
    if args.history_days < 0:
        raise UsageError("--history-days must be 0 or a positive number of days")
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    world = SandboxWorld(
        seed,
        timing=Timing(latency_ms=args.latency_ms),
        faults=FaultPlan(rate=args.fault_rate, seed=seed),
        history_days=args.history_days,
    )
    ports = {
        p: getattr(args, f"{p}_port") for p in ("hetzner", "scaleway", "ovh") if getattr(args, f"{p}_port")
    }
    cloud = SandboxCloud(world, host=host, ports=ports)
    try:
        await cloud.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}: {exc.strerror or exc}; pick other ports or a free host"
        ) from exc
    try:
        stop = _stop_on_signals()
        endpoints = cloud.endpoints()
        if as_json:
            sys.stdout.write(json.dumps(endpoints) + "\n")
        else:
            urls = ", ".join(f"{name} {block['url']}" for name, block in endpoints.items())
            sys.stdout.write(f"sandbox serving (seed {seed}): {urls}; Ctrl-C to stop\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await cloud.aclose()
    return 0


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (signal handlers on Unix, ``signal.signal`` elsewhere)."""
    import asyncio  # noqa: PLC0415 - kept off the start-up path of every other command

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows event loops have no add_signal_handler
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(stop.set))
    return stop
