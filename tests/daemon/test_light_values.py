"""The warm path's value classes behave as frozen dataclasses would, without importing them.

``Endpoint``, ``DaemonMetadata`` and ``Request`` are ``NamedTuple`` classes so that a daemon-served
command never imports ``dataclasses``; the endpoint hash comes from CPython's built-in SHA-256 rather
than ``hashlib`` (OpenSSL). These tests pin what a frozen dataclass would give: equality, hashing,
immutability, reprs without secrets, and the very same endpoint names.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
from pathlib import Path

import pytest

from legion_nb.cli.context import CliContext
from legion_nb.engine.daemon.endpoint import Endpoint, endpoint_for, state_identity, state_key
from legion_nb.engine.daemon.metadata import DaemonMetadata, read_metadata, write_metadata
from legion_nb.engine.daemon.protocol import Request

SECRET = "s3cr3t-" * 8


def test_the_state_key_is_the_sha256_hashlib_gives(tmp_path: Path) -> None:
    for name in ("a.legion", "b c.legion", "é\udcff.legion"):  # a lone surrogate: an undecodable name
        identity = state_identity(tmp_path / name).encode("utf-8", "surrogateescape")
        assert state_key(tmp_path / name) == hashlib.sha256(identity).hexdigest()[:16]


def test_an_endpoint_is_an_immutable_value(runtime_dir: Path, tmp_path: Path) -> None:
    endpoint = endpoint_for(tmp_path / "a.legion")
    twin = Endpoint(endpoint.kind, endpoint.address, endpoint.directory, endpoint.base)
    assert twin == endpoint and hash(twin) == hash(endpoint) and len({twin, endpoint}) == 1
    assert endpoint != endpoint_for(tmp_path / "b.legion") and endpoint != (endpoint.kind, endpoint.address)
    assert copy.copy(endpoint) == pickle.loads(pickle.dumps(endpoint)) == endpoint
    assert repr(endpoint).startswith(f"Endpoint(kind='unix', address={endpoint.address!r}")
    with pytest.raises(AttributeError):
        endpoint.address = "/elsewhere"
    with pytest.raises(AttributeError):
        del endpoint.kind
    with pytest.raises(AttributeError):
        endpoint.extra = 1


def test_metadata_is_an_immutable_value_that_round_trips(tmp_path: Path) -> None:
    metadata = DaemonMetadata("1.0", "/run/sock", 42, "2026-01-01T00:00:00Z")
    by_name = DaemonMetadata(version="1.0", endpoint="/run/sock", pid=42, created="2026-01-01T00:00:00Z")
    assert metadata == by_name
    assert hash(metadata) == hash(DaemonMetadata("1.0", "/run/sock", 42, "2026-01-01T00:00:00Z"))
    assert metadata != DaemonMetadata("1.0", "/run/sock", 43, "2026-01-01T00:00:00Z")
    assert repr(metadata) == (
        "DaemonMetadata(version='1.0', endpoint='/run/sock', pid=42, created='2026-01-01T00:00:00Z')"
    )
    assert copy.deepcopy(metadata) == pickle.loads(pickle.dumps(metadata)) == metadata
    with pytest.raises(AttributeError):
        metadata.pid = 1
    write_metadata(tmp_path / "daemon.json", metadata)
    assert (tmp_path / "daemon.json").read_bytes() == (
        b'{"created": "2026-01-01T00:00:00Z", "endpoint": "/run/sock", "pid": 42, "version": "1.0"}\n'
    )
    assert read_metadata(tmp_path / "daemon.json") == metadata


def test_a_request_compares_by_value_and_stays_unhashable() -> None:
    request = Request(id=1, method="status", params={}, token=SECRET)
    assert request == Request(1, "status", {}, SECRET)
    assert request != Request(1, "status", {}, SECRET + "x")
    with pytest.raises(TypeError):  # params is a dict, as with the frozen dataclass
        hash(request)
    assert copy.copy(request) == request
    with pytest.raises(AttributeError):
        request.token = "other"


def test_the_cli_context_repr_never_shows_the_daemon_token(tmp_path: Path) -> None:
    ctx = CliContext(state_path=tmp_path / "s.legion", json=True, daemon_token=SECRET)
    assert SECRET not in repr(ctx) and "json=True" in repr(ctx)
    assert ctx.token() == SECRET and ctx.password_stdin is False
    with pytest.raises(AttributeError):
        setattr(ctx, "unknown_option", 1)  # noqa: B010 - an attribute mypy rightly refuses
