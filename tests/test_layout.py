"""The house's layout: rooms a reader can find (each package says its one job) and no import cycles."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("detector", "api")


def _modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for path in (REPO / top).rglob("*.py"):
            if "migrations" not in path.parts:
                out[".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")] = path
    return out


def _imports_at_load(path: Path, known: set[str]) -> set[str]:
    """Our modules that this one imports at module level, TYPE_CHECKING blocks included (a cycle
    there is one for readers and type checkers); function-level imports are lazy by design."""
    deps = set()
    tree = ast.parse(path.read_text(encoding="utf-8")).body
    checking = [n.body for n in tree if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    for node in [*tree, *(n for block in checking for n in block)]:
        if isinstance(node, ast.ImportFrom) and node.module in known:
            deps.add(node.module)
            deps |= {f"{node.module}.{a.name}" for a in node.names} & known  # from pkg import module
        elif isinstance(node, ast.Import):
            deps |= {a.name for a in node.names} & known
    return deps


def test_no_module_imports_itself_through_others() -> None:
    modules = _modules()
    graph = {name: _imports_at_load(path, set(modules)) - {name} for name, path in modules.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as e:
        raise AssertionError(f"import cycle: {' → '.join(e.args[1])}") from None


def test_every_package_says_its_one_job() -> None:
    for name, path in _modules().items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            assert doc, f"{name}: the package's __init__ needs a docstring saying what it is for"
