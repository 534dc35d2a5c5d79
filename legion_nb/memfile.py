"""TLS material loaded from memory: no private key is ever written to a filesystem.

``ssl.SSLContext.load_cert_chain`` reads paths only. Each PEM is therefore handed to it as the
file-descriptor path (``/proc/self/fd/N`` or ``/dev/fd/N``) of an anonymous in-memory file: a
``memfd`` on Linux, a pipe elsewhere. Neither has a name in any directory, nothing is left behind
if the process is killed, and both vanish when closed. A platform with neither (Windows) is refused
with :class:`MemoryFileUnavailableError` rather than given a key file.

Legion's own TLS contexts (the node admin API client, the nodes' servers in the sandbox) load
their keys through :func:`load_cert_chain`; it sits at the package root because the sandbox's
simulated nodes, which import no Legion layer, use it too.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator

from legion_nb.errors import LegionError

__all__ = ["MemoryFileUnavailableError", "load_cert_chain", "memory_path"]


class MemoryFileUnavailableError(LegionError):
    """The platform offers no in-memory file to load TLS material from."""

    code = "memory_file_unavailable"


def load_cert_chain(context: ssl.SSLContext, certificate_pem: str, private_key_pem: str) -> None:
    """Load a certificate (chain) and its private key into ``context`` from memory."""
    with memory_path(certificate_pem) as cert_path, memory_path(private_key_pem) as key_path:
        context.load_cert_chain(cert_path, key_path)


@contextlib.contextmanager
def memory_path(text: str) -> Iterator[str]:
    """A path that reads back ``text`` from memory, valid inside the ``with`` block."""
    data = text.encode("ascii")
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("legion-tls", getattr(os, "MFD_CLOEXEC", 1))
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"  # opening it opens the memfd afresh, from offset 0
        finally:
            os.close(fd)
        return
    if not os.path.isdir("/dev/fd"):
        raise MemoryFileUnavailableError(
            "this platform offers no in-memory file (memfd or /dev/fd) to load TLS keys from, "
            "and Legion never writes a private key to disk: deploy from Linux or macOS"
        )
    read_end, write_end = os.pipe()
    try:
        _write_all(write_end, data)  # a PEM key is far smaller than a pipe's buffer
        os.close(write_end)
        write_end = -1
        yield f"/dev/fd/{read_end}"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
