"""A GBNF grammar that admits only ``<tool_call>`` blocks whose arguments satisfy the tools' JSON schemas (pure).

Sent as llama-server's per-request ``grammar`` when a call is forced (``tool_choice`` required or a
named tool) in fallback mode, so even a model whose template knows nothing of tools emits a call
that parses and validates. The block layout is fixed (one space, one newline), which small models
follow more easily than free whitespace. Schema support: object (properties, required), string
(enum, const), integer, number, boolean, null, array (items, minItems, maxItems), anyOf / oneOf,
type lists; anything else is any JSON value of the right shape.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_CALLS = 3  # a forced step may make several calls, but not repeat them until max_tokens
# A string without maxLength is capped: a small model that loses its way inside a string would otherwise
# fill max_tokens and the call would never close. string_cap_note says which strings, so the user is told.
MAX_STRING_CHARS = 200

_BASE_RULES = r"""
ws ::= ""
string ::= "\"" char* "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])
integer ::= "-"? ([0-9] | [1-9] [0-9]{1,15})
number ::= integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( "," ws value )* )? ws "]"
""".strip()


def tool_call_grammar(
    tools: list[dict[str, Any]], *, max_calls: int = MAX_CALLS, max_string_chars: int = MAX_STRING_CHARS
) -> str:
    """Grammar for 1..max_calls ``<tool_call>`` blocks calling any of ``tools`` (OpenAI tool entries)."""
    builder, calls = _build(tools, max_string_chars)
    builder.add("call", " | ".join(calls))
    more = f' ( "\\n" call ){{0,{max_calls - 1}}}' if max_calls > 1 else ""
    return f"root ::= call{more}\n" + "\n".join(builder.rules) + "\n" + _BASE_RULES + "\n"


def string_cap_note(tools: list[dict[str, Any]], *, max_string_chars: int = MAX_STRING_CHARS) -> str:
    """What the grammar for ``tools`` holds a call to beyond their schemas, for the user to see: which
    strings it caps (those without ``maxLength``), or "" when it caps none."""
    capped = _build(tools, max_string_chars)[0].capped
    if not capped:
        return ""
    shown = ", ".join(capped[:_NOTE_PATHS]) + (f" and {len(capped) - _NOTE_PATHS} more"
                                                if len(capped) > _NOTE_PATHS else "")
    return f"forced call: strings without maxLength capped at {max_string_chars} characters ({shown})"


_NOTE_PATHS = 6


def _build(tools: list[dict[str, Any]], max_string_chars: int) -> tuple[_Builder, list[str]]:
    """The rules of each tool's call, and the call rules' names."""
    if not tools:
        raise ValueError("a tool-call grammar needs at least one tool")
    builder = _Builder(max_string_chars)
    calls = []
    for tool in tools:
        function = tool.get("function", tool)
        name = function["name"]
        args = builder.value(function.get("parameters") or {"type": "object"}, f"{name}-args", name)
        header = json.dumps(f'{{"name": {json.dumps(name)}, "arguments": ')
        rule = builder.add(f"call-{name}", f'"<tool_call>\\n" {header} {args} "}}\\n</tool_call>"')
        calls.append(rule)
    return builder, calls


class _Builder:
    def __init__(self, max_string_chars: int) -> None:
        self.rules: list[str] = []
        self._names: set[str] = set()
        self._max_string = max_string_chars
        self.capped: list[str] = []  # where a string without maxLength was capped: "tool.arg", "tool.list[]"

    def add(self, name: str, body: str) -> str:
        rule = self._unique(name)
        self.rules.append(f"{rule} ::= {body}")
        return rule

    def _unique(self, name: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", name).strip("-").lower() or "r"
        rule, n = base, 1
        while rule in self._names or rule in ("root", "ws", "string", "char", "integer", "number", "boolean",
                                               "null", "value", "object", "array"):
            n += 1
            rule = f"{base}-{n}"
        self._names.add(rule)
        return rule

    def value(self, schema: Any, name: str, path: str) -> str:
        """A grammar expression (a rule name or a literal) for values of ``schema``, found at ``path``."""
        if not isinstance(schema, dict) or not schema:
            return "value"
        if "const" in schema:
            return _literal(schema["const"])
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            return self.add(name, " | ".join(_literal(v) for v in schema["enum"]))
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                parts = [self.value(option, f"{name}-{i}", path) for i, option in enumerate(options)]
                return self.add(name, " | ".join(parts))
        kind = schema.get("type")
        if isinstance(kind, list):
            parts = [self.value({**schema, "type": k}, f"{name}-{k}", path) for k in kind]
            return self.add(name, " | ".join(parts))
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, name, path)
        if kind == "array":
            return self._array(schema, name, path)
        if kind == "string":
            low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
            high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else self._max_string
            if not isinstance(schema.get("maxLength"), int) and path not in self.capped:
                self.capped.append(path)
            return self.add(name, f'"\\"" char{{{low},{max(low, high)}}} "\\""')
        return {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                "null": "null"}.get(kind, "value")

    def _object(self, schema: dict[str, Any], name: str, path: str) -> str:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return "object"
        required = set(schema.get("required") or ())
        members = [(key, key in required, self.value(sub, f"{name}-{key}", f"{path}.{key}"))
                   for key, sub in properties.items()]
        # Members in schema order, optional ones skippable. rest[i]: members i.. after one was written (each
        # starts with a comma); first[i]: members i.. when none was written yet (None: nothing can follow).
        n = len(members)
        rest: list[str] = [""] * (n + 1)
        first: list[str | None] = [None] * (n + 1)
        for i in range(n - 1, -1, -1):
            key, needed, value = members[i]
            pair = f'{_literal(key)} ": " {value}'
            tail = f" {rest[i + 1]}" if rest[i + 1] else ""
            if needed:
                rest[i] = self.add(f"{name}-r{i}", f'", " {pair}{tail}')
                first[i] = self.add(f"{name}-f{i}", f"{pair}{tail}")
            else:
                rest[i] = self.add(f"{name}-r{i}", f'( ", " {pair} )?{tail}')
                later = first[i + 1]
                body = f"{pair}{tail} | {later}" if later else f"( {pair}{tail} )?"
                first[i] = self.add(f"{name}-f{i}", body)
        inside = f" {first[0]}" if first[0] else ""
        return self.add(name, f'"{{"{inside} "}}"')

    def _array(self, schema: dict[str, Any], name: str, path: str) -> str:
        item = self.value(schema.get("items"), f"{name}-item", f"{path}[]")
        low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        if high == 0:
            return self.add(name, '"[" ws "]"')
        extra_low = max(low - 1, 0)
        extra_high = "" if high is None else str(high - 1)
        items = f'{item} ( "," ws {item} ){{{extra_low},{extra_high}}}'
        body = items if low >= 1 else f"( {items} )?"
        return self.add(name, f'"[" ws {body} ws "]"')


def _literal(value: Any) -> str:
    """A JSON value as a GBNF string literal."""
    return json.dumps(json.dumps(value, ensure_ascii=False), ensure_ascii=False)
