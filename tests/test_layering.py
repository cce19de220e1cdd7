"""The three packages' import graph, read from the source with ast (imports inside functions count):
no cycles, one direction (schemas <- scenes <- pipeline), only `crlgen.*` or relative imports,
and engines imported lazily, inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "scenes", "pipeline")
#: What each package may import from the others (data flows spec -> plan -> task -> world -> store).
ALLOWED = {"schemas": set(), "scenes": {"schemas"}, "pipeline": {"schemas", "scenes"}}
#: Test support sits on top of everything: the world contract samples batches with the pipeline's sampler.
ON_TOP = {"scenes.testing"}
ENGINES = {"bpy", "pybullet", "pybullet_utils", "carla", "OpenEXR", "mathutils", "_cycles"}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (REPO / pkg).rglob("*.py"):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


MODS = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, bool, bool]]:
    """(imported name, line, at module level, relative) for every import in a module; relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body} | {id(n) for node in tree.body if isinstance(node, (ast.If, ast.Try))
                                        for n in ast.walk(node)}
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top, False) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                full = f"{mod}.{a.name}"
                out.append((full if full.removeprefix("crlgen.") in MODS else mod, node.lineno, id(node) in top, node.level > 0))
    return out


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODS}
    for m, f in MODS.items():
        for target, *_ in _imports(m, f):
            t = target.removeprefix("crlgen.")
            while t and t not in MODS:
                t = t.rpartition(".")[0]
            if t and t != m:
                edges[m].add(t)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_packages():
    edges = _graph()
    assert len(MODS) > 30
    assert "scenes.registry" in edges["pipeline._plan"]  # relative imports are resolved
    assert "schemas.dataset" in edges["schemas.loading"]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_a_cycle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_point_one_way():
    edges = _graph()
    leaks = sorted(f"{a} -> {b}" for a, bs in edges.items() for b in bs if a not in ON_TOP
                   and b.split(".")[0] != a.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]])
    assert leaks == []
    assert not any(m in bs for bs in edges.values() for m in ON_TOP), "nothing may import test support"


def test_imports_are_crlgen_qualified_or_relative():
    """Nothing imports a top-level `pipeline`, `scenes` or `schemas` (a user's own module of that name would win)."""
    bad = [f"{m}:{line} imports {t}" for m, f in MODS.items() for t, line, _, relative in _imports(m, f)
           if not relative and t.split(".")[0] in PACKAGES]
    assert bad == []


def test_engines_are_imported_inside_functions_only():
    eager = [f"{m}:{line} imports {t}" for m, f in MODS.items() for t, line, top, _ in _imports(m, f)
             if top and t.split(".")[0] in ENGINES]
    assert eager == []
