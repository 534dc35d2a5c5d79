"""The public face of ``legion_nb``: pinned names, a light import, and ``open()``."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

import pytest

import legion_nb
from legion_nb.errors import WrongPasswordError

PUBLIC = ["__version__", "connect", "open", "sandbox", "show"]


def test_all_is_pinned_and_sorted() -> None:
    assert legion_nb.__all__ == PUBLIC
    assert legion_nb.__all__ == sorted(legion_nb.__all__)
    for name in legion_nb.__all__:
        assert hasattr(legion_nb, name)


def test_import_is_light() -> None:
    heavy = ["pandas", "httpx", "aiohttp", "asyncssh", "ipywidgets", "anywidget", "cryptography", "argon2"]
    code = f"import sys, json, legion_nb; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_importing_every_layer_prints_no_warning() -> None:
    """The CLI and notebook kernels import these; a dependency's import-time warning would land on
    the stderr of every command (cryptography 51's DSA deprecation, raised inside asyncssh, did)."""
    modules = [
        "legion_nb.engine.runtime",
        "legion_nb.engine.ssh",
        "legion_nb.emulators.cloud",
        "legion_nb.cli.main",
        "legion_nb.widgets",
        "legion_nb.sandbox_engine",
    ]
    code = "import importlib, legion_nb\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stderr == ""


async def test_open_creates_then_unlocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nb" / "state.legion"
    engine = await legion_nb.open(path, password="notebook password")
    assert engine.is_unlocked and path.exists()
    await engine.plan_upsert_dns_zone(zone="example.org", provider="scaleway")
    await engine.aclose()

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "notebook password")
    again = await legion_nb.open(str(path))  # no password: asked for, never in a cell
    assert "example.org" in (await again.plan_show()).dns_zones
    await again.aclose()

    with pytest.raises(WrongPasswordError):
        await legion_nb.open(path, password="wrong password")
