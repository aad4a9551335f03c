"""Measure sertk's internal imports and draw its layers.

``python scripts/import_graph.py count``
    Internal imports (``sertk.*``) of every module under ``src/sertk``: how many sit at module
    level and how many inside functions, the in-function ones whose target is not a heavy
    optional dependency's wrapper, and the import circles between modules (strongly connected
    components of the module graph, in-function imports included, since a circle hidden inside
    a function is still a circle).

``python scripts/import_graph.py mermaid``
    The layer picture of ``docs/architecture.md``: a mermaid flowchart built from the
    ``[tool.importlinter]`` layers contract in ``pyproject.toml`` (highest layer on top; an
    arrow reads "may import"; siblings in one box import neither way), so the picture and the
    checked contract cannot drift apart (``tests/test_layers.py`` compares them). Paste the
    output between the ``mermaid`` fences.

Standard library only; reads the source files, imports nothing of sertk.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "sertk"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path) -> list[tuple[list[str], bool, int]]:
    """``(target names, inside a function, line)`` of each ``sertk`` import statement in
    ``path``; ``from pkg import a, b`` names ``pkg.a`` and ``pkg.b`` (a submodule or a name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names if a.name.split(".")[0] == "sertk"]
                if names:
                    found.append((names, inner, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                if base.split(".")[0] == "sertk":
                    names = [f"{base}.{alias.name}" for alias in child.names]
                    found.append((names, inner, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return found


def graph() -> tuple[dict[str, set[str]], list[tuple[str, set[str], bool, int]]]:
    """Module -> imported modules, and one row per import statement."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    rows = []
    for name, path in sorted(modules.items()):
        for names, inner, line in internal_imports(path):
            targets = set()
            for target in names:
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]  # from pkg.mod import name -> pkg.mod
                targets.add(target)
            rows.append((name, targets, inner, line))
            edges[name].update(targets - {name})
    return edges, rows


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                strong(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(set(edges) | {t for targets in edges.values() for t in targets}):
        if node not in index:
            strong(node)
    return out


def count() -> None:
    edges, rows = graph()
    inner = [row for row in rows if row[2]]
    print(f"internal imports: {len(rows)}, inside functions: {len(inner)}")
    by_target: dict[str, int] = defaultdict(int)
    for _, targets, _, _ in inner:
        for target in targets:
            by_target[target] += 1
    print("inside functions, by target module:")
    for target, n in sorted(by_target.items(), key=lambda item: -item[1]):
        print(f"  {n:4d}  {target}")
    found = circles(edges)
    print(f"import circles (modules, in-function imports included): {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    top_level: dict[str, set[str]] = defaultdict(set)
    for name, targets, in_function, _ in rows:
        if not in_function:
            top_level[name].update(targets - {name})
    hidden = circles(top_level)
    print(f"import circles among module-level imports only: {len(hidden)}")
    packages: dict[str, set[str]] = defaultdict(set)
    for name, targets in edges.items():
        for target in targets:
            a, b = _package(name), _package(target)
            if a != b:
                packages[a].add(b)
    found = circles(packages)
    print(f"import circles between sertk's top-level packages/modules: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def mermaid() -> None:
    import tomllib  # Python 3.11+

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    print("flowchart TB")
    names = []
    for depth, layer in enumerate(layers):
        parts = [p.strip().removeprefix("sertk.") for p in layer.replace("|", ":").split(":")]
        node = f"L{depth}"
        names.append(node)
        print(f'  {node}["{" · ".join(p for p in parts if p)}"]')
    for upper, lower in zip(names, names[1:], strict=False):
        print(f"  {upper} --> {lower}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("count", "mermaid"))
    args = parser.parse_args()
    count() if args.what == "count" else mermaid()


if __name__ == "__main__":
    main()
