"""A JSON codec for frozen record dataclasses, compiled once per record type.

Why not ``dataclasses.asdict`` + ``json``: decoding must rebuild typed records (datetimes, Decimals,
tuples, nested records) and reject malformed input with one clear line, and it must be fast: an
unlock decodes the whole state, and a 1,000-server state has to decode in a few milliseconds. So each
record type is compiled once into a pair of closures (encode, decode) driven by its type hints; the
hot path is then plain dict and isinstance work with no reflection. Both are generated code (see
:func:`_generate`): ``benchmarks/state.py`` prints unlock and encode figures for this codec beside a
plain one (``benchmarks/plain_codec.py``: the same checks, each record built by its own ``__init__``),
and only the generated decoder keeps the decode of a 1,000-server state under 10% of the key
derivation time, the unlock goal.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``datetime`` (ISO 8601, UTC),
``Decimal`` (as a string, never a float), ``Literal[...]`` of strings, ``X | None``,
``tuple[X, ...]``, ``Mapping[str, X]`` (decoded as a read-only :class:`~legion_nb.readonly.FrozenDict`,
as the records hold their mappings), ``Any`` (raw JSON, e.g. provider catalogs) and nested record
dataclasses. Missing keys take the field default (so adding a field with a default is not a schema
break); unknown keys are refused (a newer file must bump ``schema_version`` instead).

Errors are :class:`~legion_nb.errors.StateFormatError` naming the path of the bad value, e.g.
``state field tracked.servers.web-1.created: expected an ISO 8601 time``.

**Encoding successive states.** Every durable commit writes the whole state, and a commit usually
changes a few records of thousands; records are immutable and shared between states, so
:class:`IncrementalEncoder` keeps the JSON of each collection member (a record held in a
``Mapping`` or a ``tuple``) from its previous encode, keyed by the record's identity, and encodes
again only the members that are new objects. Its bytes are exactly those of a full encode
(``benchmarks/state.py`` prints both encodes of a state one edit apart).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson

from legion_nb.errors import StateFormatError
from legion_nb.readonly import FrozenDict

__all__ = ["IncrementalEncoder", "RecordCodec", "codec_for", "dumps"]

T = TypeVar("T")
_Encode = Callable[[Any], Any]
_Decode = Callable[[Any], Any]


class _DecodeError(Exception):
    """Internal: a bad value, with the path built up while the stack unwinds."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.path: list[str] = []


class RecordCodec(typing.Generic[T]):
    """Encode a record to JSON types and decode it back, checking every field's type."""

    def __init__(self, cls: type[T], encode: _Encode, decode: _Decode) -> None:
        self.cls = cls
        self._encode = encode
        self._decode = decode

    def encode(self, record: T) -> Any:
        return self._encode(record)

    def decode(self, data: Any, *, root: str = "state") -> T:
        try:
            return typing.cast(T, self._decode(data))
        except _DecodeError as exc:
            where = ".".join([root, *reversed(exc.path)])
            message = f"{where}: expected {exc.expected}; the state was written by other software"
            raise StateFormatError(message) from None


def dumps(data: Any) -> bytes:
    """Compact JSON with sorted keys: equal records give equal bytes."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


_Members = dict[int, tuple[Any, orjson.Fragment]]


class _Memo:
    """The JSON of the collection members one encode met, by record identity, beside the previous
    encode's. An entry holds its record, so the identity cannot be reused while the entry lives."""

    __slots__ = ("earlier", "now")

    def __init__(self, earlier: _Members) -> None:
        self.earlier = earlier
        self.now: _Members = {}

    def member(self, record: Any, encode: _Encode) -> orjson.Fragment:
        key = id(record)
        entry = self.earlier.get(key)
        if entry is None or entry[0] is not record:
            # orjson hands back its whole write buffer (4 KiB at least): keep an exact-size copy.
            entry = (record, orjson.Fragment(bytes(memoryview(dumps(encode(record))))))
        self.now[key] = entry
        return entry[1]


_MEMO: ContextVar[_Memo | None] = ContextVar("legion_state_codec_memo", default=None)
"""The memo of the incremental encode running in this context (None: a plain encode)."""


class IncrementalEncoder(typing.Generic[T]):
    """Encodes successive versions of one record tree to :func:`dumps` bytes, reusing the JSON of
    every collection member that is the same object as in the previous call.

    Members are cached whole: a member that changed is encoded again with what it holds (a
    cluster's servers are re-encoded with the cluster), which stays small. The cache holds the
    members of the last call only, so it is about the size of one encoded state. Like the records
    it mirrors, it holds the state's plaintext (credentials included): its owner drops it with the
    state at logout. Calls may come from any thread; run them one at a time to keep the cache useful
    (overlapping calls stay correct, they only reuse less).
    """

    def __init__(self, codec: RecordCodec[T]) -> None:
        self._codec = codec
        self._earlier: _Members = {}

    def __call__(self, record: T) -> bytes:
        memo = _Memo(self._earlier)
        token = _MEMO.set(memo)
        try:
            payload = dumps(self._codec.encode(record))
        finally:
            _MEMO.reset(token)
        self._earlier = memo.now
        return payload


_CACHE: dict[type, tuple[_Encode, _Decode]] = {}
# Generated code calls nested records' fast decoders and inlines optional fields directly: these map
# a checked decoder to its fast form, and an optional decoder to the decoder of its inner type.
_FAST: dict[_Decode, _Decode] = {}
_OPTIONAL_OF: dict[_Decode, _Decode] = {}


def codec_for(cls: type[T]) -> RecordCodec[T]:
    """The compiled codec of a record dataclass (cached per type)."""
    enc, dec = _compile_record(cls)
    return RecordCodec(cls, enc, dec)


def _compile_record(cls: type) -> tuple[_Encode, _Decode]:
    cached = _CACHE.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = frozenset(f.name for f in fields)
    compiled = [(f.name, *_compile(hints[f.name])) for f in fields]
    required = frozenset(
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    label = cls.__name__

    pairs = [(name, dec) for name, _, dec in compiled]
    encode, decode_fast = _generate(cls, compiled)

    def decode(data: Any) -> Any:
        # Fast path: every field present, nothing unknown, every value fine. Anything else (missing
        # keys, defaults, bad values) goes the careful way, which also names the bad path.
        if type(data) is dict:
            try:
                return decode_fast(data)
            except (KeyError, TypeError, _DecodeError):
                pass  # the careful path below reports it (or handles the defaults)
        return decode_careful(data)

    def decode_careful(data: Any) -> Any:
        if type(data) is not dict:
            raise _DecodeError(f"an object ({label})")
        kwargs: dict[str, Any] = {}
        for name, dec in pairs:
            if name in data:
                try:
                    kwargs[name] = dec(data[name])
                except _DecodeError as exc:
                    exc.path.append(name)
                    raise
        if len(kwargs) != len(data):
            unknown = sorted(set(data) - names)
            raise _DecodeError(f"no unknown field in {label}, found {', '.join(unknown)}")
        if len(kwargs) < len(required):
            missing = sorted(required - set(kwargs))
            raise _DecodeError(f"field(s) {', '.join(missing)} in {label}")
        return cls(**kwargs)

    result = (encode, decode)
    _CACHE[cls] = result
    _FAST[decode] = decode_fast
    return result


def _identity(value: Any) -> Any:
    return value


def _generate(cls: type, compiled: list[tuple[str, _Encode, _Decode]]) -> tuple[_Encode, _Decode]:
    """Straight-line encode and fast-decode functions for ``cls``, generated once.

    Why generate code (as :mod:`dataclasses` itself does): a frozen dataclass ``__init__`` sets every
    field through ``object.__setattr__`` (about 0.3 us each), which made unlocking a 1,000-server
    state spend more time building records than parsing its JSON. The fast decoder fills a *builder*:
    a plain class with exactly the record's slots, whose attribute stores are cheap, and then turns
    it into the record by assigning ``__class__`` (allowed because both classes have the same slot
    layout, and checked once here). The result is an ordinary frozen record. String fields are
    checked inline. The source is built only from the record's own field names (checked to be
    identifiers), never from data.
    """
    names = [name for name, _, _ in compiled]
    for name in names:
        if not name.isidentifier():
            raise TypeError(f"record field {name!r} of {cls.__name__} is not an identifier")
    if tuple(getattr(cls, "__slots__", ())) != tuple(names):
        raise TypeError(f"record {cls.__name__} must be a slotted dataclass whose slots are its fields")
    builder = type(f"{cls.__name__}Builder", (), {"__slots__": tuple(names)})
    scope: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "Builder": builder,
        "Miss": _DecodeError,
        "expected_count": len(compiled),
    }
    enc_parts: list[str] = []
    dec_lines = [
        "def decode_fast(data):",
        "    if len(data) != expected_count:",
        "        raise KeyError",
        "    o = new(Builder)",
    ]
    for index, (name, enc, dec) in enumerate(compiled):
        scope[f"enc{index}"] = enc
        enc_parts.append(f"{name!r}: o.{name}" if enc is _identity else f"{name!r}: enc{index}(o.{name})")
        dec_lines += _decode_lines(index, name, dec, scope)
    dec_lines += ["    o.__class__ = cls", "    return o"]
    source = "def encode(o):\n    return {" + ", ".join(enc_parts) + "}\n\n" + "\n".join(dec_lines) + "\n"
    exec(compile(source, f"<legion state codec {cls.__name__}>", "exec"), scope)  # noqa: S102 - see docstring
    probe: Any = object.__new__(builder)
    probe.__class__ = cls  # raises TypeError now, at import, if the layouts ever stop matching
    return scope["encode"], scope["decode_fast"]


def _compile(tp: Any) -> tuple[_Encode, _Decode]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return _identity, _identity
    if tp is str:
        return _identity, _DECODE_STR
    if tp is int or tp is float or tp is bool:
        return _identity, _scalar_decoder(tp)
    if tp is dt.datetime:
        return _encode_time, _decode_time
    if tp is Decimal:
        return str, _decode_decimal
    if _is_record(tp):
        return _compile_record(tp)
    if origin is typing.Literal:
        return _identity, _literal_decoder(args)
    if origin is types.UnionType or origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"only 'X | None' unions are supported, not {tp}")
        return _optional(*_compile(inner[0]))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(*_compile(args[0]), members=_is_record(args[0]))
    if origin in (Mapping, dict, typing.Mapping) and args and args[0] is str:
        return _mapping(*_compile(args[1]), members=_is_record(args[1]))
    raise TypeError(f"the state codec cannot handle the type {tp!r}")


def _is_record(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and isinstance(tp, type)


def _scalar_decoder(tp: type) -> _Decode:
    expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[tp]
    if tp is float:

        def decode_float(value: Any) -> Any:
            if type(value) is float or type(value) is int:
                return float(value)
            raise _DecodeError(expected)

        return decode_float

    def decode(value: Any) -> Any:
        # ``type(...) is`` and not isinstance: a bool is not an integer here.
        if type(value) is tp:
            return value
        raise _DecodeError(expected)

    return decode


def _decode_lines(index: int, name: str, dec: _Decode, scope: dict[str, Any]) -> list[str]:
    """The generated lines that decode field ``name`` from ``data`` into the builder ``o``."""
    key = repr(name)
    inner = _OPTIONAL_OF.get(dec)
    if dec is _DECODE_STR:
        return [
            f"    v = data[{key}]",
            "    if type(v) is not str:",
            "        raise Miss('a string')",
            f"    o.{name} = v",
        ]
    if inner is _DECODE_STR:
        return [
            f"    v = data[{key}]",
            "    if v is not None and type(v) is not str:",
            "        raise Miss('a string or null')",
            f"    o.{name} = v",
        ]
    if inner is not None:
        scope[f"dec{index}"] = _FAST.get(inner, inner)
        return [f"    v = data[{key}]", f"    o.{name} = None if v is None else dec{index}(v)"]
    scope[f"dec{index}"] = _FAST.get(dec, dec)
    return [f"    o.{name} = dec{index}(data[{key}])"]


def _decode_str(value: Any) -> Any:
    if type(value) is str:
        return value
    raise _DecodeError("a string")


_DECODE_STR = _decode_str


def _literal_decoder(choices: tuple[Any, ...]) -> _Decode:
    allowed = frozenset(choices)
    expected = "one of " + ", ".join(sorted(repr(c) for c in choices))

    def decode(value: Any) -> Any:
        if type(value) is str and value in allowed:
            return value
        raise _DecodeError(expected)

    return decode


def _optional(enc: _Encode, dec: _Decode) -> tuple[_Encode, _Decode]:
    def encode(value: Any) -> Any:
        return None if value is None else enc(value)

    def decode(value: Any) -> Any:
        return None if value is None else dec(value)

    _OPTIONAL_OF[decode] = dec
    return encode, decode


def _sequence(enc: _Encode, dec: _Decode, *, members: bool) -> tuple[_Encode, _Decode]:
    def encode(value: Any) -> Any:
        memo = _MEMO.get() if members else None
        if memo is None:
            return [enc(v) for v in value]
        member = memo.member
        return [member(v, enc) for v in value]

    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _DecodeError("a list")
        if dec is _DECODE_STR:
            for item in value:  # a plain loop: much cheaper than all(<genexpr>) on short lists
                if type(item) is not str:
                    break
            else:
                return tuple(value)
        else:
            try:
                return tuple([dec(item) for item in value])
            except _DecodeError:
                pass  # found again below, with its index
        for index, item in enumerate(value):
            try:
                dec(item)
            except _DecodeError as exc:
                exc.path.append(str(index))
                raise
        raise AssertionError("unreachable: a bad item was not found twice")  # pragma: no cover

    if enc is _identity:
        return tuple, decode
    return encode, decode


def _mapping(enc: _Encode, dec: _Decode, *, members: bool) -> tuple[_Encode, _Decode]:
    def encode(value: Any) -> Any:
        memo = _MEMO.get() if members else None
        if memo is None:
            return {k: enc(v) for k, v in value.items()}
        member = memo.member
        return {k: member(v, enc) for k, v in value.items()}

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise _DecodeError("an object")
        if dec is _DECODE_STR:
            for item in value.values():  # a plain loop: much cheaper than all(<genexpr>) on short dicts
                if type(item) is not str:
                    break
            else:
                return FrozenDict(value)
        else:
            try:
                return FrozenDict({key: dec(item) for key, item in value.items()})
            except _DecodeError:
                pass  # found again below, with its key
        for key, item in value.items():
            try:
                dec(item)
            except _DecodeError as exc:
                exc.path.append(key)
                raise
        raise AssertionError("unreachable: a bad item was not found twice")  # pragma: no cover

    if enc is _identity:
        return _identity, decode  # a FrozenDict is a dict to the JSON writer
    return encode, decode


def _encode_time(value: dt.datetime) -> str:
    return value.isoformat()


def _decode_time(value: Any) -> dt.datetime:
    if type(value) is str:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass  # reported below with the field path
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    raise _DecodeError("an ISO 8601 time")


def _decode_decimal(value: Any) -> Decimal:
    if type(value) is str:
        try:
            return Decimal(value)
        except InvalidOperation:
            pass  # reported below with the field path
    raise _DecodeError("a decimal number as a string")
