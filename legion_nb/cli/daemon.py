"""``legion daemon start|run|stop|status``: keep one unlocked engine warm for this user's CLI calls.

``run`` is the daemon itself, in the foreground, for a user service manager or a terminal.
``start`` launches ``run`` detached: it hands the password (and the token) over through a pipe,
never argv or the environment, where other processes could read them, waits until the daemon
accepts connections, and prints ``{"endpoint", "pid", "token"}`` once as JSON. Other commands then
use the daemon when given the token (``--daemon-token`` or ``LEGION_DAEMON_TOKEN``).

While it serves, the daemon holds the state's writer lock (:mod:`legion_nb.engine.state.filelock`):
a write without the token is refused at once with a line naming ``LEGION_DAEMON_TOKEN`` instead of
landing behind the daemon's back, so the daemon's state never goes stale.

Only argparse-level imports at the top: see :mod:`legion_nb.cli.main`.
"""

from __future__ import annotations

import argparse
from typing import Any

from legion_nb.cli.context import CliContext

__all__ = ["register"]

_READY_TIMEOUT = 120.0  # unlocking runs Argon2id; a loaded machine may take a while
_STOP_TIMEOUT = 30.0


def register(sub: Any) -> None:
    parser = sub.add_parser("daemon", help="run one unlocked engine that CLI calls and notebooks reuse")
    actions = parser.add_subparsers(dest="daemon_action", metavar="ACTION")
    start = actions.add_parser("start", help="start a detached daemon; prints endpoint, pid and token once")
    start.set_defaults(handler=_start)
    run = actions.add_parser("run", help="run the daemon in the foreground until SIGTERM or shutdown")
    run.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the token from the stdin line after the password (else --daemon-token, env, or a new one)",
    )
    run.add_argument("--detach-handoff", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)
    stop = actions.add_parser("stop", help="stop the daemon serving this state")
    stop.set_defaults(handler=_stop)
    status = actions.add_parser("status", help="whether a daemon serves this state (more with the token)")
    status.set_defaults(handler=_status)


async def _run(ctx: CliContext, args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415
    import contextlib  # noqa: PLC0415
    import json  # noqa: PLC0415
    import logging  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from legion_nb.engine.daemon.endpoint import endpoint_for  # noqa: PLC0415
    from legion_nb.engine.daemon.host import DaemonReady, serve  # noqa: PLC0415
    from legion_nb.engine.daemon.protocol import new_token, validate_token  # noqa: PLC0415
    from legion_nb.engine.redaction import install_log_filter  # noqa: PLC0415
    from legion_nb.engine.runtime import create_engine  # noqa: PLC0415
    from legion_nb.engine.state.store import claim_writer  # noqa: PLC0415

    # Held only until the unlock: the daemon serves for days, the password need not live that long.
    password_holder = [ctx.password()]
    supplied = _first_line(ctx.stdin_rest()) if args.token_stdin else ctx.token()
    token = validate_token(supplied) if supplied else new_token()
    endpoint = endpoint_for(ctx.state_path)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_filter()  # the daemon log never holds a secret of the state it serves
    follower = _SandboxFollower(ctx.state_path)

    async def open_engine() -> Any:
        # The daemon is the state's only writer while it serves, claimed before it reads the state:
        # a write that bypasses it is refused at once (naming LEGION_DAEMON_TOKEN), so its own
        # state can never go stale behind its back.
        claim = await asyncio.to_thread(claim_writer, ctx.state_path, timeout=ctx.lock_timeout)

        async def release() -> None:
            claim.release()

        settings = follower.link.current()  # a linked sandbox: its nodes' ports
        engine = create_engine(ctx.state_path, settings, lock_timeout=ctx.lock_timeout)
        engine.at_close(release)
        try:
            await engine.unlock(password_holder.pop())
        except BaseException:
            await engine.aclose()
            raise
        follower.engine = engine
        return engine

    def ready(info: DaemonReady) -> None:
        line: dict[str, Any] = {"endpoint": info.endpoint, "pid": info.pid}
        if not supplied:
            line["token"] = info.token  # the only way its owner learns a generated token
        sys.stdout.write(json.dumps(line, sort_keys=True) + "\n")
        sys.stdout.flush()
        if args.detach_handoff:
            _hand_off_stdio(endpoint.log_path)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Windows has no loop signal handlers: there Ctrl+C arrives as KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await serve(endpoint, open_engine, token, on_ready=ready, stop=stop, before_call=follower.follow)
    return 0


class _SandboxFollower:
    """Keeps the daemon's engine on the sandbox its state is linked to.

    A sandbox served (or stopped, or restarted on new ports) after the daemon started changes the
    link beside the state; before each call the engine takes the link's settings, so the call
    reaches the nodes that serve now (:class:`~legion_nb.sandbox_engine.SandboxLinkWatch`).
    """

    def __init__(self, state_path: Any) -> None:
        from legion_nb.sandbox_engine import SandboxLinkWatch  # noqa: PLC0415

        self.link = SandboxLinkWatch(state_path)
        self.engine: Any = None  # set once the daemon has unlocked it

    async def follow(self) -> None:
        if self.engine is not None:
            await self.link.follow(self._use)

    async def _use(self, settings: Any) -> bool:
        import logging  # noqa: PLC0415

        from legion_nb.engine.session import SessionSettings  # noqa: PLC0415
        from legion_nb.errors import ApplyRunningError  # noqa: PLC0415

        log = logging.getLogger("legion_nb.daemon")
        try:
            await self.engine.use_settings(settings or SessionSettings())
        except ApplyRunningError:  # a materialize runs on the old settings: follow after it
            log.info("the sandbox link changed during a materialize: followed at a later call")
            return False
        log.info("the sandbox link %s changed: the engine follows it", self.link.path)
        return True


def _first_line(text: str) -> str:
    from legion_nb.errors import UsageError  # noqa: PLC0415

    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise UsageError("--token-stdin given but no token line follows the password on stdin")
    return lines[0].strip()


def _hand_off_stdio(log_path: Any) -> None:
    """After readiness the starter stops listening: point stdout at nothing, stderr at the log."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    null_fd = os.open(os.devnull, os.O_RDWR)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(null_fd, 0)
    os.dup2(null_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)


async def _start(ctx: CliContext, args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from legion_nb.cli.context import DAEMON_TOKEN_ENV, PASSWORD_ENV  # noqa: PLC0415
    from legion_nb.engine.daemon.host import DaemonAlreadyRunningError  # noqa: PLC0415
    from legion_nb.engine.daemon.protocol import new_token, validate_token  # noqa: PLC0415
    from legion_nb.errors import DaemonError  # noqa: PLC0415

    running = await _live_pid(ctx)
    if running is not None:
        raise DaemonAlreadyRunningError(
            f"a daemon (pid {running}) already serves this state: stop it with 'legion daemon stop'"
        )
    supplied = ctx.token()
    token = validate_token(supplied) if supplied else new_token()
    password = ctx.password()
    env = {k: v for k, v in os.environ.items() if k not in (PASSWORD_ENV, DAEMON_TOKEN_ENV)}
    command = [
        sys.executable,
        "-m",
        "legion_nb",
        "--state",
        str(ctx.state_path),
        "--password-stdin",
        "--lock-timeout",
        repr(ctx.lock_timeout),
        "daemon",
        "run",
        "--token-stdin",
        "--detach-handoff",
    ]
    detach: dict[str, Any] = {"start_new_session": True}
    if sys.platform == "win32":
        detach = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
    # Our own interpreter with fixed arguments; waited for in threads, never blocking the loop.
    child = subprocess.Popen(  # noqa: S603, ASYNC220
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **detach
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    try:
        child.stdin.write(f"{password}\n{token}\n".encode())
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; its stderr says why, read below
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), _READY_TIMEOUT)
    except TimeoutError as exc:
        child.kill()
        raise DaemonError(
            f"the daemon did not become ready within {_READY_TIMEOUT:.0f} s: it was stopped"
        ) from exc
    if not line:
        code = await asyncio.to_thread(child.wait)
        reason = (await asyncio.to_thread(child.stderr.read)).decode(errors="replace").strip().splitlines()
        message = reason[-1].removeprefix("legion: ") if reason else f"the daemon exited with status {code}"
        failure = DaemonError(f"the daemon did not start: {message}")
        failure.exit_code = code if 0 < code < 128 else failure.exit_code  # e.g. 3 for a wrong password
        raise failure
    child.stdout.close()
    child.stderr.close()
    ready = json.loads(line)
    sys.stdout.write(json.dumps({"endpoint": ready["endpoint"], "pid": ready["pid"], "token": token}) + "\n")
    sys.stdout.flush()
    return 0


async def _stop(ctx: CliContext, args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from legion_nb.engine.daemon.client import connect_if_alive  # noqa: PLC0415
    from legion_nb.engine.daemon.metadata import pid_alive  # noqa: PLC0415
    from legion_nb.errors import DaemonError, DaemonNotRunningError  # noqa: PLC0415

    pid = await _live_pid(ctx)
    if pid is None:
        raise DaemonNotRunningError(f"no daemon is running for {ctx.state_path}")
    token = ctx.token()
    if token:
        remote = await connect_if_alive(ctx.state_path, token)
        if remote is not None:
            async with remote:
                await remote.shutdown()
    elif sys.platform == "win32":
        raise DaemonError("stopping a daemon on Windows needs its token: pass --daemon-token")
    else:
        # Only the owner can read the metadata or signal the pid: a token adds nothing here.
        os.kill(pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _STOP_TIMEOUT
    # Another process: there is nothing to await but its end.
    while pid_alive(pid) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if pid_alive(pid):
        raise DaemonError(f"the daemon (pid {pid}) did not stop within {_STOP_TIMEOUT:.0f} s")
    ctx.emit({"stopped": True, "pid": pid}, human=lambda d: f"daemon (pid {d['pid']}) stopped")
    return 0


async def _status(ctx: CliContext, args: argparse.Namespace) -> int:
    from legion_nb.engine.daemon.client import connect_if_alive  # noqa: PLC0415
    from legion_nb.engine.daemon.endpoint import endpoint_for  # noqa: PLC0415
    from legion_nb.engine.daemon.metadata import read_metadata  # noqa: PLC0415

    endpoint = endpoint_for(ctx.state_path)
    metadata = read_metadata(endpoint.metadata_path)
    pid = await _live_pid(ctx)
    report: dict[str, Any] = {
        "state": str(ctx.state_path),
        "endpoint": endpoint.address,
        "running": pid is not None,
    }
    if pid is not None and metadata is not None:
        report.update(pid=metadata.pid, version=metadata.version, created=metadata.created)
        token = ctx.token()
        if token:
            remote = await connect_if_alive(ctx.state_path, token)
            if remote is not None:
                async with remote:
                    facts = await remote.daemon_status()
                report.update(unlocked=facts.get("unlocked"), connections=facts.get("connections"))
    ctx.emit(report, human=_human_status)
    return 0


def _human_status(report: dict[str, Any]) -> str:
    if not report["running"]:
        return f"daemon: not running ({report['state']})"
    lines = [
        f"daemon: running, pid {report['pid']}, version {report['version']}, since {report['created']}",
        f"endpoint: {report['endpoint']}",
    ]
    if "unlocked" in report:
        lines.append(f"engine: {'unlocked' if report['unlocked'] else 'locked'}")
    return "\n".join(lines)


async def _live_pid(ctx: CliContext) -> int | None:
    """The pid of the daemon serving this state if its endpoint answers, else None."""
    from legion_nb.engine.daemon.client import open_endpoint  # noqa: PLC0415
    from legion_nb.engine.daemon.endpoint import endpoint_for  # noqa: PLC0415
    from legion_nb.engine.daemon.metadata import pid_alive, read_metadata  # noqa: PLC0415

    endpoint = endpoint_for(ctx.state_path)
    metadata = read_metadata(endpoint.metadata_path)
    if metadata is None or not pid_alive(metadata.pid):
        return None
    try:
        _reader, writer = await open_endpoint(endpoint)
    except OSError:  # nobody answers: stale metadata the next start cleans up
        return None
    writer.close()
    return metadata.pid
