"""Core's public faces kept honest, as httpx keeps its own (tests/test_exported_members.py): ``LLM.core`` and the
``__init__`` of every package under it export a sorted ``__all__`` without duplicates, every name in it resolves,
and it equals the public names the face binds, so a name added to a face without ``__all__`` (or the reverse)
fails here. A new package is picked up on its own."""

from __future__ import annotations

import __future__

import importlib
import pkgutil
import types

import pytest

import LLM.core

FACES = ["LLM.core", *(m.name for m in pkgutil.walk_packages(LLM.core.__path__, "LLM.core.") if m.ispkg)]


def _face(name: str) -> types.ModuleType:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__: a package's __init__ is its face"
    return module


def _bound_public_names(module: types.ModuleType) -> set[str]:
    """What the face binds for others: no private names, no submodules (bound by importing them), no
    ``from __future__`` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, (types.ModuleType, __future__._Feature))
    }


def test_faces_are_found():
    """Guards the tests below against a discovery that finds nothing."""
    assert {"LLM.core", "LLM.core.chat", "LLM.core.tools", "LLM.core.tools.parsing", "LLM.core.history"} <= set(FACES)


@pytest.mark.parametrize("name", FACES)
def test_face_all_is_sorted(name: str):
    exported = list(_face(name).__all__)
    assert exported == sorted(exported)


@pytest.mark.parametrize("name", FACES)
def test_face_all_has_no_duplicates(name: str):
    exported = list(_face(name).__all__)
    assert sorted(n for n in set(exported) if exported.count(n) > 1) == []


@pytest.mark.parametrize("name", FACES)
def test_face_all_names_resolve(name: str):
    module = _face(name)
    assert [n for n in module.__all__ if not hasattr(module, n)] == []


@pytest.mark.parametrize("name", FACES)
def test_face_all_equals_the_public_names_it_binds(name: str):
    module = _face(name)
    exported = set(module.__all__)
    bound = _bound_public_names(module)
    assert {"bound but not exported": sorted(bound - exported), "exported but not bound": sorted(exported - bound)} \
        == {"bound but not exported": [], "exported but not bound": []}
