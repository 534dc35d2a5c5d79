"""The docs name only code that exists, and draw the engine's layers and session as the code has them.

A renamed module or a new session service leaves a sentence behind that nobody rereads; these checks
read the Markdown and Mermaid sources as text (no imports of the modules they name) so they cost a
few milliseconds and fail with the stale name.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"
DIAGRAMS = DOCS / "diagrams"
PROSE = sorted([ROOT / "README.md", *DOCS.glob("*.md")])
SOURCES = PROSE + sorted(DIAGRAMS.glob("*.mmd"))

_REPO_FILES = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
_PACKAGE_FILES = [p for p in _REPO_FILES if p.startswith("legion_nb/")]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _module_source(dotted: str) -> str | None:
    """The source of the module ``dotted`` names (a package's ``__init__``), or None."""
    base = ROOT / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return _text(candidate)
    return None


def _defines(source: str, name: str) -> bool:
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, source, re.MULTILINE) is not None


def _unresolved_dotted(dotted: str) -> str | None:
    """Why ``legion_nb.a.b[.attr]`` names nothing, or None: its longest module prefix exists and the
    first name after it is defined at that module's top level."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        source = _module_source(".".join(parts[:cut]))
        if source is None:
            continue
        rest = parts[cut:]
        if not rest or _defines(source, rest[0]):
            return None
        return f"{'.'.join(parts[:cut])} defines no {rest[0]}"
    return "no such module"


def test_every_dotted_legion_name_in_the_docs_exists() -> None:
    stale = []
    for path in SOURCES:
        for dotted in sorted(set(re.findall(r"\blegion_nb(?:\.[A-Za-z_]\w*)+", _text(path)))):
            why = _unresolved_dotted(dotted)
            if why:
                stale.append(f"{path.relative_to(ROOT)}: {dotted} ({why})")
    assert stale == []


def test_every_python_path_in_the_docs_exists() -> None:
    """``legion_nb/x/y.py`` must exist as written; a shorter ``x/y.py`` (the docs say
    ``engine/ssh.py``, ``deployment/liveness.py``) must end some file's path; a bare ``y.py``
    must name some module of the package."""
    stale = []
    for path in SOURCES:
        for name in sorted(set(re.findall(r"(?<![\w/.-])([\w/]*\w\.py)\b", _text(path)))):
            if name.startswith(("legion_nb/", "tests/", "benchmarks/")):
                found = (ROOT / name).is_file()
            elif "/" in name:
                found = any(f.endswith("/" + name) for f in _REPO_FILES)
            else:
                found = any(f.rsplit("/", 1)[-1] == name for f in _PACKAGE_FILES)
            if not found:
                stale.append(f"{path.relative_to(ROOT)}: {name}")
    assert stale == []


def _inner_layers() -> list[str]:
    """The layers of the engine's inner-layers import-linter contract, top first, as written."""
    pyproject = tomllib.loads(_text(ROOT / "pyproject.toml"))
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    (inner,) = [c for c in contracts if c.get("containers") == ["legion_nb.engine"]]
    layers: list[str] = inner["layers"]
    return layers


def test_architecture_names_every_module_of_the_engine_layers_contract() -> None:
    text = _text(ARCHITECTURE)
    modules = [m.strip() for layer in _inner_layers() for m in re.split(r"[|:]", layer)]
    assert [m for m in modules if not re.search(rf"(?<![\w.]){re.escape(m)}\b", text)] == []


def test_the_engine_layers_diagram_draws_the_contract_in_order() -> None:
    """One node per contract layer, top to bottom, each label starting with that layer as the
    contract spells it (``|`` independent siblings, ``:`` siblings that may import each other)."""
    labels = re.findall(r'^\s*\w+\["([^"]*)"\]\s*$', _text(DIAGRAMS / "engine-layers.mmd"), re.MULTILINE)
    drawn = [" ".join(label.replace("<br/>", " ").split()) for label in labels]
    layers = _inner_layers()
    assert len(drawn) == len(layers)
    assert [d for d, layer in zip(drawn, layers, strict=True) if not d.startswith(layer)] == []


def _mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, re.DOTALL)


def test_each_architecture_diagram_is_its_linked_source() -> None:
    """A diagram drawn inline and followed by a link to its ``.mmd`` is that file, comments aside."""
    pairs = re.findall(
        r"```mermaid\n((?:(?!```).)*)```\n\(\[[\w-]+\.mmd\]\(diagrams/([\w-]+\.mmd)\)\)",
        _text(ARCHITECTURE),
        re.DOTALL,
    )
    assert pairs
    differ = []
    for inline, name in pairs:
        lines = _text(DIAGRAMS / name).splitlines(keepends=True)
        if inline != "".join(line for line in lines if not line.lstrip().startswith("%%")):
            differ.append(name)
    assert differ == []


def test_the_session_docs_name_every_service_the_session_opens() -> None:
    source = _text(ROOT / "legion_nb" / "engine" / "session.py")
    services = sorted(set(re.findall(r"enter_async_context\(\s*(\w+)\(", source)))
    assert len(services) >= 10
    for doc in (ARCHITECTURE, DIAGRAMS / "session.mmd"):
        text = _text(doc)
        assert (doc.name, [s for s in services if s not in text]) == (doc.name, [])


def test_mermaid_diagrams_balance_their_quotes_and_brackets() -> None:
    """Mermaid reports an unbalanced label as a parse error on the whole diagram, and a sequence
    diagram's ``;`` ends its statement: quotes, parentheses and square brackets balance on each
    line, braces (a state's body) over the diagram, and no message holds a ``;``."""
    closing = {")": "(", "]": "["}
    bad = []
    for path in SOURCES:
        text = _text(path)
        for block in [text] if path.suffix == ".mmd" else _mermaid_blocks(text):
            sequence = "sequenceDiagram" in block
            braces = 0
            for line in block.splitlines():
                if line.lstrip().startswith("%%"):
                    continue
                outside = "".join(line.split('"')[::2])
                braces += outside.count("{") - outside.count("}")
                stack: list[str] = []
                balanced = line.count('"') % 2 == 0 and braces >= 0
                for char in outside:
                    if char in "([":
                        stack.append(char)
                    elif char in closing:
                        balanced = balanced and bool(stack) and stack.pop() == closing[char]
                if not balanced or stack or (sequence and ";" in line):
                    bad.append(f"{path.relative_to(ROOT)}: {line.strip()}")
            if braces:
                bad.append(f"{path.relative_to(ROOT)}: unclosed {{ in a diagram")
    assert bad == []


def test_the_readme_exit_code_table_is_the_one_legion_help_prints() -> None:
    """README's table lists ``cli/main.py``'s ``EXIT_CODES`` in order, word for word, so an
    operator reads the same meaning for a code in either place (read from the source's literal)."""
    tree = ast.parse(_text(ROOT / "legion_nb" / "cli" / "main.py"))
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "EXIT_CODES"
    ]
    assert value is not None
    codes = [(str(code), meaning) for code, meaning in ast.literal_eval(value)]
    rows = re.findall(r"^\| (\d+) \| (.*?) \|$", _text(ROOT / "README.md"), re.MULTILINE)
    assert rows == codes
