"""Marking the engine's public surface.

The CLI, the daemon and the notebook panels all drive the same engine. Which of its methods they
may call is not a naming convention but an explicit list: a method becomes public by being
decorated with :func:`engine_api`. The daemon's ``call`` method accepts exactly these names and
nothing else, so adding a helper method to the engine never widens what a token holder can do.

Public methods are ``async``, take keyword arguments of JSON types (str, int, float, bool, None,
lists and dicts of those), and return JSON types or dataclasses that
:func:`legion_nb.engine.wire.to_jsonable` converts.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from legion_nb.engine.redaction import scrub_error
from legion_nb.errors import LegionError

__all__ = ["engine_api", "is_engine_api", "public_methods"]

_MARK = "__legion_engine_api__"

F = TypeVar("F", bound=Callable[..., Any])


def engine_api(fn: F) -> F:
    """Declare ``fn`` part of the engine's public, remotely callable surface.

    A coroutine method is wrapped so that a :class:`~legion_nb.errors.LegionError` leaving it is
    scrubbed of the unlocked state's secrets (message and cause chain, see
    :func:`legion_nb.engine.redaction.scrub_error`) before any caller prints or sends it.
    """
    if inspect.iscoroutinefunction(fn):
        original = fn

        @functools.wraps(original)
        async def scrubbed(*args: Any, **kwargs: Any) -> Any:
            try:
                return await original(*args, **kwargs)
            except LegionError as exc:
                raise scrub_error(exc)  # noqa: B904 - the same exception, re-raised scrubbed

        fn = cast(F, scrubbed)
    setattr(fn, _MARK, True)
    return fn


def is_engine_api(fn: object) -> bool:
    return bool(getattr(fn, _MARK, False))


def public_methods(cls: type) -> frozenset[str]:
    """Names of every method of ``cls`` (and its bases) decorated with :func:`engine_api`."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if not name.startswith("_") and is_engine_api(value):
                names.add(name)
    return frozenset(names)
