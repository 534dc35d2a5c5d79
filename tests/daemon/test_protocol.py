"""The wire rules, one function at a time: bounds, types, token, and errors that travel intact."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion_nb.engine.daemon import protocol
from legion_nb.engine.daemon.protocol import (
    MAX_DEPTH,
    MAX_LINE_BYTES,
    check_token,
    decode_line,
    error_from_wire,
    parse_call,
    parse_request,
    parse_topics,
    validate_token,
)
from legion_nb.errors import (
    DaemonAuthError,
    DaemonProtocolError,
    LegionError,
    LockedError,
    ProviderAuthError,
    ValidationError,
)

TOKEN = "f" * 64


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_a_good_line_decodes_to_its_object() -> None:
    assert decode_line(line({"id": 1, "token": TOKEN})) == {"id": 1, "token": TOKEN}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xff\xfe{}\n", "not UTF-8"),
        (b"{not json}\n", "not valid JSON"),
        (b'{"a": NaN}\n', "not valid JSON"),
        (b'{"a": Infinity}\n', "not valid JSON"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b'"text"\n', "must be a JSON object"),
        (b'{"n": ' + b"9" * 5000 + b"}\n", "not valid JSON"),
    ],
)
def test_bad_lines_are_one_line_protocol_errors(raw: bytes, fragment: str) -> None:
    with pytest.raises(DaemonProtocolError, match=fragment) as caught:
        decode_line(raw)
    assert "\n" not in str(caught.value)


def test_nesting_is_bounded_before_decoding() -> None:
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert decode_line(line({"a": json.loads(ok)}))
    too_deep = b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}\n"
    with pytest.raises(DaemonProtocolError, match="nested deeper"):
        decode_line(too_deep)
    very_deep = b"[" * 200_000 + b"]" * 200_000 + b"\n"
    with pytest.raises(DaemonProtocolError, match="nested deeper"):
        decode_line(very_deep)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[{" * 100 + '\\"[[[' + "\\\\"
    assert decode_line(line({"a": text}))["a"] == text


def test_the_line_length_is_capped() -> None:
    with pytest.raises(DaemonProtocolError, match="longer than"):
        decode_line(b"{" + b" " * MAX_LINE_BYTES + b"}\n")


@pytest.mark.parametrize("token", [None, "", 42, ["x"], "wrong", TOKEN[:-1], TOKEN + "0", "é" * 64])
def test_a_missing_or_wrong_token_is_refused(token: object) -> None:
    with pytest.raises(DaemonAuthError) as caught:
        check_token({"token": token}, TOKEN)
    assert TOKEN not in str(caught.value)


def test_the_right_token_passes() -> None:
    check_token({"token": TOKEN}, TOKEN)


@pytest.mark.parametrize(
    "message",
    [
        {"id": 1.5, "method": "status"},
        {"id": True, "method": "status"},
        {"id": "x" * 129, "method": "status"},
        {"id": 1, "method": "status ; rm"},
        {"id": 1, "method": None},
        {"id": 1, "method": "call", "params": [1]},
        {"id": 1, "method": "__class__"},
    ],
)
def test_requests_of_the_wrong_shape_are_refused(message: dict[str, object]) -> None:
    with pytest.raises(DaemonProtocolError):
        parse_request(message, TOKEN)


def test_a_request_keeps_its_token_out_of_its_repr() -> None:
    request = parse_request({"id": "a", "method": "status", "params": None}, TOKEN)
    assert request.params == {}
    assert TOKEN not in repr(request)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"name": ""},
        {"name": 3},
        {"name": "x", "args": []},
        {"name": "x", "args": {"_secret": 1}},
        {"name": "x", "args": {"not an identifier": 1}},
    ],
)
def test_call_params_are_checked(params: dict[str, object]) -> None:
    with pytest.raises(DaemonProtocolError):
        parse_call(params)


def test_call_params_give_name_and_keyword_arguments() -> None:
    assert parse_call({"name": "plan_show", "args": None}) == ("plan_show", {})
    assert parse_call({"name": "diff", "args": {"full": True}}) == ("diff", {"full": True})


def test_topics_are_checked_and_deduplicated() -> None:
    assert parse_topics({"topics": ["snapshot", "snapshot"]}) == ("snapshot",)
    assert set(parse_topics({})) == {"snapshot", "activity"}
    for bad in ([], "snapshot", ["logs"], [1]):
        with pytest.raises(DaemonProtocolError):
            parse_topics({"topics": bad})


def test_errors_travel_as_their_own_type() -> None:
    locked = error_from_wire(LockedError("state is locked: unlock it first").to_wire())
    assert type(locked) is LockedError
    assert locked.exit_code == 3
    assert locked.message == "state is locked: unlock it first"
    provider = error_from_wire(ProviderAuthError("hetzner", "token invalid", request_id="r-1").to_wire())
    assert isinstance(provider, ProviderAuthError)
    assert provider.provider == "hetzner"
    assert provider.request_id == "r-1"
    assert provider.message == "hetzner: token invalid (request id r-1)"
    assert type(error_from_wire({"code": "invalid", "message": "m"})) is ValidationError
    unknown = error_from_wire({"code": "from_the_future", "message": "m"})
    assert type(unknown) is LegionError
    assert isinstance(error_from_wire("garbage"), DaemonProtocolError)


def test_an_error_defined_outside_the_error_module_keeps_its_exit_code_in_any_client() -> None:
    from legion_nb.providers.catalog import UnknownServerTypeError  # noqa: PLC0415

    wire = UnknownServerTypeError("server type cx999 is not in the hetzner catalog").to_wire()
    assert wire["family"] == "invalid"  # the nearest class of legion_nb.errors
    assert "family" not in LockedError("locked").to_wire()
    # A client that never imported the defining module: only the family is known to it.
    rebuilt = error_from_wire({**wire, "code": "defined_elsewhere"})
    assert type(rebuilt) is ValidationError
    assert rebuilt.exit_code == 2 and rebuilt.code == "defined_elsewhere"
    assert rebuilt.message == "server type cx999 is not in the hetzner catalog"


def test_operator_tokens_must_be_long_printable_and_without_spaces() -> None:
    assert validate_token(TOKEN) == TOKEN
    for bad in ("short", "x" * 40 + " y", "é" * 40, "x" * 300):
        with pytest.raises(DaemonAuthError):
            validate_token(bad)


def test_new_tokens_are_32_random_bytes_in_hex() -> None:
    first, second = protocol.new_token(), protocol.new_token()
    assert len(first) == 64
    assert int(first, 16) >= 0
    assert first != second


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\\\ab\n\u2028é'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\\\k', max_size=4), children, max_size=3)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=1, max_value=8))
def test_the_depth_scan_agrees_with_the_decoded_depth(value: object, limit: int) -> None:
    for ascii_only in (True, False):
        encoded = json.dumps({"v": value}, ensure_ascii=ascii_only).encode()
        assert protocol._nesting_exceeds(encoded, limit) == (depth_of({"v": value}) > limit)
