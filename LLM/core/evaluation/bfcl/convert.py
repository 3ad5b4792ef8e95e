"""BFCL function docs -> OpenAI tools, as BFCL prepares them for function-calling models (pure).

BFCL appends a language note to each description when it loads a Python category, then its
``convert_to_tool`` maps the Gorilla type names to JSON Schema ones (``GORILLA_TO_OPENAPI``): ``dict``
becomes ``object``, ``float`` becomes ``number`` (with ``format: float`` and a note in the
description), ``tuple`` becomes ``array``, ``any`` and unknown names become ``string``.

OpenAI-compatible servers only accept names matching ``^[a-zA-Z0-9_-]{1,64}$``, so BFCL's
``math.factorial`` is offered as ``math_factorial``; ``NameMap`` turns the model's calls back into the
names the ground truth uses.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PYTHON_NOTE = " Note that the provided function is in Python 3 syntax."
FLOAT_NOTE = " This is a float type value."
MAX_NAME = 64

GORILLA_TO_OPENAPI = {
    "integer": "integer", "number": "number", "float": "number", "string": "string",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array",
    "dict": "object", "object": "object", "tuple": "array", "any": "string",
    # Java and JavaScript names: BFCL keeps them in the same table; harmless for Python docs.
    "byte": "integer", "short": "integer", "long": "integer", "double": "number", "char": "string",
    "ArrayList": "array", "Array": "array", "HashMap": "object", "Hashtable": "object",
    "Queue": "array", "Stack": "array", "Any": "string", "String": "string", "Bigint": "integer",
}

_ILLEGAL = re.compile(r"[^a-zA-Z0-9_-]")
_LEGAL = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class NameMap:
    """One task's function names: BFCL's originals <-> the legal names the server was offered."""

    pairs: tuple[tuple[str, str], ...]  # (original, legal), in the order of the task's functions
    _to_legal: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _to_original: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_to_legal", dict(self.pairs))
        object.__setattr__(self, "_to_original", {legal: original for original, legal in self.pairs})

    def legal(self, original: str) -> str:
        """The name offered for ``original``; KeyError for a name the task does not have."""
        return self._to_legal[original]

    def original(self, legal: str) -> str | None:
        """BFCL's name for a name the model called; None for a name the task never offered."""
        return self._to_original.get(legal)


def legal_names(originals: Sequence[str]) -> NameMap:
    """Each name made legal and unique within the task (``_2``, ``_3``, ... on a collision).

    Names that are legal already keep themselves even when a converted name would have taken them
    first, so ``["a.b", "a_b"]`` offers ``a_b_2`` for ``a.b``, not for the function really named ``a_b``.
    """
    unique = list(dict.fromkeys(originals))  # a repeated name is one function to the checker too
    taken = {name for name in unique if _LEGAL.match(name)}
    pairs = []
    for original in unique:
        if _LEGAL.match(original):
            pairs.append((original, original))
            continue
        base = _ILLEGAL.sub("_", original)[:MAX_NAME] or "_"
        legal, n = base, 1
        while legal in taken:
            n += 1
            suffix = f"_{n}"
            legal = base[: MAX_NAME - len(suffix)] + suffix
        taken.add(legal)
        pairs.append((original, legal))
    return NameMap(tuple(pairs))


def to_openai_tools(functions: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], NameMap]:
    """BFCL function docs -> (OpenAI ``tools``, the task's name map); the input is left untouched.

    Only ``name``, ``description`` and ``parameters`` are sent: BFCL passes any other key of a doc
    (a few carry ``response``) through to OpenAI, which strict servers reject.
    """
    names = legal_names([f["name"] for f in functions])
    tools = []
    for doc in functions:
        parameters = copy.deepcopy(dict(doc.get("parameters") or {}))
        parameters["type"] = "object"
        parameters["properties"] = _cast_properties(parameters.get("properties") or {})
        tools.append({"type": "function", "function": {
            "name": names.legal(doc["name"]),
            "description": (doc.get("description") or "") + PYTHON_NOTE,
            "parameters": parameters,
        }})
    return tools, names


def _cast_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """BFCL's ``_cast_to_openai_type``: every property's type mapped, in place (on our copy)."""
    for schema in properties.values():
        gorilla = schema.get("type")
        if gorilla == "float":
            schema["format"] = "float"
            schema["description"] = (schema.get("description") or "") + FLOAT_NOTE
        schema["type"] = GORILLA_TO_OPENAPI.get(gorilla, "string") if isinstance(gorilla, str) else "string"
        if schema["type"] in ("array", "object"):
            # BFCL looks at ``properties`` first and only then at ``items``.
            if isinstance(schema.get("properties"), dict):
                _cast_properties(schema["properties"])
            elif isinstance(schema.get("items"), dict):
                _cast_items(schema["items"])
    return properties


def _cast_items(items: dict[str, Any]) -> None:
    """An array's item schema: its type mapped without the float note, as BFCL does.

    BFCL maps two levels of ``items`` and the ``properties`` of object items; we go on down the same
    way, so no Gorilla name (``dict``, ``float``) is left in the schema however deep it nests.
    """
    gorilla = items.get("type")
    items["type"] = GORILLA_TO_OPENAPI.get(gorilla, "string") if isinstance(gorilla, str) else "string"
    if items["type"] == "array" and isinstance(items.get("items"), dict):
        _cast_items(items["items"])
    elif items["type"] == "object" and isinstance(items.get("properties"), dict):
        _cast_properties(items["properties"])
