"""The layering the README draws, checked from the code: core is plain Python and never reaches up into
the window or the CLI, the window and the CLI use only the names core's faces export, and no two modules (nor
two packages of core) import each other."""

from __future__ import annotations

import ast
import importlib
import pkgutil
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


def _faces() -> dict[str, set[str]]:
    """Every public face: ``LLM.core`` and each package under it, with the names its ``__all__`` exports."""
    names = ["LLM.core", *(m.name for m in pkgutil.walk_packages(LLM.core.__path__, "LLM.core.") if m.ispkg)]
    return {name: set(getattr(importlib.import_module(name), "__all__", ())) for name in names}


def _room(module: str) -> str:
    """The package (or plain module) directly under LLM.core that a module belongs to."""
    return ".".join(module.split(".")[:3])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph.get(node, ()):
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

    for node in list(graph):
        if node not in index:
            strongconnect(node)
    return cycles


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


def test_architecture_the_session_reaches_nothing_of_a_front_end():
    """The chat session every front end drives (LLM.core.session) imports from core only: no Qt, no window, no
    CLI, and no terminal or GUI toolkit of its own; front ends adapt its plain callback."""
    imported = {module for path in _sources("core/session") for module, _ in _imports(path)}
    outside = sorted(m for m in imported if m.split(".")[0] not in ("LLM", "__future__") and
                     m.split(".")[0] not in sys.stdlib_module_names)
    assert outside == []
    assert sorted(m for m in imported if m.startswith("LLM.") and not m.startswith("LLM.core")) == []
    assert not {"tkinter", "curses", "readline"} & {m.split(".")[0] for m in imported}
    assert imported, "the session's imports were not read"


def test_architecture_window_and_cli_use_only_core_public_names():
    """The window and the CLI import core only through its faces: ``from LLM.core import X`` or
    ``from LLM.core.<package> import X`` with X in that face's ``__all__``; never a module inside a package
    (``LLM.core.tools.loop``) or a plain module of core (``LLM.core.inference``)."""
    faces = _faces()
    problems = []
    for path in [*_sources("desktop_app"), *_sources("cli")]:
        for module, names in _imports(path):
            if not module.startswith("LLM.core"):
                continue
            where = _module_name(path)
            if module not in faces:
                problems.append(f"{where}: imports {module}, which is no face (use LLM.core or a package of it)")
                continue
            problems += [f"{where}: {n} is not in {module}.__all__" for n in names if n not in faces[module]]
    assert problems == []


def test_architecture_core_face_exports_only_what_front_ends_use():
    """``LLM.core`` stays small: each name it exports is imported from it by the window, the CLI or a
    benchmark. A name nobody there uses goes, or lives in its package's face."""
    used = {
        name
        for path in [*_sources("desktop_app"), *_sources("cli"), *sorted((REPO_ROOT / "bench").glob("*.py"))]
        for module, names in _imports(path)
        if module == "LLM.core"
        for name in names
    }
    assert sorted(set(LLM.core.__all__) - used) == []


def test_architecture_core_packages_form_layers():
    """No two packages (or top-level modules) of core import each other, even through others. So a package's
    face, which imports its own modules, can never close a circle at import time."""
    graph: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        if module.startswith("LLM.core."):
            graph.setdefault(_room(module), set()).update(
                _room(t) for t in targets if t.startswith("LLM.core.") and _room(t) != _room(module))
    assert _cycles(graph) == []


def test_architecture_has_no_import_cycles():
    assert _cycles(_graph()) == []


def test_architecture_graph_sees_real_imports():
    """Guards the checks above against a parser that finds nothing."""
    graph = _graph()
    assert "LLM.core.tools.loop" in graph["LLM.core.inference"]
    assert "LLM.core.errors" in graph["LLM.core.config"]
    assert "LLM.core" in graph["LLM.desktop_app.pages.chat_page"]
    assert {"LLM.core", "LLM.core.tools", "LLM.core.tools.parsing", "LLM.core.history"} <= set(_faces())
