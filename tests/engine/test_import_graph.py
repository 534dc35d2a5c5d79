"""The engine's modules import each other in one direction: no circle, not even a type-only one.

import-linter's layers contract checks the named layers; this test covers every module of
``legion_nb.engine``, including imports under ``if TYPE_CHECKING:`` and inside functions, which
Python never runs at import time but which still tie the modules' designs together.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import legion_nb.engine

ENGINE = "legion_nb.engine"


def _modules() -> dict[str, Path]:
    root = Path(legion_nb.engine.__file__).parent
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([ENGINE, *parts])] = path
    return modules


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module name ``module`` imports, wherever the statement sits."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the engine modules it imports (a ``from pkg import name`` names ``pkg.name`` when
    that is a module, else ``pkg``)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = (owner(name) for name in _imported(module, path) if name.startswith(ENGINE))
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path that returns to its start, or None."""
    seen: dict[str, bool] = {}  # True while on the current path, False once finished
    for start in sorted(graph):
        if start in seen:
            continue
        path, pending = [start], [iter(sorted(graph[start]))]
        seen[start] = True
        while pending:
            step = next(pending[-1], None)
            if step is None:
                seen[path.pop()] = False
                pending.pop()
            elif seen.get(step):
                return [*path[path.index(step) :], step]
            elif step not in seen:
                seen[step] = True
                path.append(step)
                pending.append(iter(sorted(graph.get(step, ()))))
    return None


def test_the_cycle_finder_sees_a_type_only_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_reads_type_checking_and_function_level_imports() -> None:
    graph = import_graph()
    # ops imports DeploymentService only for its annotations, the session only when it is asked for.
    assert f"{ENGINE}.deployment.runtime" in graph[f"{ENGINE}.ops"]
    assert f"{ENGINE}.deployment.runtime" in graph[f"{ENGINE}.session"]


def test_no_import_circle_among_engine_modules() -> None:
    assert find_cycle(import_graph()) is None


def test_nothing_below_the_facade_imports_the_engine() -> None:
    """Services get ports, never the ``Engine``: within the engine nothing names it (the CLI, the
    sandbox factory and ``legion_nb.open`` build it from outside)."""
    importers = sorted(m for m, targets in import_graph().items() if f"{ENGINE}.runtime" in targets)
    assert importers == []


def _inner_layers() -> list[str]:
    """The modules the engine's inner-layers contract in ``pyproject.toml`` names, in its order."""
    pyproject = Path(legion_nb.engine.__file__).parents[2] / "pyproject.toml"
    contracts = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    (inner,) = [c for c in contracts if c.get("containers") == [ENGINE]]
    return [name for layer in inner["layers"] for name in re.split(r"[|:]", layer) if name.strip()]


def test_the_inner_layers_contract_names_every_engine_module() -> None:
    """A module the layers contract does not name is checked by nobody: every module and package
    directly under ``legion_nb.engine`` sits in exactly one layer."""
    named = [name.strip() for name in _inner_layers()]
    top = sorted({m.removeprefix(f"{ENGINE}.").split(".")[0] for m in _modules() if m != ENGINE})
    assert sorted(set(top) - set(named)) == []
    assert sorted(n for n in set(named) if named.count(n) > 1) == []
