"""The layering the README draws, checked from the code: core is plain Python and never reaches up into
the window or the CLI, the window uses only core's public names, and no two modules import each other."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import LLM.core
from LLM.tests.fakes.handle import REPO_ROOT

PACKAGE_ROOT = REPO_ROOT / "LLM"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in the file, relative ones resolved; TYPE_CHECKING skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.append((base, [alias.name for alias in child.names]))
            visit(child)

    visit(tree)
    return found


def _sources(*folders: str) -> list[Path]:
    paths = [p for folder in folders for p in (PACKAGE_ROOT / folder).rglob("*.py")]
    return sorted(p for p in paths if "tests" not in p.relative_to(PACKAGE_ROOT).parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name that is a submodule counts as that submodule)."""
    files = {_module_name(p): p for p in _sources("")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for module, names in _imports(path):
            if not module.startswith("LLM"):
                continue
            targets = {f"{module}.{n}" for n in names if f"{module}.{n}" in files} or {module}
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def test_architecture_core_never_imports_qt():
    """LLM.core stays plain Python: no PySide6 / qasync import anywhere in it, even indirectly."""
    script = (
        "import sys, pkgutil, importlib, LLM.core\n"
        "for m in pkgutil.walk_packages(LLM.core.__path__, 'LLM.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'qasync', 'PyQt5', 'PyQt6')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|qasync|PyQt\d)", re.MULTILINE)
    assert [p for p in _sources("core") if pattern.search(p.read_text())] == []


def test_architecture_core_never_imports_the_window_or_the_cli():
    upward = [
        f"{_module_name(path)} imports {module}"
        for path in _sources("core")
        for module, _ in _imports(path)
        if module.startswith(("LLM.desktop_app", "LLM.cli"))
    ]
    assert upward == []


def test_architecture_window_and_cli_use_only_core_public_names():
    """The window and the CLI import ``from LLM.core import ...`` names listed in ``__all__``, nothing private."""
    public = set(LLM.core.__all__)
    problems = []
    for path in [*_sources("desktop_app"), *_sources("cli")]:
        for module, names in _imports(path):
            if not module.startswith("LLM.core"):
                continue
            if module != "LLM.core":
                problems.append(f"{_module_name(path)}: imports {module} (use `from LLM.core import ...`)")
            problems += [f"{_module_name(path)}: {n} is not in LLM.core.__all__" for n in names if n not in public]
    assert problems == []


def test_architecture_has_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strongconnect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph[node]:
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            strongconnect(node)
    assert cycles == []


def test_architecture_graph_sees_real_imports():
    """Guards the checks above against a parser that finds nothing."""
    graph = _graph()
    assert "LLM.core.tools.loop" in graph["LLM.core.inference"]
    assert "LLM.core.errors" in graph["LLM.core.config"]
    assert "LLM.core" in graph["LLM.desktop_app.pages.chat_page"]
