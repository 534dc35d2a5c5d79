"""The state codec written plainly, to show what the generated one in ``legion_nb.engine.state.codec`` buys.

Same JSON, same checks on every field, same records; what it leaves out is the codec's trick: no
generated code, no slotted builder turned into the record by assigning ``__class__``. Each record is
built by its own dataclass ``__init__`` from keyword arguments, and each field is encoded and decoded
by closures compiled once per type from the type hints (so the hot path has no reflection either).
``benchmarks/state.py`` times both side by side against the unlock goal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from legion_nb.readonly import FrozenDict

__all__ = ["BadValueError", "plain_codec"]

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


class BadValueError(ValueError):
    """A value that does not have its field's type."""


def _same(value: Any) -> Any:
    return value


def _exactly(tp: type) -> Decode:
    def decode(value: Any) -> Any:
        if type(value) is tp:  # a bool is not an integer here, as in the real codec
            return value
        raise BadValueError(f"expected {tp.__name__}")

    return decode


def _decode_float(value: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise BadValueError("expected a number")


def _decode_time(value: Any) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadValueError("expected an ISO 8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _decode_decimal(value: Any) -> Decimal:
    if type(value) is str:
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise BadValueError("expected a decimal number as a string")


def plain_codec(cls: type) -> tuple[Encode, Decode]:
    """``(encode, decode)`` of the record dataclass ``cls``: JSON types to and from records."""
    records: dict[type, tuple[Encode, Decode]] = {}

    def record(rc: type) -> tuple[Encode, Decode]:
        if rc in records:
            return records[rc]
        hints = typing.get_type_hints(rc)
        fields = [(f.name, *value(hints[f.name])) for f in dataclasses.fields(rc) if f.init]
        names = frozenset(name for name, _, _ in fields)

        def encode(o: Any) -> Any:
            return {name: enc(getattr(o, name)) for name, enc, _ in fields}

        def decode(data: Any) -> Any:
            if type(data) is not dict or not names.issuperset(data):
                raise BadValueError(f"expected an object ({rc.__name__}) without unknown fields")
            return rc(**{name: dec(data[name]) for name, _, dec in fields if name in data})

        records[rc] = (encode, decode)
        return encode, decode

    def value(tp: Any) -> tuple[Encode, Decode]:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is Any:
            return _same, _same
        if tp in (str, int, bool):
            return _same, _exactly(tp)
        if tp is float:
            return _same, _decode_float
        if tp is dt.datetime:
            return dt.datetime.isoformat, _decode_time
        if tp is Decimal:
            return str, _decode_decimal
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return record(tp)
        if origin is typing.Literal:
            return _same, _one_of(frozenset(args))
        if origin is types.UnionType or origin is typing.Union:
            return _optional(*value(next(a for a in args if a is not type(None))))
        if origin is tuple:
            return _sequence(*value(args[0]))
        if origin in (Mapping, dict):
            return _mapping(*value(args[1]))
        raise TypeError(f"the plain codec cannot handle the type {tp!r}")

    return record(cls)


def _one_of(allowed: frozenset[Any]) -> Decode:
    def decode(value: Any) -> Any:
        if type(value) is str and value in allowed:
            return value
        raise BadValueError(f"expected one of {sorted(allowed)}")

    return decode


def _optional(enc: Encode, dec: Decode) -> tuple[Encode, Decode]:
    return (lambda v: None if v is None else enc(v)), (lambda v: None if v is None else dec(v))


def _sequence(enc: Encode, dec: Decode) -> tuple[Encode, Decode]:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise BadValueError("expected a list")
        return tuple([dec(item) for item in value])

    return (lambda v: [enc(item) for item in v]), decode


def _mapping(enc: Encode, dec: Decode) -> tuple[Encode, Decode]:
    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise BadValueError("expected an object")
        return FrozenDict({key: dec(item) for key, item in value.items()})  # as records hold them

    return (lambda v: {key: enc(item) for key, item in v.items()}), decode
