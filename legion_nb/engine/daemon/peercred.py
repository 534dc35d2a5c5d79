"""Who is on the other end of a Unix socket, as the kernel reports it.

File modes already keep other users out of the daemon's directory; asking the kernel for the
peer's uid on every connection is the second lock, the one ssh-agent uses, and it still holds if
a mode is loosened by mistake. Linux answers through ``SO_PEERCRED``; macOS and the BSDs through
``getpeereid(3)``.
"""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["peer_uid"]

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


if sys.platform == "linux":

    def peer_uid(sock: socket.socket) -> int | None:
        """The effective uid of the process connected to ``sock``, or None if the kernel will not say."""
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        except OSError:  # not a Unix socket, or already closed: unknown peer
            return None
        _pid, uid, _gid = _UCRED.unpack(raw)
        return int(uid)

elif sys.platform == "win32":

    def peer_uid(sock: socket.socket) -> int | None:
        """Windows has no uids; the named-pipe transport relies on its DACL instead."""
        return None

else:

    def peer_uid(sock: socket.socket) -> int | None:
        """The effective uid of the process connected to ``sock`` (``getpeereid(3)``), or None."""
        import ctypes  # noqa: PLC0415 - only the BSD family needs it
        import ctypes.util  # noqa: PLC0415

        name = ctypes.util.find_library("c")
        if name is None:
            return None
        libc = ctypes.CDLL(name, use_errno=True)
        uid = ctypes.c_uint32()
        gid = ctypes.c_uint32()
        if libc.getpeereid(sock.fileno(), ctypes.byref(uid), ctypes.byref(gid)) != 0:
            return None
        return int(uid.value)
