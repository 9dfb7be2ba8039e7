"""The package's layers: imports point down only, and no module imports itself back through others.

The layers, from the bottom (docs/design.md explains each):

    kernels < utils < datasets < learning < strategies < selection < {loop, testing}
            < {experiments, plotting} < {analysis, workspace} < cli

A module may import from its own top-level package and from packages of lower layers; the
package root (``activebatch/__init__.py``) is the public facade and may import anything.
Imports inside functions count too (a lazy import still ties the two modules together).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import activebatch

#: Rank of each top-level package; equal ranks may not import each other.
LAYERS = {
    "kernels": 0, "utils": 1, "datasets": 2, "learning": 3, "strategies": 4, "selection": 5,
    "loop": 6, "testing": 6, "experiments": 7, "plotting": 7, "analysis": 8, "workspace": 8, "cli": 9,
}
ROOT = Path(activebatch.__file__).parent


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def import_graph(root: Path, package: str = "activebatch") -> dict[str, set[str]]:
    """Module -> the package's modules it imports (relative or absolute, at any depth of the code)."""
    modules = _modules(root, package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, (path, is_pkg) in modules.items():
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    prefix = base[: len(base) - node.level + 1]
                    target = ".".join(prefix + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != mod:
                    graph[mod].add(t)
                    # Importing a module of another package first runs that package's __init__.
                    parts = t.split(".")
                    for i in range(2, len(parts)):
                        parent = ".".join(parts[:i])
                        if parent in modules and not mod.startswith(parent + ".") and parent != mod:
                            graph[mod].add(parent)
    return graph


def layer_violations(graph: dict[str, set[str]], package: str = "activebatch") -> list[str]:
    """'a imports b' lines for every import from the same or a higher layer's package."""
    bad = []
    for mod, targets in sorted(graph.items()):
        parts = mod.split(".")
        if len(parts) < 2:
            continue   # the package root: the public facade
        here = parts[1]
        for t in sorted(targets):
            there = t.split(".")[1] if t.count(".") else None
            if there is None or there == here:
                continue
            if here not in LAYERS or there not in LAYERS:
                bad.append(f"{mod} imports {t}: package {here if here not in LAYERS else there!r} has no layer")
            elif LAYERS[there] >= LAYERS[here]:
                bad.append(f"{mod} (layer {LAYERS[here]}, {here}) imports {t} (layer {LAYERS[there]}, {there})")
    return bad


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_top_level_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS), "give new packages a layer here and in docs/design.md"
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules belong in a layer's package, not the root: {loose}"


def test_imports_point_down_only():
    assert layer_violations(import_graph(ROOT)) == []


def test_no_import_cycles():
    assert import_cycles(import_graph(ROOT)) == []


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "activebatch"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("lazy", [False, True])
def test_a_planted_upward_import_is_caught(tmp_path, lazy):
    line = "from ..selection import select\n"
    body = f"def f():\n    {line}" if lazy else line
    root = _plant(tmp_path, {"__init__.py": "", "kernels/__init__.py": "", "kernels/scores.py": body,
                             "selection/__init__.py": "def select():\n    pass\n"})
    bad = layer_violations(import_graph(root))
    assert bad == ["activebatch.kernels.scores (layer 0, kernels) imports activebatch.selection "
                   "(layer 5, selection)"]


def test_a_planted_cycle_is_caught(tmp_path):
    root = _plant(tmp_path, {"__init__.py": "", "datasets/__init__.py": "",
                             "datasets/a.py": "from .b import x\n",
                             "datasets/b.py": "def g():\n    from .a import y\n"})
    assert import_cycles(import_graph(root)) == [["activebatch.datasets.a", "activebatch.datasets.b"]]
    assert layer_violations(import_graph(root)) == []
