"""Turning JSON back into the engine's typed results, driven by the declared type.

The daemon sends a result as :func:`legion_nb.engine.wire.to_jsonable` made it; the client knows
the method's declared return type (:func:`legion_nb.engine.surface.result_type`) and rebuilds the
same value from it: dataclasses field by field (keys a record's ``to_json`` adds, such as a
diff's counts, are ignored), tuples as tuples, dates as datetimes, ``TypedDict`` results key by
key. So a result compares equal whether it came from an in-process engine or through a daemon.

The rules follow the types the engine API uses: ``None``, ``bool``, ``int``, ``float``, ``str``,
``Any``, ``Literal``, unions (``X | None`` and the like), ``list``/``Sequence``, ``tuple`` (fixed
or ``X, ...``), ``dict``/``Mapping``, ``frozenset``/``set``, ``TypedDict``, dataclasses, classes
with ``fromisoformat`` (dates), and any other class built from its JSON value (``Path``, enums).
Anything that does not fit raises :class:`ResultShapeError`.

Each type's decoder is built once and kept, so decoding a reply costs one pass over it (a status
decodes in tens of microseconds). This module imports nothing but :mod:`typing` and :mod:`types`:
the warm CLI path uses it.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable
from typing import Any

from legion_nb.errors import DaemonProtocolError

__all__ = ["ResultShapeError", "from_jsonable"]


class ResultShapeError(DaemonProtocolError):
    """A reply does not have the shape of the method's declared result (client and daemon differ)."""

    code = "result_shape"


_SEQUENCES = (list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_SETS = (frozenset, set, collections.abc.Set, collections.abc.MutableSet)
_UNIONS = (typing.Union, types.UnionType)

Decoder = Callable[[Any], Any]


class _Mismatch(Exception):
    """A value that does not fit its type; ``path`` grows as the error leaves nested decoders."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def at(self, step: str) -> _Mismatch:
        self.path = step + self.path
        return self


def from_jsonable(value: Any, tp: Any, *, where: str = "result") -> Any:
    """``value`` (JSON types) as an instance of ``tp``; :class:`ResultShapeError` if it is not one."""
    try:
        return decoder_for(tp)(value)
    except _Mismatch as exc:
        raise ResultShapeError(
            f"the daemon's {where} does not match its declared type ({where}{exc.path}: {exc.message}): "
            "upgrade the client and the daemon together"
        ) from None


_decoders: dict[Any, Decoder] = {}


def decoder_for(tp: Any) -> Decoder:
    """The decoder of ``tp``, built at its first use and kept."""
    found = _decoders.get(tp)
    if found is None:
        found = _decoders[tp] = _build(tp)
    return found


def _build(tp: Any) -> Decoder:
    if tp is Any or tp is object:
        return _same
    if tp is None or tp is type(None):
        return _null
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _UNIONS:
        return _union(args)
    if origin is typing.Literal:
        return _literal(args)
    if origin is not None or tp in _SEQUENCES or tp in _MAPPINGS or tp in _SETS or tp is tuple:
        return _generic(origin or tp, args)
    if tp in (bool, int, float, str):
        return _scalar(tp)
    if typing.is_typeddict(tp):
        return _typeddict(tp)
    if getattr(tp, "__dataclass_fields__", None) is not None:
        return _dataclass(tp)
    if isinstance(tp, type):
        return _constructed(tp)
    raise TypeError(f"no decoder for {tp!r}")  # a type the engine API does not use: a bug here


def _same(value: Any) -> Any:
    return value


def _null(value: Any) -> None:
    if value is not None:
        raise _Mismatch(f"expected null, got {type(value).__name__}")


def _union(args: tuple[Any, ...]) -> Decoder:
    options = [a for a in args if a is not type(None)]
    nullable = len(options) < len(args)
    if len(options) == 1:
        only = decoder_for(options[0])
        return (lambda v: None if v is None else only(v)) if nullable else only

    def decode(value: Any) -> Any:
        if value is None and nullable:
            return None
        failures: list[str] = []
        for option in options:
            try:
                return decoder_for(option)(value)
            except _Mismatch as exc:
                failures.append(f"{exc.path.lstrip('.')}: {exc.message}" if exc.path else exc.message)
        raise _Mismatch("; ".join(failures))

    return decode


def _literal(args: tuple[Any, ...]) -> Decoder:
    def decode(value: Any) -> Any:
        if value not in args:
            raise _Mismatch(f"{value!r} is not one of {list(args)!r}")
        return value

    return decode


def _scalar(tp: type) -> Decoder:
    name = tp.__name__

    def decode(value: Any) -> Any:
        kind = type(value)
        if kind is tp:
            return value
        if tp is float and kind is int:
            return float(value)  # JSON writes 2.0 as 2
        raise _Mismatch(f"expected {name}, got {kind.__name__}")

    return decode


def _items(value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Mismatch(f"expected a list, got {type(value).__name__}")
    return value


def _each(value: Any, item: Decoder) -> list[Any]:
    out = []
    for i, v in enumerate(_items(value)):
        try:
            out.append(item(v))
        except _Mismatch as exc:
            raise exc.at(f"[{i}]") from None
    return out


def _generic(origin: Any, args: tuple[Any, ...]) -> Decoder:
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = decoder_for(args[0])
            return lambda v: tuple(_each(v, item))
        if not args:
            return lambda v: tuple(_items(v))
        return _fixed_tuple([decoder_for(a) for a in args])
    if origin in _SEQUENCES:
        item = decoder_for(args[0] if args else Any)
        return (lambda v: list(_items(v))) if item is _same else (lambda v: _each(v, item))
    if origin in _SETS:
        item = decoder_for(args[0] if args else Any)
        return lambda v: frozenset(_each(v, item))
    if origin in _MAPPINGS:
        key_type, value_type = args if args else (Any, Any)
        return _mapping(decoder_for(key_type), decoder_for(value_type), key_type in (str, Any))
    raise TypeError(f"no decoder for {origin!r}")


def _fixed_tuple(items: list[Decoder]) -> Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        got = _items(value)
        if len(got) != len(items):
            raise _Mismatch(f"expected {len(items)} items, got {len(got)}")
        out = []
        for i, (v, item) in enumerate(zip(got, items, strict=True)):
            try:
                out.append(item(v))
            except _Mismatch as exc:
                raise exc.at(f"[{i}]") from None
        return tuple(out)

    return decode


def _mapping(key: Decoder, item: Decoder, plain_keys: bool) -> Decoder:
    def decode(value: Any) -> dict[Any, Any]:
        if type(value) is not dict:
            raise _Mismatch(f"expected an object, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            try:
                out[k if plain_keys else key(k)] = item(v)
            except _Mismatch as exc:
                raise exc.at(f"[{k!r}]") from None
        return out

    return decode


def _fields(value: Any, name: str, decoders: dict[str, Decoder], keep_others: bool) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Mismatch(f"expected an object for {name}, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        decode = decoders.get(k)
        if decode is None:
            if keep_others:
                out[k] = v
            continue
        try:
            out[k] = decode(v)
        except _Mismatch as exc:
            raise exc.at(f".{k}") from None
    return out


def _typeddict(tp: Any) -> Decoder:
    """A ``TypedDict`` key by key; its required keys are read from the resolved hints, as
    ``__required_keys__`` cannot see ``NotRequired`` through postponed (string) annotations."""
    decoders: dict[str, Decoder] = {}
    required: set[str] = set()

    def decode(value: Any) -> dict[str, Any]:
        if not decoders:
            _typeddict_fields(tp, decoders, required)
        out = _fields(value, tp.__name__, decoders, keep_others=True)
        if not required <= out.keys():
            raise _Mismatch(f"{tp.__name__} lacks {', '.join(sorted(required - out.keys()))}")
        return out

    return decode


def _typeddict_fields(tp: Any, decoders: dict[str, Decoder], required: set[str]) -> None:
    for name, declared in typing.get_type_hints(tp, include_extras=True).items():
        origin = typing.get_origin(declared)
        wrapped = origin is typing.NotRequired or origin is typing.Required
        if origin is typing.Required or (origin is not typing.NotRequired and tp.__total__):
            required.add(name)
        decoders[name] = decoder_for(typing.get_args(declared)[0] if wrapped else declared)


def _dataclass(tp: Any) -> Decoder:
    """A record field by field (its ``init`` fields; other keys, e.g. computed ones, are ignored).
    Field decoders are built at the first decode, so a record may contain itself."""
    decoders: dict[str, Decoder] = {}

    def decode(value: Any) -> Any:
        if not decoders:
            hints = typing.get_type_hints(tp)
            for name, spec in tp.__dataclass_fields__.items():
                if spec.init:
                    decoders[name] = decoder_for(hints[name])
        try:
            return tp(**_fields(value, tp.__name__, decoders, keep_others=False))
        except (TypeError, ValueError) as exc:  # a required field missing, or refused by the record
            raise _Mismatch(f"{tp.__name__}: {exc}") from None

    return decode


def _constructed(tp: type) -> Decoder:
    """Dates from ISO text; other classes (``Path``, enums) from their JSON value."""
    build: Callable[[Any], Any] = getattr(tp, "fromisoformat", None) or tp

    def decode(value: Any) -> Any:
        if isinstance(value, tp):
            return value
        try:
            return build(value)
        except (TypeError, ValueError) as exc:
            raise _Mismatch(f"not a {tp.__name__}: {exc}") from None

    return decode
