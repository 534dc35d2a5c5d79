"""How an HTTPS call with mutual TLS failed, read once for every mTLS client Legion has.

A node admin API and a satellite's Sender API both answer only Legion's operator certificate, and
an operator needs to know which of three things happened, because each asks for something else:

* ``handshake`` - the TLS handshake failed: Legion refused the server's certificate (not from the
  pinned cluster CA, or not naming the address), or, with TLS 1.2, the server refused Legion's
  certificate inside the handshake. Retrying cannot help.
* ``refused`` - the connection was reset (or a certificate alert came) after the handshake and
  before any response. With TLS 1.3 the client's side of the handshake is done before the server
  has checked the client's certificate; a server that refuses it closes with the request unread, so
  the client meets a reset where the response should be. A server restarting at that very moment
  looks the same.
* ``unreachable`` - nothing answered: connection refused, a timeout, or a break-off that is neither.
  Retrying once the machine is up can help.
"""

from __future__ import annotations

import ssl
from typing import Literal, TypeVar

import httpx

__all__ = ["MtlsFailure", "classify_mtls_failure"]

MtlsFailure = Literal["handshake", "refused", "unreachable"]

_E = TypeVar("_E", bound=BaseException)


def classify_mtls_failure(exc: httpx.HTTPError) -> MtlsFailure:
    """Which of the three failures (module notes) ``exc``, raised by an httpx call, is.

    httpx runs the TLS handshake while it connects, so only a failed connect can be a failed
    handshake; once connected, a reset or a certificate alert in place of the response is a refusal,
    and anything else (an end of stream while reading, a protocol error) is a node that went away.
    """
    tls = _cause(exc, ssl.SSLError)
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        return "handshake" if tls is not None or "SSL" in text or "certificate" in text else "unreachable"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        if _cause(exc, ConnectionResetError) is not None:
            return "refused"
        alert = str(tls).lower() if tls is not None else ""
        if "alert" in alert and "certificate" in alert:
            return "refused"
    return "unreachable"


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first ``kind`` in ``exc``'s cause chain (httpx wraps httpcore, which wraps anyio's and
    the socket's errors), or None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None
