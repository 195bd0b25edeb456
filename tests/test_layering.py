"""The package layering rule and the absence of import cycles, by static analysis of every module's imports.

Layering (every ``import`` statement, including those inside functions, and literal
``importlib.import_module("...")`` calls): ``sigprop.theory`` imports neither ``sigprop.kernels`` nor
``sigprop.validation``; ``sigprop.kernels`` does not import ``sigprop.validation``.  Only sigprop-internal
imports matter (a lazy ``import numba.cuda`` inside a kernel function is fine).

Cycles: the graph of sigprop-internal imports executed when a module is imported (statements outside function
bodies, ``if TYPE_CHECKING:`` blocks left out) must be acyclic.  Importing ``a.b.c`` also runs the packages
``a.b`` and ``a``; those edges are kept, except to the importing module's own packages (already being imported).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"theory": "sigprop.theory", "kernels": "sigprop.kernels", "validation": "sigprop.validation"}
FORBIDDEN = {"sigprop.theory": ("sigprop.kernels", "sigprop.validation"), "sigprop.kernels": ("sigprop.validation",)}



@dataclass(frozen=True)
class Import:
    importer: str
    target: str      # the sigprop module (or package) imported
    line: int
    top_level: bool  # runs when the importer is imported (not inside a function, not under TYPE_CHECKING)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _discover() -> dict[str, Path]:
    modules = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[_module_name(path)] = path
    return modules


MODULES = _discover()


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _resolve(module: str, name: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    base = _package_of(module).split(".")
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str):
        self.module = module
        self.found: list[Import] = []
        self._depth = 0  # > 0 inside a function body or a TYPE_CHECKING block

    def _add(self, target: str, node: ast.AST) -> None:
        if target == "sigprop" or target.startswith("sigprop."):
            self.found.append(Import(self.module, target, node.lineno, self._depth == 0))

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _nested

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.visit(node.test)
            self._depth += 1
            for stmt in node.body:
                self.visit(stmt)
            self._depth -= 1
            for stmt in node.orelse:
                self.visit(stmt)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.module, node.module, node.level)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in MODULES else base, node)  # `from pkg import submodule` imports the submodule

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            text = node.args[0].value
            level = len(text) - len(text.lstrip("."))
            self._add(_resolve(self.module, text[level:] or None, level), node)
        self.generic_visit(node)


def _imports() -> list[Import]:
    found = []
    for module, path in MODULES.items():
        collector = _Collector(module)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found += collector.found
    return found


IMPORTS = _imports()


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layering_violations() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) -> ["path:line", ...] for every import that breaks the layering rule."""
    out: dict[tuple[str, str], list[str]] = {}
    for imp in IMPORTS:
        if _layer(imp.target) in FORBIDDEN.get(_layer(imp.importer), ()):
            where = f"{MODULES[imp.importer].relative_to(ROOT)}:{imp.line}"
            places = out.setdefault((imp.importer, imp.target), [])
            if where not in places:
                places.append(where)
    return out


def import_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    """Module -> the sigprop modules its import runs (module-level imports, with the packages they pass through).

    With ``top_level_only=False`` the imports inside functions count too: the modules it may use at all.
    """
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if top_level_only and not imp.top_level:
            continue
        own = set()
        parts = imp.importer.split(".")
        for k in range(1, len(parts) + 1):
            own.add(".".join(parts[:k]))
        parts = imp.target.split(".")
        for k in range(2, len(parts) + 1):
            target = ".".join(parts[:k])
            if target in MODULES and target not in own:
                graph[imp.importer].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component with a cycle (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(_a_cycle(graph, comp) for comp in components)


def _a_cycle(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the smallest name of a strongly connected component (breadth-first)."""
    start = min(comp)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]  # v, its parent, ..., start
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in component {sorted(comp)}")


def _show(cycles: list[list[str]]) -> str:
    return "; ".join(" -> ".join(c) for c in cycles)


# ------------------------------------------------------------------------------------------------------------------
def test_every_module_is_analysed():
    assert {"sigprop.theory", "sigprop.theory.correlators.vertex", "sigprop.kernels.explicit_cpu",
            "sigprop.validation.stats", "sigprop.validation.experiments.equilibrium"} <= set(MODULES)
    assert any(imp.importer == "sigprop.validation.stats" and imp.target == "sigprop.theory.equilibrium"
               for imp in IMPORTS)


def test_the_analysis_sees_relative_function_level_and_importlib_imports():
    c = _Collector("sigprop.theory.correlators.vertex")
    c.visit(ast.parse("from . import wick\nfrom ..activations import x\nimport sigprop.kernels.cli\n"
                      "def f():\n    from sigprop.validation import stats\n"
                      "    importlib.import_module('.tangent', 'p')\n"
                      "if TYPE_CHECKING:\n    from sigprop.kernels import simulate\n"))
    got = {(i.target, i.top_level) for i in c.found}
    assert got == {("sigprop.theory.correlators.wick", True), ("sigprop.theory.activations", True),
                   ("sigprop.kernels.cli", True), ("sigprop.validation.stats", False),
                   ("sigprop.theory.correlators.tangent", False), ("sigprop.kernels.simulate", False)}


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]


@pytest.mark.parametrize("layer", ["sigprop.theory", "sigprop.kernels"])
def test_layering_rule_holds(layer):
    """theory never imports kernels or validation; kernels never import validation (no exceptions)."""
    bad = {k: v for k, v in layering_violations().items() if _layer(k[0]) == layer}
    assert not bad, f"{layer} imports a layer above it: " + "; ".join(f"{a} -> {b} at {', '.join(w)}"
                                                                    for (a, b), w in sorted(bad.items()))


def _touches(cycle: list[str], layers: tuple[str, ...]) -> bool:
    return any(_layer(m) in layers for m in cycle)


def test_no_import_cycle_anywhere():
    """Importing any module of the package runs no module twice: the module-level graph is acyclic."""
    cycles = import_cycles(import_graph())
    assert not cycles, f"import cycles: {_show(cycles)}"


def test_no_dependency_cycle_in_theory_or_validation():
    """Counting the imports inside functions too, no theory or validation module depends on itself."""
    cycles = [c for c in import_cycles(import_graph(top_level_only=False))
              if _touches(c, ("sigprop.theory", "sigprop.validation"))]
    assert not cycles, f"dependency cycles: {_show(cycles)}"


def test_no_import_cycle_in_kernels():
    """Counting the imports inside functions too, no kernels module depends on itself."""
    cycles = [c for c in import_cycles(import_graph(top_level_only=False)) if _touches(c, ("sigprop.kernels",))]
    assert not cycles, f"dependency cycles: {_show(cycles)}"


def test_no_private_name_is_imported_across_modules():
    """``from sigprop... import _name`` (or a relative import of a private name) couples a module to another's
    internals; shared helpers get public names instead."""
    found = []
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("sigprop")):
                    found += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "private names imported across modules: " + "; ".join(found)
