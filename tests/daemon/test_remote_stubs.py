"""The daemon clients' typed stubs declare what :class:`EngineAPI` declares, so the two cannot drift.

``RemoteAPI`` repeats each API method by hand (the typed client a notebook and the CLI call through
the daemon). mypy only checks that a stub is *compatible* with the protocol: a wider parameter, a
different default or a renamed keyword would pass it and still surprise whoever switches from
``legion_nb.open`` to ``legion_nb.connect``. Here every ``@engine_api`` method must have its own
stub whose parameter names, kinds, defaults and resolved annotations, and whose return annotation,
equal the protocol's; the in-process ``Engine``'s methods are held to the same.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import typing
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from legion_nb.engine import surface
from legion_nb.engine.api import public_methods
from legion_nb.engine.daemon import remote_api
from legion_nb.engine.daemon.client import RemoteEngine
from legion_nb.engine.daemon.remote_api import RemoteAPI
from legion_nb.engine.daemon.syncclient import BlockingRemote
from legion_nb.engine.diff import Diff
from legion_nb.engine.events import Event
from legion_nb.engine.reports import MaterializeReport, RefreshResult, ServerCommandResult
from legion_nb.engine.runbooks.records import RunRecord
from legion_nb.engine.runtime import Engine
from legion_nb.engine.state import model
from legion_nb.engine.surface import EngineAPI, api_methods

_TYPE_ONLY: dict[str, Any] = {
    # What surface.py and remote_api.py import only under TYPE_CHECKING.
    "dt": dt,
    "os": os,
    "pd": pd,
    "Diff": Diff,
    "Event": Event,
    "MaterializeReport": MaterializeReport,
    "RefreshResult": RefreshResult,
    "ServerCommandResult": ServerCommandResult,
    "RunRecord": RunRecord,
    **{name: getattr(model, name) for name in dir(model) if name.startswith("Planned")},
    "Scheme": model.Scheme,
}


def _hints(fn: Callable[..., Any], module: ModuleType) -> dict[str, Any]:
    return typing.get_type_hints(fn, globalns={**_TYPE_ONLY, **vars(module)})


def drift(
    stub: Callable[..., Any], stub_module: ModuleType, declared: Callable[..., Any], module: ModuleType
) -> list[str]:
    """Every way ``stub``'s signature differs from ``declared``'s, one readable line each."""
    found: list[str] = []
    ours, theirs = inspect.signature(stub).parameters, inspect.signature(declared).parameters
    if list(ours) != list(theirs):
        found.append(f"parameters {list(ours)} != declared {list(theirs)}")
    ours_hints, theirs_hints = _hints(stub, stub_module), _hints(declared, module)
    for name in [n for n in theirs if n in ours]:
        mine, want = ours[name], theirs[name]
        if mine.kind != want.kind:
            found.append(f"{name}: kind {mine.kind.description} != declared {want.kind.description}")
        if mine.default != want.default:
            found.append(f"{name}: default {mine.default!r} != declared {want.default!r}")
        if ours_hints.get(name) != theirs_hints.get(name):
            found.append(f"{name}: annotation {ours_hints.get(name)} != declared {theirs_hints.get(name)}")
    if ours_hints.get("return") != theirs_hints.get("return"):
        found.append(f"return {ours_hints.get('return')} != declared {theirs_hints.get('return')}")
    if inspect.iscoroutinefunction(stub) != inspect.iscoroutinefunction(declared):
        found.append("one is async and the other is not")
    return found


def test_the_stubs_cover_exactly_the_engine_api() -> None:
    assert public_methods(Engine) == api_methods()
    # Each stub is RemoteAPI's own: a method only inherited from the protocol would return None.
    missing = sorted(name for name in api_methods() if name not in vars(RemoteAPI))
    assert missing == []
    # The transports add no API method of their own that could shadow a stub.
    for client in (RemoteEngine, BlockingRemote):
        assert sorted(api_methods() & set(vars(client))) == []


@pytest.mark.parametrize("name", sorted(api_methods()))
def test_the_stub_declares_what_the_protocol_declares(name: str) -> None:
    stub, declared = vars(RemoteAPI)[name], vars(EngineAPI)[name]
    assert drift(stub, remote_api, declared, surface) == []


@pytest.mark.parametrize("name", sorted(api_methods()))
def test_the_engine_declares_what_the_protocol_declares(name: str) -> None:
    """The in-process engine too: ``open`` and ``connect`` take the same arguments."""
    method = inspect.unwrap(getattr(Engine, name))  # under the redaction wrapper of @engine_api
    module = inspect.getmodule(method)
    assert module is not None
    assert drift(method, module, vars(EngineAPI)[name], surface) == []


class _Declared:
    async def read(self, name: str, *, limit: int = 10, since: dt.timedelta | None = None) -> list[str]: ...


class _Drifted:
    async def read(self, name: str, limit: int = 20, *, since: float | None = None) -> list[int]: ...


def test_drift_names_every_difference() -> None:
    here = inspect.getmodule(_Declared)
    assert here is not None
    found = drift(_Drifted.read, here, _Declared.read, here)
    assert found == [
        "limit: kind positional or keyword != declared keyword-only",
        "limit: default 20 != declared 10",
        "since: annotation float | None != declared datetime.timedelta | None",
        "return list[int] != declared list[str]",
    ]
    assert drift(_Declared.read, here, _Declared.read, here) == []
