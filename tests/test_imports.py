"""Every arrow runs one way: nnzoo's modules import each other without a circle, and only the front doors (the
CLI and the package itself) import nnzoo.api. Read from the source with ``ast`` (module-level and function-level
imports alike; imports under ``if TYPE_CHECKING:`` are type hints only and are left out), so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "nnzoo"
# The only modules allowed to import nnzoo.api: the command line and the package's own front door.
API_USERS = {"nnzoo.cli", "nnzoo.__init__", "nnzoo.__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts)  # nnzoo.data.__init__ for a package's __init__.py (kept apart from the package)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")  # fmt: skip


def _imported(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The nnzoo module a dotted name means (a package means its __init__), or None when it is not one."""
    if name in modules:
        return name
    if name + ".__init__" in modules:
        return name + ".__init__"
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the nnzoo modules it imports: the deepest module each import names (``from .data.spec import X``:
    nnzoo.data.spec; ``from .data import X``: nnzoo.data.__init__), not the parent packages Python also runs."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module.rsplit(".", 1)[0]  # what `from .` means here (a package's __init__: the package)
        for node in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # `from . import files`: the module nnzoo.files; `from .models import MODELS`: nnzoo.models
                targets = [f"{prefix}.{a.name}" if _resolve(f"{prefix}.{a.name}", modules) else prefix
                           for a in node.names]  # fmt: skip
            for target in targets:
                if not target.startswith("nnzoo"):
                    continue
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != module:
                    graph[module].add(resolved)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "nnzoo.cli" in graph and "nnzoo.api" in graph["nnzoo.cli"]
    assert "nnzoo.config" in graph["nnzoo.api"]


def test_the_walker_reads_function_level_imports_and_skips_type_hints():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .api import LoadedRun\nelse:\n    import json\n"
        "def f():\n    from .runs import load_run\n"
    )  # fmt: skip
    names = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in _imported(tree)]
    assert names == ["typing", "json", "runs"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle among nnzoo modules: {cycle}"


def test_only_the_front_doors_import_api():
    users = sorted(m for m, deps in import_graph().items() if "nnzoo.api" in deps and m not in API_USERS)
    assert not users, f"modules importing nnzoo.api besides {sorted(API_USERS)}: {users}"


def test_datasets_and_models_sit_below_tasks_and_runs():
    """data/ and models/ are the bottom of the stack (docs/architecture.md): a dataset never imports a task (it
    once imported forecast to register it), a model never imports the trainer or anything that runs it."""
    above = ("nnzoo.tasks", "nnzoo.runs", "nnzoo.training", "nnzoo.trainer", "nnzoo.export", "nnzoo.serve",
             "nnzoo.api", "nnzoo.cli")  # fmt: skip
    wrong = sorted(f"{m} -> {d}" for m, deps in import_graph().items() if m.startswith(("nnzoo.data.", "nnzoo.models."))
                   for d in deps if d.startswith(above))  # fmt: skip
    assert not wrong, f"imports that run upwards: {wrong}"


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_api_loads_the_task_package_before_what_reads_its_registry():
    """runs, training and export import nnzoo.tasks.base, and Python runs tasks/__init__.py (which imports the
    families, which import runs, training and export) first: were one of them loaded before the package, a family
    would find it half-imported. nnzoo/__init__.py imports api first; api must import tasks before any module of
    nnzoo's that leads to the registry (docs/architecture.md)."""
    graph, modules = import_graph(), _modules()
    tree = ast.parse(modules["nnzoo.api"].read_text(encoding="utf-8"))
    before = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [f"nnzoo.{node.module}"] if node.module else [f"nnzoo.{a.name}" for a in node.names]
            if "nnzoo.tasks" in names:
                break
            before += [_resolve(n, modules) for n in names]
    else:
        raise AssertionError("api does not import nnzoo.tasks at module level")
    early = sorted(m for m in before if m and _reaches(graph, m, "nnzoo.tasks.base"))
    assert not early, f"api imports these before nnzoo.tasks, and they lead to nnzoo.tasks.base: {early}"
    first = [n for n in ast.parse(modules["nnzoo.__init__"].read_text(encoding="utf-8")).body
             if isinstance(n, (ast.Try, ast.ImportFrom))][0]  # fmt: skip
    imports = first.body if isinstance(first, ast.Try) else [first]
    assert isinstance(imports[0], ast.ImportFrom) and imports[0].module == "api"


def test_nnzoo_imports_without_unix_only_modules() -> None:
    """Windows has no `resource` (nor `fcntl`): `import nnzoo` must not need them."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['resource'] = None; sys.modules['fcntl'] = None; import nnzoo, nnzoo.cli; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
