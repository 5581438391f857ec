"""The core's shape, as docs/architecture.md states it: the import graph of ``ganzoo/`` (every import
wherever it is written, the lazy tables' importlib imports included, except those under ``if TYPE_CHECKING:``) has no cycle, and at most ten imports
sit inside functions, each with its reason on the line."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "ganzoo"
MAX_LOCAL_IMPORTS = 10


def _modules() -> dict[str, Path]:
    out = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    """The ganzoo modules one import statement names (``from . import x`` names ``ganzoo.x``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def _graph():
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    local: list[tuple[str, int, str]] = []
    for module, path in modules.items():
        source = path.read_text()
        tree = ast.parse(source)
        skip = _type_checking_nodes(tree)
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        lines = source.splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
                continue
            edges[module] |= _targets(module, path, node, modules)
            if id(node) in in_function:
                local.append((f"{path.relative_to(CORE.parent)}:{node.lineno}", node.lineno, lines[node.lineno - 1]))
    return edges, local


def _lazy_edges(edges: dict[str, set[str]]) -> None:
    """The modules ``ganzoo/__init__`` and ``ganzoo/cli/lazy.py`` import on first use through importlib (PEP 562
    ``__getattr__``): edges like any other, so a lazy import cannot hide a cycle."""
    for module, path in (("ganzoo", CORE / "__init__.py"), ("ganzoo.cli.lazy", CORE / "cli" / "lazy.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_lazy" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                edges[module].add(f"ganzoo.{node.args[0].value}")
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("_LAZY", "_MODULES") for t in node.targets):
                values = node.value.values if isinstance(node.value, ast.Dict) else getattr(node.value, "elts", [])
                edges[module] |= {f"ganzoo.{v.value}" for v in values if isinstance(v, ast.Constant)}
    assert edges["ganzoo"] >= {"ganzoo.hub", "ganzoo.trainer"}, "the lazy table was not found"


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for nxt in sorted(edges[m]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_core_import_graph_has_no_cycle():
    edges, _ = _graph()
    _lazy_edges(edges)
    assert "ganzoo.hub" in edges and "ganzoo.cli" in edges  # the walk sees the packages
    cycle = _cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_modules_never_import_the_command_line():
    edges, _ = _graph()
    offenders = sorted(m for m, targets in edges.items() if not m.startswith("ganzoo.cli")
                       and m not in ("ganzoo.__main__", "ganzoo.pack.__main__")
                       and any(t.startswith("ganzoo.cli") for t in targets))
    assert offenders == []


def test_few_imports_inside_functions_and_each_says_why():
    _, local = _graph()
    assert len(local) <= MAX_LOCAL_IMPORTS, "\n".join(where for where, _, _ in local)
    unexplained = [where for where, _, line in local if "#" not in line]
    assert unexplained == [], f"function-local imports without a reason on the line: {unexplained}"


def test_the_checker_sees_a_cycle_and_a_local_import(tmp_path):
    """The checks above can fail: a two-module cycle is found, and a function's import is counted."""
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    import json\n")
    assert sum(isinstance(n, ast.Import) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               for n in ast.walk(f)) == 1
