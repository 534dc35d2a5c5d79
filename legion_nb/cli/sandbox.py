"""``legion sandbox serve``: run the three provider emulators on loopback until told to stop.

It also starts simulated nodes (real SSH and an mTLS admin API on each running server's loopback
address) unless ``--no-nodes``; each node starts with ``--node-history-hours`` of back-dated
metrics and journal (as many as ``legion_nb.sandbox()`` gives by default), which ``legion observe``
backfills, in pages of at most ``--node-page-limit`` lines or sampling steps when given. With
``--store-credentials`` it writes the three providers' endpoints and credentials into the state
(unlocked with ``--password-stdin`` or the environment, or through the daemon with its token) and
links the state to the served nodes (:func:`~legion_nb.sandbox_engine.write_sandbox_link`), so the
whole CLI flow is: serve in one shell; ``legion plan ...``, ``legion materialize --yes`` and
``legion terminal NAME`` in another.
The link is removed when the sandbox stops.

Once every emulator accepts connections it prints ONE line: with ``--json`` the GUIDE §3 endpoints
document, otherwise a short human summary (credentials only in ``--json``). SIGINT and SIGTERM stop
it cleanly with exit 0.

Without ``--seed`` the seed is random, so the generated credentials cannot be guessed by another local
user; pass ``--seed`` for a reproducible run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion_nb.cli.context import CliContext
from legion_nb.errors import UsageError

if TYPE_CHECKING:
    from legion_nb.sandbox_engine import NodeLink

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
    serve.add_argument(
        "--no-nodes", action="store_true", help="serve the provider APIs only, no simulated nodes"
    )
    serve.add_argument(
        "--store-credentials",
        action="store_true",
        help="write the endpoints and credentials into the state and link it to the nodes",
    )
    serve.add_argument(
        "--node-seconds",
        type=float,
        default=0.05,
        metavar="S",
        help="how long each simulated install step takes",
    )
    serve.add_argument(
        "--node-history-hours",
        type=float,
        default=None,
        metavar="H",
        help="back-dated metrics and journal each simulated node starts with (default: 26)",
    )
    serve.add_argument(
        "--node-page-limit",
        type=int,
        default=None,
        metavar="N",
        help="at most N journal lines or sampling steps per node admin API page (default: the API's caps)",
    )
    for provider in ("hetzner", "scaleway", "ovh"):
        serve.add_argument(f"--{provider}-port", type=int, default=0, metavar="PORT", help=argparse.SUPPRESS)
    serve.set_defaults(handler=serve_command)


async def serve_command(ctx: CliContext, args: argparse.Namespace) -> int:
    # Imported here so that 'legion --help' stays fast and the sandbox loads only when used.
    import secrets  # noqa: PLC0415
    from dataclasses import replace  # noqa: PLC0415

    from legion_nb.cli.signals import stop_on_signals  # noqa: PLC0415
    from legion_nb.emulators.cloud import SandboxCloud  # noqa: PLC0415
    from legion_nb.emulators.faults import FaultPlan  # noqa: PLC0415
    from legion_nb.emulators.httpkit import ensure_loopback  # noqa: PLC0415
    from legion_nb.emulators.world import SandboxWorld, Timing  # noqa: PLC0415
    from legion_nb.sandbox_engine import node_fleet  # noqa: PLC0415

    as_json = ctx.json or bool(getattr(args, "json", False))
    try:
        host = ensure_loopback(args.host)
    except ValueError as exc:
        raise UsageError(f"--host: {exc}") from exc
    _check_numbers(args)
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
    fleet, link = (
        (None, None)
        if args.no_nodes
        else node_fleet(
            args.node_seconds,
            seed=seed,
            history_hours=args.node_history_hours,
            page_limit=args.node_page_limit,
        )
    )
    cloud = SandboxCloud(world, host=host, ports=ports, nodes=fleet)
    try:
        await cloud.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}: {exc.strerror or exc}; pick other ports or a free host"
        ) from exc
    link_path = None
    try:
        stop = stop_on_signals()
        endpoints = cloud.endpoints()
        if fleet is not None and link is not None:
            receiver = await fleet.start_receiver()
            link = replace(link, receiver=receiver.url())
        if args.store_credentials:
            link_path = await _store_credentials(ctx, endpoints, link)
        if as_json:
            sys.stdout.write(json.dumps(endpoints) + "\n")
        else:
            urls = ", ".join(f"{name} {block['url']}" for name, block in endpoints.items())
            nodes = "no simulated nodes" if link is None else f"stream receiver {link.receiver}"
            stored = f"; credentials stored in {ctx.state_path}" if args.store_credentials else ""
            sys.stdout.write(f"sandbox serving (seed {seed}): {urls}; {nodes}{stored}; Ctrl-C to stop\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        if link_path is not None:
            link_path.unlink(missing_ok=True)
        await cloud.aclose()
    if not as_json:
        # What a stop leaves behind: whatever the state tracked there is gone with the sandbox.
        stored = (
            f"; the endpoints stored in {ctx.state_path} answer again after the next "
            "'legion sandbox serve --store-credentials'"
            if args.store_credentials
            else ""
        )
        sys.stdout.write(f"sandbox stopped: its servers and nodes are gone{stored}\n")
    return 0


def _check_numbers(args: argparse.Namespace) -> None:
    """One :class:`UsageError` line for the first numeric option out of range."""
    if not math.isfinite(args.latency_ms) or args.latency_ms < 0:
        raise UsageError("--latency-ms must be a non-negative number of milliseconds")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise UsageError("--fault-rate must be a fraction between 0 and 1, e.g. 0.05")
    if args.history_days < 0:
        raise UsageError("--history-days must be 0 or a positive number of days")
    if not math.isfinite(args.node_seconds) or args.node_seconds < 0:
        raise UsageError("--node-seconds must be a non-negative number of seconds")
    hours = args.node_history_hours
    if hours is not None and (not math.isfinite(hours) or hours < 0):
        raise UsageError("--node-history-hours must be 0 or a positive number of hours, e.g. 26")
    if args.node_page_limit is not None and args.node_page_limit < 1:
        raise UsageError("--node-page-limit must be a positive number of lines or steps, e.g. 50")


async def _store_credentials(
    ctx: CliContext, endpoints: dict[str, dict[str, str]], link: NodeLink | None
) -> Path | None:
    """The served endpoints and credentials into the state; the link to the nodes beside it."""
    from legion_nb.sandbox_engine import sandbox_link_path, write_sandbox_link  # noqa: PLC0415

    async with ctx.api() as api:
        for name, block in endpoints.items():
            fields = {key: value for key, value in block.items() if key != "url"}
            await api.credentials_set(name, fields, endpoint=block["url"])
    if link is None:
        sandbox_link_path(ctx.state_path).unlink(missing_ok=True)  # no nodes: no stale link either
        return None
    return write_sandbox_link(ctx.state_path, link)
