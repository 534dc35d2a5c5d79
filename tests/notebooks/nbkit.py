"""Running notebooks the way the tests need: an isolated Jupyter setup whose ``python3`` kernel is
this virtualenv's interpreter, whatever kernels the machine or the user have installed."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["NOTEBOOKS_DIR", "isolated_jupyter_env", "patched_jupyter_env"]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def isolated_jupyter_env(root: Path) -> dict[str, str]:
    """Jupyter's path variables for a fresh tree under ``root``, with a ``python3`` kernelspec.

    ``JUPYTER_PATH`` is searched before the user's and the system's data directories, so the spec
    written here is the ``python3`` that nbclient and JupyterLab start: ``sys.executable``, i.e. the
    venv's python with legion-nb installed, never another interpreter called ``python``.
    """
    kernel_dir = root / "path" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (legion-nb venv)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    env = {
        "JUPYTER_PATH": str(root / "path"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    for key in ("config", "data", "runtime", "ipython"):
        (root / key).mkdir(parents=True, exist_ok=True)
    return env


@contextlib.contextmanager
def patched_jupyter_env(root: Path) -> Iterator[dict[str, str]]:
    """Point this process's Jupyter lookups (nbclient's kernel manager) at an isolated tree under
    ``root`` until the block ends; the variables are restored afterwards."""
    env = isolated_jupyter_env(root)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env
