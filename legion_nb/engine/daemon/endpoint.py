"""Where the daemon for a given state file listens, and the private directory that holds it.

One state file has one endpoint, derived from a hash of what its path resolves to - the device
and inode of its directory plus its file name - so every client that names the same state finds
the same daemon without being told an address, however it spells the path (a symlink, a bind
mount of the directory). The file's own inode would not do: every atomic save replaces it.

On Unix the socket, the metadata file ``daemon.json``, the start lock and the daemon's log share
one directory of mode 0700 owned by the user: nothing in it is reachable by another account even
for an instant, whatever the modes of the files inside. That directory sits under
``$XDG_RUNTIME_DIR/legion-nb/`` when the session provides a private runtime directory, else under
``/tmp/legion-nb-<uid>/``; both are checked for owner and mode (a directory another user created
there first is refused, as tmux and ssh-agent do), and the socket path stays far below the
~104-byte ``sun_path`` limit whatever the state path looks like.

On Windows the endpoint is the named pipe ``\\\\.\\pipe\\legion-nb-<hash>`` and the directory, under
the user's local application data, holds the metadata and the log.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import NamedTuple

from legion_nb.errors import DaemonError

# The endpoint is a SHA-256 of the state path, taken from CPython's built-in module when there is
# one: ``hashlib`` would load OpenSSL (``_hashlib``), which costs a warm CLI command more than its
# round trip to the daemon (``benchmarks/daemon.py`` prints the warm command with and without it).
# Same digest either way; ``hashlib`` remains for builds without the built-in module.
try:
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]  # 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]  # 3.11
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment,unused-ignore]

__all__ = [
    "Endpoint",
    "UnsafeRuntimeDirError",
    "check_private_dir",
    "endpoint_for",
    "prepare_dirs",
    "state_identity",
    "state_key",
]

_HASH_CHARS = 16
_SOCKET_PATH_MAX = 100  # sun_path is 104 bytes on macOS/BSD, 108 on Linux; keep a margin
PIPE_PREFIX = "\\\\.\\pipe\\legion-nb-"


class UnsafeRuntimeDirError(DaemonError):
    """The daemon's directory is not private to this user, so nothing is put in it."""

    code = "daemon_unsafe_dir"


class Endpoint(NamedTuple):
    """The daemon endpoint for one state file: an immutable value.

    A ``NamedTuple`` rather than a frozen dataclass: ``dataclasses`` imports ``inspect`` (and with it
    ``ast``, ``dis``, ``tokenize``), which every warm CLI command would pay for; ``typing`` is loaded
    on that path anyway.
    """

    kind: str  # "unix" or "pipe"
    address: str  # the socket path or the pipe name
    directory: Path  # private directory for metadata (and the socket on Unix)
    base: Path  # the per-user parent of ``directory``

    @property
    def metadata_path(self) -> Path:
        return self.directory / "daemon.json"

    @property
    def lock_path(self) -> Path:
        return self.directory / "daemon.lock"

    @property
    def log_path(self) -> Path:
        return self.directory / "daemon.log"


def state_identity(state_path: Path) -> str:
    """What a state path resolves to: ``<device>:<inode>/<name>`` of its directory and file name.

    A directory that does not exist (yet) has no inode: then the resolved path itself, which no
    daemon can be serving.
    """
    resolved = Path(state_path).expanduser().resolve()
    try:
        directory = os.stat(resolved.parent)
    except OSError:  # no such directory: no state, no daemon, nothing to share
        return str(resolved)
    return f"{directory.st_dev}:{directory.st_ino}/{resolved.name}"


def state_key(state_path: Path) -> str:
    """The stable short name of a state file: a hash of :func:`state_identity`."""
    identity = state_identity(state_path)
    digest: str = _sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()
    return digest[:_HASH_CHARS]


def endpoint_for(state_path: Path) -> Endpoint:
    """The endpoint of ``state_path``'s daemon. Reads the environment and stats the state's
    directory; creates nothing."""
    return _endpoint(state_key(state_path))


def prepare_dirs(endpoint: Endpoint) -> None:
    """Create the endpoint's directories as 0700 and prove they are ours and private.

    Raises :class:`UnsafeRuntimeDirError` if either exists with another owner, another type or
    group/other permissions.
    """
    for path in (endpoint.base, endpoint.directory):
        if endpoint.kind == "pipe":
            path.mkdir(parents=True, exist_ok=True)  # the profile's ACL keeps it private
            continue
        with contextlib.suppress(FileExistsError):  # checked just below, like one we did not create
            path.mkdir(mode=0o700)
        check_private_dir(path)


if sys.platform == "win32":

    def _endpoint(key: str) -> Endpoint:
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        base = Path(local) / "legion-nb" / "daemon"
        return Endpoint(kind="pipe", address=PIPE_PREFIX + key, directory=base / key, base=base)

    def check_private_dir(path: Path) -> None:
        """Windows has no POSIX owner and mode: the user profile's ACL keeps this directory private."""
        if not path.is_dir():
            raise UnsafeRuntimeDirError(f"daemon directory {path} is missing")

else:

    def _endpoint(key: str) -> Endpoint:
        base = _unix_base()
        directory = base / key
        return Endpoint(kind="unix", address=str(directory / "sock"), directory=directory, base=base)

    def check_private_dir(path: Path) -> None:
        """A real directory (not a symlink), owned by this user, with no group or other access."""
        try:
            info = os.lstat(path)
        except FileNotFoundError as exc:
            raise UnsafeRuntimeDirError(f"daemon directory {path} is missing") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafeRuntimeDirError(f"{path} is not a directory: remove it so the daemon can create one")
        if info.st_uid != os.geteuid():
            raise UnsafeRuntimeDirError(
                f"{path} belongs to uid {info.st_uid}, not to you: remove it or set XDG_RUNTIME_DIR"
            )
        if info.st_mode & 0o077:
            raise UnsafeRuntimeDirError(
                f"{path} has mode {stat.S_IMODE(info.st_mode):04o}: run 'chmod 700 {path}' or remove it"
            )

    def _unix_base() -> Path:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and os.path.isabs(runtime) and _usable_runtime_dir(Path(runtime)):
            base = Path(runtime) / "legion-nb"
            if len(str(base)) + 1 + _HASH_CHARS + len("/sock") <= _SOCKET_PATH_MAX:
                return base
        return Path("/tmp") / f"legion-nb-{os.geteuid()}"  # noqa: S108 - a checked 0700 per-user dir

    def _usable_runtime_dir(path: Path) -> bool:
        """XDG_RUNTIME_DIR must be ours and private (the XDG spec says so); else it is ignored."""
        try:
            info = os.stat(path)
        except OSError:
            return False
        return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077
