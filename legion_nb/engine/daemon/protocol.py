"""The daemon wire: one UTF-8 JSON object per line, checked before anything acts on it.

A request is ``{"id", "token", "method", "params"}``; a reply is ``{"id", "result"}`` or
``{"id", "error": {"code", "message"}}``; a subscription adds ``{"event", "data"}`` lines. The
peer is a process of the same user, but it may be buggy or hostile in its input, so every step
here is bounded: the line length (1 MiB), the nesting depth (checked *before* the JSON decoder
recurses), the types of every field, and the token, compared in constant time.

This module is on the client's import path too, so it imports nothing heavier than ``json``.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from legion_nb.errors import (
    DaemonAuthError,
    DaemonBusyError,
    DaemonInternalError,
    DaemonProtocolError,
    LegionError,
    MethodNotAllowedError,
    ProviderError,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE_BYTES",
    "MAX_REPLY_BYTES",
    "METHODS",
    "TOPICS",
    "DaemonBusyError",
    "DaemonInternalError",
    "MethodNotAllowedError",
    "Request",
    "check_token",
    "decode_line",
    "encode_line",
    "error_from_wire",
    "error_reply",
    "new_token",
    "parse_call",
    "parse_request",
    "parse_topics",
    "validate_token",
]

MAX_LINE_BYTES = 1 << 20
"""A request line, newline included, may be at most this long; a longer one ends the connection."""

MAX_REPLY_BYTES = 64 << 20
"""What a client accepts per reply or event line: snapshots of large states exceed 1 MiB."""

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a request may have; engine arguments are shallow."""

METHODS = frozenset({"status", "shutdown", "call", "subscribe"})
TOPICS = frozenset({"snapshot", "activity"})

_NAME_SHOWN = 64  # how much of a peer-chosen name an error message repeats
_TOKEN_MIN = 32
_TOKEN_MAX = 256
_TOKEN_CHARS = re.compile(r"[!-~]+")  # printable ASCII, no spaces: it must survive a stdin line
_STRUCTURE = re.compile(rb'["\\\[\]{}]')


class Request(NamedTuple):
    """A request whose token has been checked and whose fields have the right types.

    An immutable value whose repr leaves the token out. A ``NamedTuple`` rather than a frozen
    dataclass: clients import this module, and ``dataclasses`` imports ``inspect``.
    """

    id: int | str | None
    method: str
    params: dict[str, Any]
    token: str

    def __repr__(self) -> str:
        return f"Request(id={self.id!r}, method={self.method!r}, params={self.params!r})"


def new_token() -> str:
    """A fresh token: 32 random bytes as hex."""
    import secrets  # noqa: PLC0415 - only daemon starts need it; clients import this module too

    return secrets.token_hex(32)


def validate_token(token: str) -> str:
    """Refuse operator-supplied tokens that are short or would not survive a line of text."""
    if not (_TOKEN_MIN <= len(token) <= _TOKEN_MAX) or not _TOKEN_CHARS.fullmatch(token):
        raise DaemonAuthError(
            f"a daemon token must be {_TOKEN_MIN} to {_TOKEN_MAX} printable ASCII characters without "
            "spaces: omit it to get a random one"
        )
    return token


def encode_line(message: dict[str, Any]) -> bytes:
    """One wire line. NaN and infinities are not JSON and are refused here, not at the peer."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def error_reply(request_id: object, error: LegionError) -> dict[str, Any]:
    return {"id": request_id if _valid_id(request_id) else None, "error": error.to_wire()}


def decode_line(line: bytes) -> dict[str, Any]:
    """Decode one request line into a JSON object, or raise :class:`DaemonProtocolError`."""
    if len(line) > MAX_LINE_BYTES:
        raise DaemonProtocolError(f"request line longer than {MAX_LINE_BYTES} bytes: send smaller requests")
    if _nesting_exceeds(line, MAX_DEPTH):
        raise DaemonProtocolError(f"request nested deeper than {MAX_DEPTH} levels: flatten the arguments")
    try:
        text = line.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise DaemonProtocolError("request line is not UTF-8: send UTF-8 JSON, one object per line") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge integers, NaN
        raise DaemonProtocolError("request line is not valid JSON: send one JSON object per line") from exc
    if not isinstance(value, dict):
        raise DaemonProtocolError("a request must be a JSON object with id, token, method and params")
    return value


def check_token(message: dict[str, Any], expected: str) -> None:
    """Every request carries the token; the comparison takes the same time whatever it holds."""
    token = message.get("token")
    if not isinstance(token, str) or not token:
        raise DaemonAuthError("request has no daemon token: pass the token printed by 'legion daemon start'")
    import hmac  # noqa: PLC0415 - only the daemon compares tokens; clients import this module too

    if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected.encode()):
        raise DaemonAuthError("wrong daemon token: use the token printed by 'legion daemon start'")


def parse_request(message: dict[str, Any], token: str) -> Request:
    """Check the shape of an authenticated request."""
    request_id = message.get("id")
    if not _valid_id(request_id):
        raise DaemonProtocolError("request id must be an integer, a string of up to 128 characters, or null")
    method = message.get("method")
    if not isinstance(method, str) or method not in METHODS:
        raise DaemonProtocolError(f"unknown method {_shown(method)}: use one of {', '.join(sorted(METHODS))}")
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise DaemonProtocolError("params must be a JSON object")
    return Request(id=request_id, method=method, params=params, token=token)


def parse_call(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``{"name": engine method, "args": {...}}`` -> the name and keyword arguments."""
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise DaemonProtocolError("call needs params.name, the engine method to call")
    args = params.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise DaemonProtocolError("call params.args must be a JSON object of keyword arguments")
    for key in args:
        if not key.isidentifier() or key.startswith("_"):
            raise DaemonProtocolError(f"argument name {_shown(key)} is not a public keyword argument")
    return name, args


def parse_topics(params: dict[str, Any]) -> tuple[str, ...]:
    topics = params.get("topics", sorted(TOPICS))
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
        raise DaemonProtocolError('subscribe needs params.topics, a list such as ["snapshot", "activity"]')
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise DaemonProtocolError(f"unknown topic {_shown(unknown[0])}: use {', '.join(sorted(TOPICS))}")
    return tuple(dict.fromkeys(topics))


def error_from_wire(wire: object) -> LegionError:
    """Rebuild the error a daemon reply carries, so the CLI exits with the same code as in process."""
    if not isinstance(wire, dict):
        return DaemonProtocolError("the daemon sent a malformed error: upgrade client and daemon together")
    code = wire.get("code")
    message = wire.get("message")
    text = message if isinstance(message, str) and message else "the daemon refused the request"
    # Walked per call, not cached at import: modules imported later may add subclasses.
    known = _errors_by_code()
    cls = known.get(code) if isinstance(code, str) else None
    family = wire.get("family")
    if cls is None and isinstance(family, str):  # defined in a module this process never imported
        cls = known.get(family)
    if cls is None:
        return LegionError(text)
    error = cls.__new__(cls)
    LegionError.__init__(error, text)  # the message is already formatted; skip subclass formatting
    if isinstance(code, str) and code != cls.code:
        error.code = code  # the daemon's own code, for --json output and automation
    if isinstance(error, ProviderError):
        error.provider = str(wire.get("provider", ""))
        error.provider_code = _optional_str(wire.get("provider_code"))
        error.request_id = _optional_str(wire.get("request_id"))
        error.status = None
        error.provider_message = text
    return error


def _errors_by_code() -> dict[str, type[LegionError]]:
    found: dict[str, type[LegionError]] = {}
    pending: list[type[LegionError]] = [LegionError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _valid_id(value: object) -> bool:
    if value is None or (isinstance(value, str) and len(value) <= 128):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 1 << 63


def _shown(value: object) -> str:
    """A peer-chosen value as an error message may repeat it: bounded and on one line."""
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= _NAME_SHOWN else text[: _NAME_SHOWN - 3] + "..."


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _nesting_exceeds(line: bytes, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit``, found without recursion.

    Only the structural characters are visited (quotes, backslashes, brackets), so the scan is
    linear in the line; a line with few brackets skips it entirely.
    """
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _STRUCTURE.finditer(line):
        at = match.start()
        char = line[at]
        if in_string:
            if at == escaped_at:
                continue
            if char == 0x5C:  # backslash: the next byte is escaped
                escaped_at = at + 1
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif char in (0x5D, 0x7D):
            depth -= 1
    return False
