"""Does a value satisfy a JSON schema? The subset tool schemas use, as problems that name the path (pure).

Checked: type (one or a list; "integer" accepts 3.0, booleans are not numbers), enum, const,
properties, required, additionalProperties (false or a schema), items, minItems, maxItems,
minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum, anyOf, oneOf,
allOf. Other keywords (format, $ref, ...) are not checked. That covers what the tool-call grammar
(``tools/grammar.py``) enforces, and a little more.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def schema_problems(schema: Any, value: Any, path: str = "") -> list[str]:
    """Every way ``value`` breaks ``schema``, each as ``path: problem``; [] when it satisfies it."""
    if not isinstance(schema, dict):
        return []  # true / {} / something we cannot read: anything goes
    where = path or "arguments"
    problems: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
            return [f"{where}: expected {' or '.join(map(str, kinds))}, got {_shown(value)}"]
    if "const" in schema and not json_equal(value, schema["const"]):
        problems.append(f"{where}: must be {_shown(schema['const'])}, got {_shown(value)}")
    if isinstance(schema.get("enum"), list) and not any(json_equal(value, o) for o in schema["enum"]):
        options = ", ".join(_shown(o) for o in schema["enum"])
        problems.append(f"{where}: must be one of {options}, got {_shown(value)}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            passing = sum(not schema_problems(option, value, path) for option in options)
            if passing == 0 or (key == "oneOf" and passing > 1):
                problems.append(f"{where}: matches {passing} of the {key} alternatives")
    for sub in schema.get("allOf") or ():
        problems += schema_problems(sub, value, path)
    if isinstance(value, dict):
        problems += _object(schema, value, path)
    elif isinstance(value, list):
        problems += _array(schema, value, path)
    elif isinstance(value, str):
        problems += _string(schema, value, where)
    elif _TYPES["number"](value):
        problems += _number(schema, value, where)
    return problems


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _object(schema: dict[str, Any], value: dict[str, Any], path: str) -> list[str]:
    problems = []
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    for name in schema.get("required") or ():
        if name not in value:
            problems.append(f"{_join(path, name)}: required but missing")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            problems += schema_problems(properties[name], item, _join(path, name))
        elif extra is False:
            problems.append(f"{_join(path, name)}: not an allowed argument")
        elif isinstance(extra, dict):
            problems += schema_problems(extra, item, _join(path, name))
    return problems


def _array(schema: dict[str, Any], value: list[Any], path: str) -> list[str]:
    problems = []
    where = path or "arguments"
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        problems.append(f"{where}: at least {low} items, got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        problems.append(f"{where}: at most {high} items, got {len(value)}")
    if isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += schema_problems(schema["items"], item, f"{where}[{i}]")
    return problems


def _string(schema: dict[str, Any], value: str, where: str) -> list[str]:
    problems = []
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        problems.append(f"{where}: at least {low} characters, got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        problems.append(f"{where}: at most {high} characters, got {len(value)}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                problems.append(f"{where}: does not match the pattern {pattern!r}")
        except re.error:
            pass  # a pattern Python cannot read is not the model's fault
    return problems


def _number(schema: dict[str, Any], value: float, where: str) -> list[str]:
    checks = (("minimum", lambda b: value >= b, ">="), ("maximum", lambda b: value <= b, "<="),
              ("exclusiveMinimum", lambda b: value > b, ">"), ("exclusiveMaximum", lambda b: value < b, "<"))
    problems = []
    for key, ok, op in checks:
        bound = schema.get(key)
        if _TYPES["number"](bound) and not ok(bound):
            problems.append(f"{where}: must be {op} {bound}, got {_shown(value)}")
    return problems


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
