"""Imports run one way: no module of src/sosd imports a module that imports it back, and the scene
generator's modules stay small.

Run:  OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_import_layers.py   (under 1 s)

Every module under src/sosd is parsed with ``ast`` (nothing is imported), and every ``import`` /
``from ... import`` statement counts, wherever it is: at the top, inside a function (lazy imports), under
``if TYPE_CHECKING`` or in a ``try``. ``from a.b import c`` is an edge to module ``a.b.c`` when that is a
module of ours, else to ``a.b`` (the package ``__init__``). The packages a dotted name passes through are
not edges of their own: Python runs ``sosd/data/__init__.py`` before ``sosd.data.factory``, but a package
``__init__`` that re-exports its submodules is the layering we want, not a cycle. A string constant that
is exactly the name of one of our modules also counts (``importlib.import_module`` tables: the CLI's
commands, ``sosd.eval``'s lazy exports). A cycle is a strongly connected component of this graph with more
than one module (or a module importing itself).

The same holds one level up: collapsed to the top-level parts of the package (``sosd`` itself,
``sosd.data``, ``sosd.train``, ``sosd.eval``, ``sosd.checkpoint``, ...), imports still run one way, so
training may use evaluation but evaluation never reaches back into training.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
GENERATOR = SRC / "sosd" / "data" / "synthetic"
MAX_GENERATOR_LINES = 400


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted((root / "sosd").rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``name`` (file ``path``) imports anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                and node.value in known:   # "sosd" alone is also a variant name, not an import
            targets = [node.value]   # importlib.import_module("sosd....") through a table
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: from the package of this module, one level up per extra dot
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            # `import sosd.data.synthetic.render` names a module; `import numpy` is not ours
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t:
                out.add(t)
    return out


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    mods = _modules(root)
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan's algorithm, iterative), each sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or v in graph.get(v, ()):
                        out.append(sorted(comp))
    return out


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` collapsed to the top-level parts of the package: ``sosd.train.loop`` -> ``sosd.train``."""
    def top(m):
        return ".".join(m.split(".")[:2])
    out: dict[str, set[str]] = {}
    for m, targets in graph.items():
        out.setdefault(top(m), set()).update(top(t) for t in targets if top(t) != top(m))
    return out


def _describe(comp: list[str], graph: dict[str, set[str]]) -> str:
    inside = set(comp)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & inside))}" for m in comp)


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50   # the walk found the package (not an empty or wrong root)
    found = cycles(graph)
    assert not found, "import cycles (module -> the modules of its cycle it imports):\n" + "\n".join(
        _describe(c, graph) for c in found)


def test_packages_import_one_way():
    graph = package_graph(import_graph())
    assert {"sosd", "sosd.data", "sosd.train", "sosd.eval", "sosd.checkpoint"} <= set(graph)
    found = cycles(graph)
    assert not found, "packages that reach into each other:\n" + "\n".join(_describe(c, graph) for c in found)


def test_generator_modules_are_small():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in GENERATOR.glob("*.py")}
    assert len(sizes) >= 8, sizes
    big = {k: v for k, v in sizes.items() if v > MAX_GENERATOR_LINES}
    assert not big, f"scene-generator modules over {MAX_GENERATOR_LINES} lines (split them by stage): {big}"


def test_the_checker_sees_lazy_relative_and_transitive_cycles(tmp_path):
    """Negative control: a cycle through a lazy import in a function, a relative import and a third
    module is found; the same modules without the back edge are not."""
    pkg = tmp_path / "sosd" / "pkg"
    pkg.mkdir(parents=True)
    (tmp_path / "sosd" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from sosd.pkg.a import f\n")
    (pkg / "a.py").write_text("from . import b\n\ndef f():\n    return b\n")
    (pkg / "b.py").write_text("import sosd.pkg.c as c\n")
    (pkg / "c.py").write_text("def g():\n    from sosd.pkg import a\n    return a\n")
    graph = import_graph(tmp_path)
    assert graph["sosd.pkg.a"] == {"sosd.pkg.b"} and graph["sosd.pkg.c"] == {"sosd.pkg.a"}
    assert cycles(graph) == [["sosd.pkg.a", "sosd.pkg.b", "sosd.pkg.c"]]
    (pkg / "c.py").write_text("def g():\n    return 1\n")
    assert cycles(import_graph(tmp_path)) == []


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
