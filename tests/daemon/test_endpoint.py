"""Where a daemon lives: derived from the state path, in a private directory, under the path limit."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from legion_nb.engine.daemon.endpoint import (
    UnsafeRuntimeDirError,
    check_private_dir,
    endpoint_for,
    prepare_dirs,
)
from legion_nb.engine.daemon.metadata import DaemonMetadata, pid_alive, read_metadata, write_metadata


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_endpoint_follows_the_state_path(runtime_dir: Path, tmp_path: Path) -> None:
    first = endpoint_for(tmp_path / "a.legion")
    assert endpoint_for(tmp_path / "a.legion") == first
    assert endpoint_for(tmp_path / "b.legion").address != first.address
    assert first.directory.parent == runtime_dir / "legion-nb"
    assert Path(first.address).parent == first.metadata_path.parent == first.directory


def test_a_symlinked_path_to_the_same_state_finds_the_same_daemon(runtime_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert endpoint_for(tmp_path / "link" / "s.legion") == endpoint_for(tmp_path / "real" / "s.legion")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a bind mount needs root and unshare (a private mount namespace)",
)
def test_a_bind_mounted_state_directory_finds_the_same_daemon(tmp_path: Path) -> None:
    # Before: the endpoint hashed the path string, so a second path to the same directory (a bind
    # mount, which resolve() cannot see through) got a second daemon on the same state file.
    (tmp_path / "real").mkdir()
    (tmp_path / "mount").mkdir()
    keys = (
        "from legion_nb.engine.daemon.endpoint import state_key; import sys; "
        "print(state_key(sys.argv[1]), state_key(sys.argv[2]), state_key(sys.argv[3]))"
    )
    script = 'mount --bind "$1" "$2" && exec "$3" -c "$4" "$1/s.legion" "$2/s.legion" "$1/t.legion"'
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            tmp_path / "real",
            tmp_path / "mount",
            sys.executable,
            keys,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"no bind mounts here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    real, mounted, other = done.stdout.split()
    assert real == mounted
    assert other != real


def test_a_deep_state_path_keeps_the_socket_path_short(runtime_dir: Path, tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 12)) / "state.legion"
    assert len(str(deep)) > 300
    assert len(endpoint_for(deep).address.encode()) < 100


def test_a_runtime_dir_that_is_not_private_is_not_used(
    monkeypatch: pytest.MonkeyPatch, runtime_dir: Path, tmp_path: Path
) -> None:
    runtime_dir.chmod(0o755)
    endpoint = endpoint_for(tmp_path / "s.legion")
    assert endpoint.base == Path(f"/tmp/legion-nb-{os.geteuid()}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/" + "r" * 120)
    assert endpoint_for(tmp_path / "s.legion").base == Path(f"/tmp/legion-nb-{os.geteuid()}")


def test_directories_are_created_private(runtime_dir: Path, tmp_path: Path) -> None:
    endpoint = endpoint_for(tmp_path / "s.legion")
    prepare_dirs(endpoint)
    assert mode(endpoint.base) == 0o700
    assert mode(endpoint.directory) == 0o700
    prepare_dirs(endpoint)  # idempotent


def test_a_directory_someone_loosened_is_refused(runtime_dir: Path, tmp_path: Path) -> None:
    endpoint = endpoint_for(tmp_path / "s.legion")
    prepare_dirs(endpoint)
    endpoint.directory.chmod(0o755)
    with pytest.raises(UnsafeRuntimeDirError, match="chmod 700"):
        prepare_dirs(endpoint)


def test_a_directory_owned_by_another_user_is_refused(runtime_dir: Path, tmp_path: Path) -> None:
    endpoint = endpoint_for(tmp_path / "s.legion")
    endpoint.base.mkdir(mode=0o700)
    os.chown(endpoint.base, 65534, 65534)
    with pytest.raises(UnsafeRuntimeDirError, match="belongs to uid 65534"):
        prepare_dirs(endpoint)


def test_a_symlink_in_place_of_the_directory_is_refused(runtime_dir: Path, tmp_path: Path) -> None:
    endpoint = endpoint_for(tmp_path / "s.legion")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    endpoint.base.symlink_to(elsewhere)
    with pytest.raises(UnsafeRuntimeDirError, match="not a directory"):
        check_private_dir(endpoint.base)


def test_metadata_is_written_0600_and_read_back(runtime_dir: Path, tmp_path: Path) -> None:
    endpoint = endpoint_for(tmp_path / "s.legion")
    prepare_dirs(endpoint)
    metadata = DaemonMetadata(version="1.0", endpoint=endpoint.address, pid=os.getpid(), created="2026-01-01")
    write_metadata(endpoint.metadata_path, metadata)
    assert mode(endpoint.metadata_path) == 0o600
    assert read_metadata(endpoint.metadata_path) == metadata
    assert list(endpoint.directory.iterdir()) == [endpoint.metadata_path]  # no temporary left behind


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'{"version": "1", "endpoint": "e", "pid": "12", "created": "c"}',
        b'{"version": "1", "endpoint": "e", "pid": true, "created": "c"}',
    ],
)
def test_garbled_metadata_reads_as_absent(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "daemon.json"
    path.write_bytes(content)
    assert read_metadata(path) is None
    assert read_metadata(tmp_path / "missing.json") is None


def test_pid_alive_knows_the_living_from_the_dead() -> None:
    assert pid_alive(os.getpid())
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert not pid_alive(pid)


def test_a_zombie_counts_as_dead() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        while True:  # until the child has exited (it is a zombie: not yet reaped)
            with open(f"/proc/{pid}/stat", "rb") as f:
                if b") Z" in f.read():
                    break
        assert not pid_alive(pid)
    finally:
        os.waitpid(pid, 0)
