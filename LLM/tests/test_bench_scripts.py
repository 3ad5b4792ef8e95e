"""The benchmarks import our code by name: a rename must not leave `make bench` broken until someone runs it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from LLM.tests.fakes.handle import REPO_ROOT

BENCH = sorted((REPO_ROOT / "bench").glob("*.py"))


def _imported_names(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from LLM... import name`` in the script."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "LLM"
            for alias in node.names]


@pytest.mark.parametrize("script", BENCH, ids=[p.name for p in BENCH])
def test_bench_script_imports_names_that_exist(script: Path):
    """Regression (#19, found re-running `make bench`): bench/history.py imported `fts_query` from the history
    store after it moved, and `make bench` stopped at that script."""
    missing = []
    for module_name, name in _imported_names(script):
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            continue
        try:
            importlib.import_module(f"{module_name}.{name}")
        except ImportError:
            missing.append(f"{module_name}.{name}")
    assert not missing, f"{script.name} imports names that do not exist: {', '.join(missing)}"
