"""The JSON Schema subset a tool defined in JSON may use: checking a schema, validating arguments against it.

Pure, except that ``pattern`` checks go through :mod:`.safe_regex`, which may run them in a child process
under a deadline (a pattern can backtrack for minutes): call :func:`value_problems` from a worker thread.

``jsonschema`` is not a dependency, and the schema goes to small models and into the fallback
grammar (``grammar.py``), so a subset is checked strictly instead: a keyword outside it is
reported, not ignored, because a typo such as ``"requried"`` would otherwise silently accept
anything. The subset:

- anywhere: ``type`` (a name or a list of names), ``enum``, ``const``, ``anyOf``, ``oneOf``,
  and the annotations ``title``, ``description``, ``default``, ``examples``, ``$comment``
  (``$schema`` too, at the root);
- strings: ``minLength``, ``maxLength``, ``pattern`` (a Python regex, searched), ``format``
  (an annotation, not checked);
- numbers and integers: ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``;
- arrays: ``items``, ``minItems``, ``maxItems``;
- objects: ``properties``, ``required`` (names that are in ``properties``),
  ``additionalProperties`` (true, false or a schema; absent means allowed, as in JSON Schema).

Validation is strict JSON typing, no coercion: ``"3"`` is not an integer, ``true`` is not a
number, ``2.0`` is an integer (JSON Schema counts integral numbers as integers).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable
from typing import Any

from .safe_regex import PATTERN_DEADLINE_S, Outcome, search_all

TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_KEYWORDS = frozenset({
    "type", "enum", "const", "anyOf", "oneOf",
    "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "items", "minItems", "maxItems",
    "properties", "required", "additionalProperties",
}) | _ANNOTATIONS
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_SHOWN_CHARS = 60  # a bad value is quoted in the message, but not a whole document of it


# --- checking a schema --------------------------------------------------------------------


def schema_problems(schema: Any) -> list[tuple[str, str]]:
    """Every way ``schema`` falls outside the subset, as (key path, message); empty when usable.

    A tool's parameters must be an object schema, so the root must have ``"type": "object"``.
    Paths are dotted from the schema's root: ``properties.city.type``.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(schema, dict):
        return [("", f"must be a JSON object (a schema), got {_shown(schema)}")]
    kind = schema.get("type")
    if "type" not in schema:
        problems.append(("type", 'required: "object" (a tool takes named arguments)'))
    elif kind != "object" and not (isinstance(kind, str) and kind not in TYPES):  # unknown names: _check says
        problems.append(("type", f'must be "object" (a tool takes named arguments), got {_shown(kind)}'))
    _check(schema, "", problems, root=True)
    return problems


def _check(schema: Any, path: str, problems: list[tuple[str, str]], *, root: bool = False) -> None:
    def report(key: str, message: str) -> None:
        problems.append((_join(path, key), message))

    if not isinstance(schema, dict):
        problems.append((path, f"must be a schema (a JSON object), got {_shown(schema)}"))
        return
    for key in schema:
        if key not in _KEYWORDS and not (root and key == "$schema"):
            report(key, _unknown_keyword(key))
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        bad = [k for k in kinds if k not in TYPES]
        if bad or not kinds:
            shown = _shown(bad[0]) if bad else "(empty list)"
            close = difflib.get_close_matches(bad[0], TYPES, n=1) if bad and isinstance(bad[0], str) else []
            hint = f'did you mean "{close[0]}"?' if close else f"use one of: {', '.join(TYPES)}"
            report("type", f"unknown type {shown} ({hint})")
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        report("enum", f"must be a non-empty list of allowed values, got {_shown(schema['enum'])}")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            choices = schema[key]
            if not isinstance(choices, list) or not choices:
                report(key, f"must be a non-empty list of schemas, got {_shown(choices)}")
            else:
                for i, choice in enumerate(choices):
                    _check(choice, f"{_join(path, key)}[{i}]", problems)
    for key in _COUNTS:
        if key in schema and not (_is_int(schema[key]) and schema[key] >= 0):
            report(key, f"must be a whole number >= 0, got {_shown(schema[key])}")
    for key in _BOUNDS:
        if key in schema and not _is_number(schema[key]):
            report(key, f"must be a number, got {_shown(schema[key])}")
    if "pattern" in schema:
        if not isinstance(schema["pattern"], str):
            report("pattern", f"must be a regular expression in a string, got {_shown(schema['pattern'])}")
        else:
            try:
                re.compile(schema["pattern"])
            except (re.error, OverflowError, RecursionError, ValueError) as exc:
                report("pattern", f"not a valid regular expression: {exc}")
    if "format" in schema and not isinstance(schema["format"], str):
        report("format", f"must be a string, got {_shown(schema['format'])}")
    if "items" in schema:
        _check(schema["items"], _join(path, "items"), problems)
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        report("properties", f"must be an object of name -> schema, got {_shown(properties)}")
        properties = {}
    for name, sub in properties.items():
        _check(sub, _join(path, f"properties.{name}"), problems)
    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            report("required", f"must be a list of property names, got {_shown(required)}")
        else:
            for name in required:
                if name not in properties:
                    declared = ", ".join(properties) or "none"
                    report("required", f"names {name!r}, which is not in properties (declared: {declared})")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        _check(schema["additionalProperties"], _join(path, "additionalProperties"), problems)
    for key in ("title", "description", "$comment"):
        if key in schema and not isinstance(schema[key], str):
            report(key, f"must be a string, got {_shown(schema[key])}")


def _unknown_keyword(key: str) -> str:
    if key in ("$ref", "$defs", "definitions"):
        return "references are not supported: write the schema out in place"
    close = difflib.get_close_matches(key, _KEYWORDS, n=1)
    if close:
        return f"unknown keyword (did you mean '{close[0]}'?)"
    return f"unknown or unsupported keyword (supported: {', '.join(sorted(_KEYWORDS))})"


# --- validating a value -------------------------------------------------------------------


def value_problems(schema: dict[str, Any], value: Any, path: str = "", *,
                   pattern_deadline_s: float = PATTERN_DEADLINE_S) -> list[tuple[str, str]]:
    """Every way ``value`` does not satisfy ``schema`` (one that passed :func:`schema_problems`),
    as (path, message); paths are dotted with ``[i]`` for list items: ``days[2]``.

    Blocks for up to ``pattern_deadline_s`` where a ``pattern`` must be checked in a child process
    (see :mod:`.safe_regex`); a check stopped there is a problem that says so.
    """
    # Two walks: the first gathers every (pattern, string) pair, assuming each matches (which pairs are
    # visited does not depend on the answers); all are then checked at once under one deadline.
    checks: dict[tuple[str, str], Outcome] = {}
    problems = _problems(schema, value, path, lambda *check: checks.setdefault(check, Outcome.MATCHED))
    if not checks:
        return problems
    outcomes = dict(zip(checks, search_all(list(checks), pattern_deadline_s)))
    return _problems(schema, value, path, lambda *check: outcomes[check], pattern_deadline_s)


_Searcher = Callable[[str, str], Outcome]


def _problems(schema: dict[str, Any], value: Any, path: str, search: _Searcher,
              deadline_s: float = PATTERN_DEADLINE_S) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        # A type name outside JSON Schema's (only an MCP server's schema, unchecked, has one) constrains nothing
        # here: the rest of the schema is still checked.
        kinds = [kind for kind in kinds if isinstance(kind, str) and kind in _TYPE_WORDS]
        if kinds and not any(_is_type(value, kind) for kind in kinds):
            expected = " or ".join(_TYPE_WORDS[k] for k in kinds)
            return [(path, f"expected {expected}, got {_shown(value)}")]  # the other checks would only echo this
    if "const" in schema and not _json_equal(value, schema["const"]):
        problems.append((path, f"must be {_shown(schema['const'])}, got {_shown(value)}"))
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        options = ", ".join(_shown(option) for option in schema["enum"])
        problems.append((path, f"must be one of {options}, got {_shown(value)}"))
    if isinstance(value, str):
        _length(schema, path, len(value), "character", "minLength", "maxLength", problems)
        if "pattern" in schema:
            outcome = search(schema["pattern"], value)
            if outcome is Outcome.NOT_MATCHED:
                problems.append((path, f"must match the pattern {schema['pattern']!r}, got {_shown(value)}"))
            elif outcome is Outcome.TIMED_OUT:
                problems.append((path, f"the check against the pattern {schema['pattern']!r} took longer than "
                                 f"{deadline_s:g} s and was stopped; the pattern may be catastrophic (nested "
                                 "repetition such as (a+)+ can take exponential time)"))
            elif outcome is Outcome.FAILED:
                problems.append((path, f"the check against the pattern {schema['pattern']!r} could not run (no "
                                 "process could be started for it); try again"))
            # INVALID: a pattern Python cannot read (an MCP server's ECMA-only syntax) is not ours to enforce
    if _is_number(value):
        for key, ok, words in (("minimum", lambda v, b: v >= b, ">="), ("maximum", lambda v, b: v <= b, "<="),
                               ("exclusiveMinimum", lambda v, b: v > b, ">"),
                               ("exclusiveMaximum", lambda v, b: v < b, "<")):
            if key in schema and not ok(value, schema[key]):
                problems.append((path, f"must be {words} {schema[key]}, got {_shown(value)}"))
    if isinstance(value, list):
        _length(schema, path, len(value), "item", "minItems", "maxItems", problems)
        if "items" in schema:
            for i, item in enumerate(value):
                problems += _problems(schema["items"], item, f"{path}[{i}]", search, deadline_s)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                problems.append((_join(path, name), "required, but missing"))
        extra = schema.get("additionalProperties", True)
        unknown = [key for key in value if key not in properties]
        if extra is False and unknown:
            names = ", ".join(f"'{key}'" for key in unknown)
            expected = ", ".join(properties) or ("no arguments" if not path else "none")
            noun = ("key" if path else "argument") + ("s" if len(unknown) > 1 else "")
            problems.append((path, f"unknown {noun} {names} (expected: {expected})"))
        for key, item in value.items():
            if key in properties:
                problems += _problems(properties[key], item, _join(path, key), search, deadline_s)
            elif isinstance(extra, dict):
                problems += _problems(extra, item, _join(path, key), search, deadline_s)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matching = sum(not _problems(choice, value, path, search, deadline_s) for choice in schema[key])
            if matching == 0:
                problems.append((path, f"matches none of the {key} choices, got {_shown(value)}"))
            elif key == "oneOf" and matching > 1:
                problems.append((path, f"matches {matching} of the oneOf choices, exactly one allowed"))
    return problems


def with_defaults(schema: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` plus the declared ``default`` of each top-level property the caller left out."""
    properties = schema.get("properties", {})
    defaults = {name: copy.deepcopy(sub["default"])  # a default is copied, never shared between calls
                for name, sub in properties.items() if isinstance(sub, dict) and "default" in sub}
    return {**defaults, **arguments}


_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return _is_int(value) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return _is_number(value)
    return {"string": str, "boolean": bool, "array": list, "object": dict, "null": type(None)}[kind] is type(value)


def _length(schema: dict[str, Any], path: str, n: int, unit: str, low: str, high: str,
            problems: list[tuple[str, str]]) -> None:
    if low in schema and n < schema[low]:
        problems.append((path, f"must have at least {schema[low]} {unit}{'s' * (schema[low] != 1)}, got {n}"))
    if high in schema and n > schema[high]:
        problems.append((path, f"must have at most {schema[high]} {unit}{'s' * (schema[high] != 1)}, got {n}"))


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
