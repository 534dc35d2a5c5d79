"""The Engine lifecycle, its guarded API, credentials and snapshot publication, on real state files."""

from __future__ import annotations

import asyncio
import gc
import inspect
import types
from pathlib import Path
from typing import Any

import orjson
import pytest

from legion_nb.engine.api import public_methods
from legion_nb.engine.node_terminals import TerminalSettings
from legion_nb.engine.runtime import Engine, create_engine
from legion_nb.engine.session import Session, SessionSettings
from legion_nb.engine.state.model import LegionState
from legion_nb.engine.wire import to_jsonable
from legion_nb.errors import (
    LockedError,
    StateExistsError,
    StateNotFoundError,
    UsageError,
    ValidationError,
    WrongPasswordError,
)

PASSWORD = "correct horse battery staple"  # the password of the ``engine`` fixture (conftest.py)

EXPECTED_API = {
    "bootstrap",
    "change_password",
    "credentials_set",
    "credentials_show",
    "diff",
    "logout",
    "plan_remove_dns_host",
    "plan_remove_dns_zone",
    "plan_remove_domain",
    "plan_remove_firewall",
    "plan_remove_server",
    "plan_show",
    "plan_upsert_dns_host",
    "plan_upsert_dns_zone",
    "plan_upsert_domain",
    "plan_upsert_firewall",
    "plan_upsert_server",
    "status",
    "unlock",
}


def test_the_public_surface_is_explicit_and_async() -> None:
    names = public_methods(Engine)
    assert names >= EXPECTED_API
    for name in names:
        assert inspect.iscoroutinefunction(getattr(Engine, name)), name
    assert "assert_unlocked" not in names and "add_service" not in names


async def test_locked_engine_refuses_guarded_calls(state_path: Path) -> None:
    engine = create_engine(state_path)
    assert not engine.is_unlocked
    for call in (
        engine.plan_show(),
        engine.diff(),
        engine.credentials_show(),
        engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner"),
    ):
        with pytest.raises(LockedError) as info:
            await call
        assert str(info.value) == "state is locked: unlock it first (legion ... / await engine.unlock(...))"
    status = await engine.status()
    assert (status["exists"], status["unlocked"]) == (False, False)
    with pytest.raises(StateNotFoundError):
        await engine.unlock(PASSWORD)
    await engine.aclose()


async def test_plan_survives_logout_and_unlock(engine: Engine, state_path: Path) -> None:
    await engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
    await engine.plan_upsert_server(name="web-1", provider="hetzner", location="fsn1")
    await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=["web-1"])
    await engine.plan_upsert_domain(name="example.org", provider="ovh")
    await engine.plan_upsert_firewall(
        name="edge",
        provider="hetzner",
        rules=["in tcp 22 0.0.0.0/0", {"direction": "in", "protocol": "icmp", "sources": ["::/0"]}],
        servers=["web-1"],
    )
    assert (await engine.logout())["unlocked"] is False
    assert not engine.is_unlocked
    with pytest.raises(WrongPasswordError):
        await engine.unlock("not the password")
    assert not engine.is_unlocked
    await engine.unlock(PASSWORD)
    scheme = to_jsonable(await engine.plan_show())
    assert scheme["clusters"]["default"]["servers"]["web-1"]["location"] == "fsn1"
    assert scheme["dns_hosts"]["www.example.org"]["servers"] == ["web-1"]
    assert len(scheme["firewalls"]["edge"]["rules"]) == 2
    status = await engine.status()
    assert status["counts"]["servers"] == 1 and status["counts"]["dns_zones"] == 1
    # the zone, server, domain, firewall "edge" and the derived cluster firewall, as diff counts them
    assert status["actions"] == {"create": 5} == (await engine.diff()).counts()
    with pytest.raises(StateExistsError):
        await create_engine(state_path).bootstrap(PASSWORD)


async def test_a_refused_plan_change_changes_nothing(engine: Engine) -> None:
    await engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
    revision = (await engine.status())["revision"]
    with pytest.raises(ValidationError, match="unplanned server"):
        await engine.plan_upsert_dns_host(host="www", zone="example.org", servers=["ghost"])
    with pytest.raises(ValidationError):
        await engine.plan_remove_server(name="ghost")
    assert (await engine.status())["revision"] == revision
    assert len((await engine.plan_show()).dns_hosts) == 0


async def test_remove_actions(engine: Engine) -> None:
    await engine.plan_upsert_server(name="a", provider="ovh")
    await engine.plan_upsert_dns_zone(zone="example.org", provider="ovh")
    await engine.plan_upsert_dns_host(host="@", zone="example.org", servers=["a"])
    await engine.plan_upsert_domain(name="example.org", provider="ovh")
    await engine.plan_upsert_firewall(name="fw", provider="ovh", servers=["a"])
    await engine.plan_remove_dns_host(host="@", zone="example.org")
    await engine.plan_remove_firewall(name="fw")
    await engine.plan_remove_server(name="a")
    await engine.plan_remove_dns_zone(zone="example.org")
    await engine.plan_remove_domain(name="example.org")
    assert (await engine.status())["actions"] == {}


async def test_credentials_are_stored_but_never_returned(engine: Engine) -> None:
    facts = await engine.credentials_set(
        provider="Hetzner", secrets={"token": "tok-SECRET-123"}, endpoint="http://127.0.0.1:8080/v1/"
    )
    assert facts == {"provider": "hetzner", "endpoint": "http://127.0.0.1:8080/v1", "fields": ["token"]}
    assert await engine.credentials_show() == [facts]
    assert "tok-SECRET-123" not in repr(to_jsonable(await engine.status()))
    assert engine.state.credentials["hetzner"].secrets["token"] == "tok-SECRET-123"
    with pytest.raises(ValidationError, match="scaleway credentials lack access_key, project_id"):
        await engine.credentials_set(provider="scaleway", secrets={"secret_key": "s"})
    with pytest.raises(ValidationError, match="must be an http"):
        await engine.credentials_set(provider="hetzner", secrets={"token": "t"}, endpoint="ftp://x")
    with pytest.raises(ValidationError, match="'token' must be a non-empty string") as info:
        await engine.credentials_set(provider="hetzner", secrets={"token": 12345})
    assert "12345" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("CANARY-tok-1 ", "leading or trailing spaces"),
        (" CANARY-tok-1", "leading or trailing spaces"),
        ("CANARY\ttok-1", "a control character"),
        ("CANARY-tok-1\r\n", "a control character"),
        ("CANARY-tök-1", "a non-ASCII character"),
    ],
)
async def test_credentials_that_no_http_header_can_carry_are_refused_without_the_value(
    engine: Engine, value: str, problem: str
) -> None:
    with pytest.raises(ValidationError, match=f"field 'token' holds {problem}") as info:
        await engine.credentials_set(provider="hetzner", secrets={"token": value})
    message = str(info.value)
    assert "CANARY" not in message and "tok-1" not in message
    assert "\n" not in message
    assert "hetzner" not in engine.state.credentials


async def test_change_password(engine: Engine, state_path: Path) -> None:
    with pytest.raises(WrongPasswordError):
        await engine.change_password(old="wrong password", new="another password")
    with pytest.raises(ValidationError, match="at least 8"):
        await engine.change_password(old=PASSWORD, new="short")
    await engine.change_password(old=PASSWORD, new="another password")
    await engine.logout()
    with pytest.raises(WrongPasswordError):
        await engine.unlock(PASSWORD)
    await engine.unlock("another password")
    assert engine.is_unlocked


async def test_bootstrap_refuses_weak_passwords_and_double_unlock(state_path: Path) -> None:
    engine = create_engine(state_path)
    with pytest.raises(ValidationError, match="at least 8 characters"):
        await engine.bootstrap("short")
    assert not state_path.exists()
    await engine.bootstrap(PASSWORD)
    with pytest.raises(UsageError, match="already unlocked"):
        await engine.bootstrap(PASSWORD)
    await engine.aclose()
    with pytest.raises(UsageError, match="closed"):
        await engine.unlock(PASSWORD)


# -- snapshots ----------------------------------------------------------------------------


async def test_a_burst_of_plan_changes_publishes_few_snapshots(engine: Engine) -> None:
    stream = engine.subscribe(["snapshot"])
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert first.data["locked"] is False and first.data["rows"] == []
    before = engine.events.publications
    await asyncio.gather(*(engine.plan_upsert_server(name=f"s{i}", provider="scaleway") for i in range(30)))
    event = await asyncio.wait_for(stream.__anext__(), 5)
    while len(event.data["rows"]) < 30:
        event = await asyncio.wait_for(stream.__anext__(), 5)
    published = engine.events.publications - before
    assert 1 <= published < 30  # coalesced: persistence batches the writes, the hub the publications
    assert {r["name"] for r in event.data["rows"]} >= {f"s{i}" for i in range(30)}
    await engine.logout()
    locked = await asyncio.wait_for(stream.__anext__(), 5)
    assert (locked.data["locked"], locked.data["revision"], locked.data["rows"]) == (True, None, [])
    await stream.aclose()


async def test_services_follow_the_lock(state_path: Path) -> None:
    calls: list[str] = []

    class Recorder:
        """An extra session service: built from the session's ports, entered at unlock."""

        def __init__(self, session: Session) -> None:
            self._state = session.persistence

        async def __aenter__(self) -> Recorder:
            calls.append(f"start unlocked={isinstance(self._state.state, LegionState)}")
            return self

        async def __aexit__(self, *_: object) -> None:
            calls.append("stop")

    engine = create_engine(state_path, SessionSettings(services=(Recorder,)))
    await engine.bootstrap(PASSWORD)
    await engine.logout()
    await engine.aclose()
    assert calls == ["start unlocked=True", "stop"]


async def test_use_settings_rebuilds_the_services_on_the_unlocked_state(state_path: Path) -> None:
    calls: list[str] = []

    class Recorder:
        def __init__(self, session: Session) -> None:
            self._port = session.terminals.settings.ssh_port

        async def __aenter__(self) -> Recorder:
            calls.append(f"start {self._port}")
            return self

        async def __aexit__(self, *_: object) -> None:
            calls.append(f"stop {self._port}")

    def on_port(port: int) -> SessionSettings:
        return SessionSettings(terminals=TerminalSettings(ssh_port=port), services=(Recorder,))

    engine = create_engine(state_path, SessionSettings(services=(Recorder,)))
    await engine.bootstrap(PASSWORD)
    try:
        await engine.plan_upsert_dns_zone(zone="example.org", provider="hetzner")
        revision = (await engine.status())["revision"]
        resources = engine.settings.resources
        await engine.use_settings(
            SessionSettings(terminals=TerminalSettings(ssh_port=2222), services=(Recorder,))
        )
        # no password was needed: the same unlocked state, every service built again from the new settings
        assert engine.is_unlocked and calls == ["start 22", "stop 22", "start 2222"]
        assert engine.settings.resources is resources, "settings without resources keep the engine's"
        assert (await engine.status())["revision"] == revision
        assert "example.org" in (await engine.plan_show()).dns_zones
        await engine.plan_upsert_dns_zone(zone="example.net", provider="hetzner")  # the store still saves
        await engine.logout()
        await engine.use_settings(
            SessionSettings(terminals=TerminalSettings(ssh_port=2223), services=(Recorder,))
        )
        assert not engine.is_unlocked, "a locked engine stays locked and uses the settings at its next unlock"
        await engine.unlock(PASSWORD)
        assert {"example.org", "example.net"} <= set((await engine.plan_show()).dns_zones)
        assert calls[-2:] == ["stop 2222", "start 2223"]
    finally:
        await engine.aclose()
    with pytest.raises(UsageError, match="this engine is closed"):
        await engine.use_settings(SessionSettings())


# -- nothing secret survives logout -------------------------------------------------------


def _reachable_secrets(root: object, needles: list[bytes]) -> list[str]:
    """Walk everything reachable from ``root`` (not through modules, classes, code or the loop)
    and report any str/bytes holding one of ``needles``."""
    found: list[str] = []
    seen: set[int] = set()
    stack: list[Any] = [root]
    skip = (
        types.ModuleType,
        type,
        types.CodeType,
        types.FunctionType,
        types.BuiltinFunctionType,
        asyncio.AbstractEventLoop,
    )
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            data = obj.encode("utf-8", "surrogatepass")
        elif isinstance(obj, bytes | bytearray | memoryview):
            data = bytes(obj)
        elif isinstance(obj, orjson.Fragment):  # pre-encoded JSON the state writer keeps: opaque to gc
            data = orjson.dumps(obj)
        else:
            data = None
        if data is not None:
            found.extend(repr(obj)[:40] for n in needles if n in data)
            continue
        if isinstance(obj, types.FunctionType):
            stack.extend(c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not None)
            continue
        if isinstance(obj, skip):
            continue
        stack.extend(gc.get_referents(obj))
        if hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in _slots(type(obj)) if hasattr(obj, s))
    return found


def _slots(cls: type) -> list[str]:
    return [s for k in cls.__mro__ for s in getattr(k, "__slots__", ()) if isinstance(s, str)]


async def test_logout_leaves_no_secret_reachable(engine: Engine) -> None:
    secret_token = "tok-PLANTED-a81f3c"
    await engine.credentials_set(
        provider="ovh",
        secrets={"application_key": "ak", "application_secret": secret_token, "consumer_key": "ck"},
    )
    stream = engine.subscribe()
    await asyncio.wait_for(stream.__anext__(), 5)
    # Collect every key-sized bytes object reachable while unlocked: the store's keys among them.
    key_material = [
        bytes(o)
        for o in gc.get_referents(*_all_reachable(engine))
        if isinstance(o, bytes | bytearray) and 16 <= len(o) <= 64 and any(o)
    ]
    assert any(len(k) == 32 for k in key_material), "the walk must see the store's 256-bit key while unlocked"
    needles = [PASSWORD.encode(), secret_token.encode(), *key_material]
    assert _reachable_secrets(engine, [secret_token.encode()]), "the walk must see secrets while unlocked"
    await engine.logout()
    gc.collect()
    assert _reachable_secrets(engine, needles) == []
    assert _reachable_secrets(stream, needles) == []
    await stream.aclose()


def _all_reachable(root: object) -> list[object]:
    out: list[object] = []
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack and len(out) < 200_000:
        obj = stack.pop()
        if id(obj) in seen or isinstance(
            obj, types.ModuleType | type | types.CodeType | asyncio.AbstractEventLoop
        ):
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, types.FunctionType):
            stack.extend(c.cell_contents for c in obj.__closure__ or ())
            continue
        stack.extend(gc.get_referents(obj))
        if hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in _slots(type(obj)) if hasattr(obj, s))
    return out


# -- unlocking an unlocked engine ---------------------------------------------------------


async def test_a_wrong_password_on_an_unlocked_engine_keeps_the_session(engine: Engine) -> None:
    # Before: unlock logged out first, so a wrong password through the daemon locked everyone out.
    await engine.plan_upsert_server(name="alpha", provider="hetzner")
    revision = (await engine.status())["revision"]
    with pytest.raises(WrongPasswordError):
        await engine.unlock("not the password")
    assert engine.is_unlocked
    assert (await engine.status())["revision"] == revision
    assert "alpha" in engine.state.scheme.clusters["default"].servers
    result = await engine.unlock(PASSWORD)  # the right one: checked, the session simply goes on
    assert result["unlocked"] is True and result["revision"] == revision


async def test_unlocking_again_loads_what_another_process_saved(engine: Engine, state_path: Path) -> None:
    other = create_engine(state_path)
    await other.unlock(PASSWORD)
    await other.plan_upsert_server(name="beta", provider="scaleway")
    await other.aclose()
    assert "default" not in engine.state.scheme.clusters
    await engine.unlock(PASSWORD)
    assert "beta" in engine.state.scheme.clusters["default"].servers
    await engine.plan_upsert_server(name="gamma", provider="hetzner")  # and it writes on top of it


async def test_two_engines_on_one_state_both_land_their_plans(engine: Engine, state_path: Path) -> None:
    # Before: the engine that wrote second failed with StateConflictError on every later change.
    other = create_engine(state_path)
    await other.unlock(PASSWORD)
    await other.plan_upsert_server(name="beta", provider="scaleway")
    await engine.plan_upsert_server(name="gamma", provider="hetzner")
    assert set(engine.state.scheme.clusters["default"].servers) == {"beta", "gamma"}
    await other.plan_upsert_server(name="delta", provider="ovh")
    assert set(other.state.scheme.clusters["default"].servers) == {"beta", "gamma", "delta"}
    await other.aclose()
