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

This module imports nothing but :mod:`typing` and :mod:`types`: the warm CLI path uses it.
"""

from __future__ import annotations

import collections.abc
import types
import typing
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
_hints: dict[Any, dict[str, Any]] = {}
_typeddicts: dict[Any, tuple[dict[str, Any], frozenset[str]]] = {}


def from_jsonable(value: Any, tp: Any, *, where: str = "result") -> Any:
    """``value`` (JSON types) as an instance of ``tp``; :class:`ResultShapeError` if it is not one."""
    try:
        return _decode(value, tp, where)
    except (TypeError, ValueError, KeyError) as exc:
        raise ResultShapeError(
            f"the daemon's {where} does not match its declared type ({exc}): "
            "upgrade the client and the daemon together"
        ) from exc


def _decode(value: Any, tp: Any, where: str) -> Any:
    if tp is Any or tp is object:
        return value
    if tp is None or tp is type(None):
        if value is not None:
            raise TypeError(f"{where}: expected null, got {type(value).__name__}")
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _UNIONS:
        return _union(value, args, where)
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {list(args)!r}")
        return value
    if origin is not None:
        return _generic(value, origin, args, where)
    if tp in (bool, int, float, str):
        return _scalar(value, tp, where)
    if typing.is_typeddict(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object for {tp.__name__}, got {type(value).__name__}")
        hints, required = _typeddict_keys(tp)
        missing = required - value.keys()
        if missing:
            raise KeyError(f"{where}: {tp.__name__} lacks {', '.join(sorted(missing))}")
        return {k: _decode(v, hints[k], f"{where}.{k}") if k in hints else v for k, v in value.items()}
    fields = getattr(tp, "__dataclass_fields__", None)
    if fields is not None:
        return _dataclass(value, tp, fields, where)
    if tp in _SEQUENCES or tp in _MAPPINGS or tp in _SETS or tp is tuple:
        return _generic(value, tp, (), where)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        fromisoformat = getattr(tp, "fromisoformat", None)
        if fromisoformat is not None and isinstance(value, str):
            return fromisoformat(value)
        return tp(value)  # Path, enums: the class is built from its JSON value
    raise TypeError(f"{where}: cannot decode into {tp!r}")


def _union(value: Any, args: tuple[Any, ...], where: str) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    failures: list[str] = []
    for option in options:
        try:
            return _decode(value, option, where)
        except (TypeError, ValueError, KeyError) as exc:
            failures.append(str(exc))
    raise TypeError("; ".join(failures) or f"{where}: no type of the union fits")


def _generic(value: Any, origin: Any, args: tuple[Any, ...], where: str) -> Any:
    if origin is tuple:
        items = _items(value, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(v, args[0], f"{where}[{i}]") for i, v in enumerate(items))
        if not args:
            return tuple(items)
        if len(args) != len(items):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(items)}")
        return tuple(_decode(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(items, args, strict=True)))
    if origin in _SEQUENCES:
        item = args[0] if args else Any
        return [_decode(v, item, f"{where}[{i}]") for i, v in enumerate(_items(value, where))]
    if origin in _SETS:
        item = args[0] if args else Any
        return frozenset(_decode(v, item, f"{where}[]") for v in _items(value, where))
    if origin in _MAPPINGS:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        key_type, item = args if args else (Any, Any)
        return {
            _decode(k, key_type, f"{where} key"): _decode(v, item, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    raise TypeError(f"{where}: cannot decode into {origin!r}")


def _items(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _scalar(value: Any, tp: type, where: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # JSON writes 2.0 as 2
    if isinstance(value, tp) and (tp is bool or not isinstance(value, bool)):
        return value
    raise TypeError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")


def _dataclass(value: Any, tp: type, fields: dict[str, Any], where: str) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"{where}: expected an object for {tp.__name__}, got {type(value).__name__}")
    hints = _type_hints(tp)
    kwargs = {
        name: _decode(value[name], hints[name], f"{where}.{name}")
        for name, spec in fields.items()
        if spec.init and name in value
    }
    return tp(**kwargs)


def _typeddict_keys(tp: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """A ``TypedDict``'s field types and its required keys.

    Read from the resolved hints rather than ``__required_keys__``, which cannot see
    ``NotRequired`` through postponed (string) annotations.
    """
    found = _typeddicts.get(tp)
    if found is None:
        hints: dict[str, Any] = {}
        required: set[str] = set()
        for name, declared in typing.get_type_hints(tp, include_extras=True).items():
            origin = typing.get_origin(declared)
            wrapped = origin is typing.NotRequired or origin is typing.Required
            if origin is typing.Required or (origin is not typing.NotRequired and tp.__total__):
                required.add(name)
            hints[name] = typing.get_args(declared)[0] if wrapped else declared
        found = _typeddicts[tp] = (hints, frozenset(required))
    return found


def _type_hints(tp: Any) -> dict[str, Any]:
    hints = _hints.get(tp)
    if hints is None:
        hints = _hints[tp] = typing.get_type_hints(tp)
    return hints
