"""The runbooks on offer: the parameterized notebooks shipped with the package.

A runbook is a notebook whose name (its file stem, e.g. ``node-recovery``) is what the operator
types. Its first Markdown cell holds the title and a one-paragraph purpose; its cell tagged
``parameters`` (papermill's convention) declares each parameter with its default and a comment
that explains it. In a wheel the notebooks live in ``legion_nb/_runbooks``; in a checkout they are
read from ``notebooks/runbooks``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legion_nb.errors import UsageError

__all__ = ["RunbookInfo", "default_runbooks_dir", "find_runbook", "list_runbooks", "parse_value"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def default_runbooks_dir() -> Path:
    package = Path(__file__).resolve().parents[2]
    shipped = package / "_runbooks"
    return shipped if shipped.is_dir() else package.parent / "notebooks" / "runbooks"


@dataclass(frozen=True, slots=True)
class RunbookInfo:
    """A runbook's name, purpose and declared parameters (name -> default as written, and help)."""

    name: str
    title: str
    purpose: str
    parameters: dict[str, dict[str, str]]
    path: Path


def list_runbooks(directory: Path) -> list[RunbookInfo]:
    if not directory.is_dir():
        return []
    return [_describe(path) for path in sorted(directory.glob("*.ipynb"))]


def find_runbook(directory: Path, name: str) -> RunbookInfo:
    """The runbook called ``name``; :class:`UsageError` naming the ones there are otherwise."""
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a runbook name (lower-case letters, digits and dashes)")
    path = directory / f"{name}.ipynb"
    if not path.is_file():
        known = ", ".join(r.name for r in list_runbooks(directory)) or "none"
        raise UsageError(f"no runbook {name!r}; the runbooks are: {known}")
    return _describe(path)


def parse_value(text: str) -> Any:
    """A ``-p KEY=VALUE`` value: JSON when it parses (numbers, true/false, null, lists), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _describe(path: Path) -> RunbookInfo:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"runbook {path.name} is not a readable notebook: {exc}") from exc
    title, purpose = path.stem, ""
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            text = _source(cell)
            lines = text.strip().splitlines()
            if lines and lines[0].startswith("#"):
                title = lines[0].lstrip("#").strip()
                lines = lines[1:]
            purpose = " ".join(" ".join(lines).split())
            break
    parameters: dict[str, dict[str, str]] = {}
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            for line in _source(cell).splitlines():
                match = re.match(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=\s*(.*?)\s*(?:#\s*(.*))?$", line)
                if match:
                    name, default, help_text = match.groups()
                    parameters[name] = {"default": default, "help": help_text or ""}
            break
    return RunbookInfo(name=path.stem, title=title, purpose=purpose, parameters=parameters, path=path)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
