"""``legion_nb.sandbox()``: an unlocked engine on a throwaway state, wired to an in-process cloud."""

from __future__ import annotations

import legion_nb
import legion_nb.emulators.cloud  # the subpackage shares the name: the function must survive this
from legion_nb.errors import UsageError
from legion_nb.sandbox_engine import sandbox_cloud


async def test_sandbox_engine_is_unlocked_with_credentials_and_closes_everything() -> None:
    engine = await legion_nb.sandbox(seed=3)
    cloud = sandbox_cloud(engine)
    directory = engine.state_path.parent
    try:
        assert engine.is_unlocked and directory.exists()
        facts = await engine.credentials_show()
        assert [f["provider"] for f in facts] == ["hetzner", "ovh", "scaleway"]
        assert all(f["endpoint"].startswith("http://127.0.0.1:") for f in facts)
        assert "token" not in str(await engine.snapshot())  # field names only in credentials_show
        assert (await engine.catalog("hetzner"))["source"] == "live"
    finally:
        await engine.aclose()
    assert not directory.exists()
    try:
        cloud.endpoints()
        raise AssertionError("the sandbox must be stopped with its engine")
    except (RuntimeError, KeyError):
        pass


async def test_sandbox_takes_a_subset_of_providers_and_refuses_unknown_ones() -> None:
    engine = await legion_nb.sandbox(seed=4, providers=("scaleway",))
    try:
        assert [f["provider"] for f in await engine.credentials_show()] == ["scaleway"]
    finally:
        await engine.aclose()
    try:
        await legion_nb.sandbox(providers=("aws",))
        raise AssertionError("an unknown sandbox provider must be refused")
    except UsageError as exc:
        assert "aws" in exc.message
    assert callable(legion_nb.sandbox)  # still the function after the emulators were imported
