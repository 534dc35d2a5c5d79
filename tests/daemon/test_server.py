"""A daemon serving an engine double over a real Unix socket: what it answers, refuses and leaves behind."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from pathlib import Path

import pytest
from daemonkit import SECRET, TOKEN, DoubleEngine, Raw, Running, call, request, start_daemon

import legion_nb
from legion_nb.engine.daemon.client import RemoteEngine, connect, connect_if_alive
from legion_nb.engine.daemon.endpoint import endpoint_for, prepare_dirs
from legion_nb.engine.daemon.host import DaemonAlreadyRunningError
from legion_nb.engine.daemon.metadata import DaemonMetadata, write_metadata
from legion_nb.engine.daemon.protocol import MAX_LINE_BYTES
from legion_nb.engine.surface import api_methods
from legion_nb.errors import (
    DaemonAuthError,
    DaemonNotRunningError,
    DaemonProtocolError,
    UsageError,
    ValidationError,
)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


async def test_directory_socket_and_metadata_are_private(daemon: Running) -> None:
    endpoint = daemon.endpoint
    assert mode(endpoint.directory) == 0o700
    assert mode(endpoint.address) == 0o600
    assert stat.S_ISSOCK(os.lstat(endpoint.address).st_mode)
    assert mode(endpoint.metadata_path) == 0o600


async def test_metadata_holds_version_endpoint_pid_created_and_never_the_token(daemon: Running) -> None:
    raw = daemon.endpoint.metadata_path.read_text()
    assert set(json.loads(raw)) == {"version", "endpoint", "pid", "created"}
    assert json.loads(raw)["pid"] == os.getpid()
    assert json.loads(raw)["endpoint"] == daemon.endpoint.address
    assert TOKEN not in raw
    for path in daemon.endpoint.directory.iterdir():
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes()


async def test_status_call_and_errors_on_one_connection(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    status = await raw.ask(request("status", id="s"))
    assert status is not None
    assert status["id"] == "s"
    assert status["result"]["unlocked"] is True
    assert status["result"]["pid"] == os.getpid()
    assert "echo" in status["result"]["methods"]
    assert await raw.ask(call("echo", id=2, value={"nested": [1, "two"]})) == {
        "id": 2,
        "result": {"nested": [1, "two"]},
    }
    refused = await raw.ask(call("refuse", id=3))
    assert refused == {
        "id": 3,
        "error": ValidationError("server name 'Bad_Name' is not an RFC 1123 host name").to_wire(),
    }
    bad_args = await raw.ask(call("echo", id=4, wrong=1))
    assert bad_args is not None
    assert bad_args["error"]["code"] == "usage"
    assert "echo" in bad_args["error"]["message"]
    unknown = await raw.ask(request("reboot_everything", id=5))
    assert unknown is not None
    assert unknown["error"]["code"] == "daemon_protocol"
    renamed = await raw.ask(call("rename", id=6, name="a", to="b"))
    assert renamed == {"id": 6, "result": {"from": "a", "to": "b"}}
    await raw.close()


@pytest.mark.parametrize(
    "name",
    [
        "_store",
        "__class__",
        "__init__",
        "helper",
        "subscribe",
        "aclose",
        "_DoubleEngine__x",
        "logout ",
        "Logout",
        "logout\n",
        "status.__globals__",
        "release",
    ],
)
async def test_only_allow_listed_methods_can_be_called(daemon: Running, name: str) -> None:
    raw = await Raw.open(daemon.endpoint)
    reply = await raw.ask(call(name, id=7))
    assert reply is not None
    assert reply["id"] == 7
    assert reply["error"]["code"] in {"method_not_allowed", "daemon_protocol"}
    assert (await raw.ask(call("status", id=8))) == {"id": 8, "result": {"servers": 0}}  # still serving
    await raw.close()
    assert daemon.engine.is_unlocked


@pytest.mark.parametrize("token", [None, "", "0" * 64, TOKEN[:-1], TOKEN.upper(), 12])
async def test_a_bad_or_missing_token_gets_one_error_and_the_connection_is_closed(
    daemon: Running, token: object
) -> None:
    raw = await Raw.open(daemon.endpoint)
    message = call("logout", id=9)
    if token is None:
        del message["token"]
    else:
        message["token"] = token
    reply = await raw.ask(message)
    assert reply == {"id": 9, "error": reply and reply["error"]}
    assert reply["error"]["code"] == "daemon_auth"
    assert await raw.closed_by_peer()
    assert daemon.engine.is_unlocked  # nothing was acted upon


async def test_unparseable_input_closes_the_connection_but_not_the_daemon(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    reply = await raw.ask(b"{this is not json\n")
    assert reply is not None
    assert reply["error"]["code"] == "daemon_protocol"
    assert await raw.closed_by_peer()
    again = await Raw.open(daemon.endpoint)
    assert await again.ask(call("status")) == {"id": 1, "result": {"servers": 0}}
    await again.close()


async def test_an_overlong_line_is_refused_and_the_connection_closed(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    await raw.send(b'{"id": 1, "x": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
    reply = await raw.receive()
    assert reply is not None
    assert "longer than" in reply["error"]["message"]
    assert await raw.closed_by_peer()


async def test_an_internal_error_carries_no_detail_and_logs_only_its_type(
    daemon: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = await Raw.open(daemon.endpoint)
    reply = await raw.ask(call("explode", password=SECRET))
    assert reply is not None
    assert reply["error"]["code"] == "internal"
    assert SECRET not in json.dumps(reply)
    assert "RuntimeError" in caplog.text
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text
    await raw.close()


async def test_the_token_never_reaches_the_logs(
    runtime_dir: Path, state_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running = await start_daemon(state_path, DoubleEngine())
    raw = await Raw.open(running.endpoint)
    await raw.ask(call("status", token="wrong-token-" + TOKEN[12:]))
    remote = await connect_if_alive(state_path, TOKEN)
    assert remote is not None
    await remote.call("status")
    await remote.shutdown()
    await remote.aclose()
    await asyncio.wait_for(running.task, 30)
    assert "daemon" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN[12:] not in caplog.text


async def test_requests_on_one_connection_do_not_wait_for_each_other(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    await raw.send(call("blocked", id="slow"))
    assert await raw.ask(call("status", id="fast")) == {"id": "fast", "result": {"servers": 0}}
    daemon.engine.release.set()
    assert await raw.receive() == {"id": "slow", "result": "released"}
    await raw.close()


async def test_the_remote_engine_speaks_the_engine_surface(daemon: Running, state_path: Path) -> None:
    remote = await connect_if_alive(state_path, TOKEN)
    assert isinstance(remote, RemoteEngine)
    async with remote:
        assert await remote.call("echo", value=[1, 2]) == [1, 2]
        assert await remote.call("rename", name="x", to="y") == {"from": "x", "to": "y"}
        assert await remote.call("status") == {"servers": 0}
        assert (await remote.daemon_status())["unlocked"] is True
        with pytest.raises(ValidationError, match="RFC 1123"):
            await remote.call("refuse")
        with pytest.raises(DaemonProtocolError, match="not an engine API method"):
            await remote.call("_store")
        with pytest.raises(UsageError, match="bad arguments"):
            await remote.call("echo")
        results = await asyncio.gather(*(remote.call("echo", value=i) for i in range(50)))
        assert results == list(range(50))
        with pytest.raises(AttributeError):
            remote._private  # noqa: B018
    assert TOKEN not in repr(remote)


async def test_a_wrong_token_is_an_auth_error_not_a_fallback(daemon: Running, state_path: Path) -> None:
    with pytest.raises(DaemonAuthError):
        await connect_if_alive(state_path, "b" * 64)


async def test_connect_needs_a_running_daemon_and_a_token(
    runtime_dir: Path, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEGION_DAEMON_TOKEN", raising=False)
    with pytest.raises(UsageError, match="no daemon token"):
        await connect(state_path)
    with pytest.raises(DaemonNotRunningError, match="daemon start"):
        await connect(state_path, token=TOKEN)
    assert await connect_if_alive(state_path, TOKEN) is None


async def test_connect_reads_the_token_from_the_environment(
    daemon: Running, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGION_DAEMON_TOKEN", TOKEN)
    async with await connect(state_path) as remote:
        assert await remote.call("status") == {"servers": 0}


async def test_subscription_streams_events_until_the_client_leaves(daemon: Running, state_path: Path) -> None:
    remote = await connect_if_alive(state_path, TOKEN)
    assert remote is not None
    async with remote:
        stream = remote.subscribe(["snapshot"])
        first = asyncio.create_task(anext(stream))
        await asyncio.sleep(0)
        await remote.call("publish", data={"rows": 1})
        event = await asyncio.wait_for(first, 30)
        assert (event.topic, event.data) == ("snapshot", {"rows": 1})
        await remote.call("publish", data={"rows": 2})
        assert (await asyncio.wait_for(anext(stream), 30)).data == {"rows": 2}
        await stream.aclose()
        assert await remote.call("status") == {"servers": 0}


async def test_a_bad_subscription_is_refused(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    reply = await raw.ask(request("subscribe", {"topics": ["secrets"]}))
    assert reply is not None
    assert reply["error"]["code"] == "daemon_protocol"
    await raw.close()


async def test_shutdown_removes_socket_and_metadata_and_closes_the_engine(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    assert await raw.ask(request("shutdown")) == {"id": 1, "result": {"stopping": True}}
    await asyncio.wait_for(daemon.task, 30)
    assert not os.path.lexists(daemon.endpoint.address)
    assert not daemon.endpoint.metadata_path.exists()
    assert not daemon.endpoint.lock_path.exists()
    assert not daemon.endpoint.directory.exists()  # nothing else was in it: no litter left behind
    assert daemon.engine.closed
    with pytest.raises(OSError):
        await Raw.open(daemon.endpoint)


async def test_a_second_daemon_on_the_same_state_is_refused(daemon: Running, state_path: Path) -> None:
    with pytest.raises(DaemonAlreadyRunningError, match=f"pid {os.getpid()}"):
        await start_daemon(state_path, DoubleEngine())
    raw = await Raw.open(daemon.endpoint)  # the first one is untouched
    assert await raw.ask(call("status")) == {"id": 1, "result": {"servers": 0}}
    await raw.close()


async def test_stale_metadata_and_socket_are_cleaned_on_start(runtime_dir: Path, state_path: Path) -> None:
    endpoint = endpoint_for(state_path)
    prepare_dirs(endpoint)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    write_metadata(endpoint.metadata_path, DaemonMetadata("0", endpoint.address, dead, "2020-01-01"))
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(endpoint.address)  # a socket file nobody listens on, as a crash leaves it
    leftover.close()
    assert await connect_if_alive(state_path, TOKEN) is None
    running = await start_daemon(state_path, DoubleEngine())
    assert json.loads(endpoint.metadata_path.read_text())["pid"] == os.getpid()
    remote = await connect_if_alive(state_path, TOKEN)
    assert remote is not None
    await remote.aclose()
    await running.finish()


async def test_a_live_pid_with_a_dead_socket_is_not_a_daemon(runtime_dir: Path, state_path: Path) -> None:
    endpoint = endpoint_for(state_path)
    prepare_dirs(endpoint)
    write_metadata(endpoint.metadata_path, DaemonMetadata("0", endpoint.address, os.getpid(), "2020-01-01"))
    assert await connect_if_alive(state_path, TOKEN) is None


async def test_calls_in_flight_fail_cleanly_when_the_daemon_stops(daemon: Running, state_path: Path) -> None:
    remote = await connect_if_alive(state_path, TOKEN)
    assert remote is not None
    pending = asyncio.create_task(remote.call("blocked"))
    await asyncio.sleep(0.01)
    await daemon.finish()
    with pytest.raises(DaemonNotRunningError):
        await asyncio.wait_for(pending, 30)
    with pytest.raises(DaemonNotRunningError):
        await remote.call("status")
    await remote.aclose()


async def test_the_notebook_bridge_is_legion_nb_connect(daemon: Running, state_path: Path) -> None:
    async with await legion_nb.connect(state_path, token=TOKEN) as remote:
        assert await remote.call("echo", value="from a notebook") == "from a notebook"
        assert api_methods() <= set(dir(remote))  # the engine API's methods, for tab completion


async def test_a_client_that_stops_sending_still_gets_its_replies(daemon: Running) -> None:
    raw = await Raw.open(daemon.endpoint)
    await raw.send(call("blocked", id="late"))
    await raw.send(call("status", id="early"))
    raw.writer.write_eof()  # what `printf ... | socat - UNIX-CONNECT:...` does after its input
    assert await raw.receive() == {"id": "early", "result": {"servers": 0}}
    daemon.engine.release.set()
    assert await raw.receive() == {"id": "late", "result": "released"}
    assert await raw.closed_by_peer()


async def test_arguments_json_cannot_carry_are_refused_by_the_client(
    daemon: Running, state_path: Path
) -> None:
    remote = await connect_if_alive(state_path, TOKEN)
    assert remote is not None
    async with remote:
        with pytest.raises(UsageError, match="cannot be sent as JSON"):
            await remote.call("echo", value=float("nan"))
        assert await remote.call("echo", value=1.5) == 1.5


async def test_a_daemon_can_start_again_at_once_after_a_stop(runtime_dir: Path, state_path: Path) -> None:
    for _ in range(3):
        running = await start_daemon(state_path, DoubleEngine())
        raw = await Raw.open(running.endpoint)
        assert await raw.ask(call("status")) == {"id": 1, "result": {"servers": 0}}
        await raw.close()
        await running.finish()
