"""Every shipped notebook uses only Legion's public API, as an operator writing one could.

A notebook that imports ``legion_nb.engine.*`` or ``legion_nb.providers.*`` internals, or reaches
into ``engine.core``, ``engine.state`` or the unlocked session, breaks on any refactor and teaches
the reader something they cannot rely on. The engine's methods (and ``legion_nb``, ``legion_nb.widgets``)
are the API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").rglob("*.ipynb"))
INTERNALS = re.compile(
    r"legion_nb\.(engine|providers)\b"  # internal packages (the emulators are the outside world)
    r"|\bengine\.(core|state)\b"  # the engine's internals
    r"|\bassert_unlocked\b|\b_live\("  # the unlocked session behind the API
)


def test_the_notebooks_are_found() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {"02-node-recovery", "03-nbde-promotion"} <= names


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_uses_only_the_public_api(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    found = [
        f"cell {i}: {line.strip()}"
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if INTERNALS.search(line)
    ]
    assert not found, f"{notebook.name} reaches into internals:\n" + "\n".join(found)
