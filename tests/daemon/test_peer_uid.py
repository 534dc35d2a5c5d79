"""Another account is refused by the kernel-reported peer uid, even with every file mode opened up.

The tests run as root; the "other user" is a child process dropped to uid/gid 65534 (nobody) with
``setpriv``, running the system Python so that it needs nothing from root's home.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from daemonkit import TOKEN, Running, call

from legion_nb.engine.daemon.transport_unix import connect_unix

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(SYSTEM_PYTHON),
    reason="needs root, setpriv and a system Python to act as another user",
)

CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(20)
sock.connect(sys.argv[1])
print("connected", flush=True)
data = b""
try:
    sock.sendall(sys.argv[2].encode() + b"\\n")
    while (chunk := sock.recv(65536)) and not chunk.endswith(b"\\n"):
        data += chunk
    data += chunk
except (BrokenPipeError, ConnectionResetError):
    pass
print("reply:" + data.decode(errors="replace"), flush=True)
"""

SERVER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.bind(sys.argv[1])
sock.listen(1)
print("listening", flush=True)
conn, _ = sock.accept()
conn.recv(1)
"""


async def run_as(uid: int | None, script: str, *args: str) -> asyncio.subprocess.Process:
    prefix = [] if uid is None else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return await asyncio.create_subprocess_exec(
        *prefix, SYSTEM_PYTHON, "-c", script, *args, stdout=asyncio.subprocess.PIPE, cwd="/"
    )


def open_up(daemon: Running, runtime_dir: Path) -> None:
    for directory in (runtime_dir, daemon.endpoint.base, daemon.endpoint.directory):
        directory.chmod(0o711)
    os.chmod(daemon.endpoint.address, 0o666)


async def test_another_uid_is_refused_even_when_the_socket_is_world_writable(
    daemon: Running, runtime_dir: Path
) -> None:
    open_up(daemon, runtime_dir)
    line = json.dumps(call("logout", id=1, token=TOKEN))

    stranger = await run_as(NOBODY, CLIENT, daemon.endpoint.address, line)
    out, _ = await asyncio.wait_for(stranger.communicate(), 60)
    assert out.decode().splitlines() == ["connected", "reply:"]  # connected, then dropped without a word
    assert daemon.engine.is_unlocked

    owner = await run_as(None, CLIENT, daemon.endpoint.address, json.dumps(call("status", token=TOKEN)))
    out, _ = await asyncio.wait_for(owner.communicate(), 60)
    assert '"result":{"servers":0}' in out.decode()  # the control: the same path works for the owner


async def test_the_client_refuses_a_listener_of_another_uid() -> None:
    shared = Path(tempfile.mkdtemp(prefix="lnb-", dir="/tmp"))
    shared.chmod(0o777)
    path = str(shared / "sock")
    server = await run_as(NOBODY, SERVER, path)
    try:
        assert server.stdout is not None
        assert await asyncio.wait_for(server.stdout.readline(), 60) == b"listening\n"
        with pytest.raises(PermissionError, match=f"uid {NOBODY}"):
            await connect_unix(path)
    finally:
        server.kill()
        await server.wait()
        shutil.rmtree(shared, ignore_errors=True)
