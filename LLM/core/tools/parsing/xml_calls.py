"""Qwen3-Coder ``<function=NAME><parameter=KEY>…`` calls, their values typed by the tools' schemas (pure)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Union

from .calls import JSON, Call, json_settled, jsonable, type_name
from .markup import FUNC_CLOSE, FUNC_OPEN, NAME_RE, PARAM_CLOSE, PARAM_OPEN, TOOL_CLOSE, WS_RE, match_token

# Schema types per tool and parameter, precomputed once per parser; only parameters with a non-string type are
# listed, since every other value stays the raw string.
TypeTable = dict[str, dict[str, frozenset[str]]]


def _schema_types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    types: set[str] = set()
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or ():
            types |= _schema_types(option)
    return types


def type_table(tools: list[dict[str, Any]] | None) -> TypeTable:
    """Tool name -> parameter -> JSON-schema types; accepts OpenAI entries and bare ``{name, parameters}``."""
    table: TypeTable = {}
    for tool in tools or ():
        if not isinstance(tool, dict):
            continue
        spec = tool["function"] if isinstance(tool.get("function"), dict) else tool
        name, params = spec.get("name"), spec.get("parameters")
        if not (isinstance(name, str) and isinstance(params, dict) and isinstance(params.get("properties"), dict)):
            continue
        typed = {key: frozenset(_schema_types(schema)) for key, schema in params["properties"].items()}
        table[name] = {key: types for key, types in typed.items() if types - {"string"}}
    return table


_INT_RE = re.compile(r"[-+]?\d+")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _structured(text: str) -> Any:
    try:
        return JSON.decode(text)  # first: JSON understands true/false/null (vLLM test_qwen36_bugs BUG 1)
    except (ValueError, RecursionError):
        pass
    try:
        return jsonable(ast.literal_eval(text))
    except Exception:
        return None


def _coerce(value: str, types: frozenset[str]) -> Any:
    """An XML parameter value typed by its schema; a value that does not fit stays a string (mlx-lm #1310)."""
    text = value.strip()
    if text in ("null", "None"):
        return None
    if "integer" in types and _INT_RE.fullmatch(text):
        return int(text)
    if "number" in types and _NUMBER_RE.fullmatch(text):
        return int(text) if _INT_RE.fullmatch(text) else float(text)
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "object" in types or "array" in types:
        parsed = _structured(text)
        if ("object" in types and isinstance(parsed, dict)) or ("array" in types and isinstance(parsed, list)):
            return parsed
    return value


def _trim_newlines(value: str) -> str:
    """Remove exactly one leading and one trailing newline (the template's own line breaks)."""
    if value.startswith("\n"):
        value = value[1:]
    elif value.startswith("\r\n"):
        value = value[2:]
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith("\n"):
        return value[:-1]
    return value


# A parse step answers: None = the text so far cannot settle it; str = why it is invalid; else the result.
_XmlCall = Union[None, str, tuple[Call, int]]

_VALUE_FOLLOWERS = (PARAM_OPEN, FUNC_CLOSE, TOOL_CLOSE)

# The common parameter in one regex: value up to the first </parameter> that a follower makes structural. It
# agrees with _value_span whenever it matches and the value holds no line-start <parameter= (checked by caller).
_PARAM_FAST_RE = re.compile(
    r"""<parameter=([^{}<>"'\s]+)>(.*?)</parameter>\s*(?=<parameter=|</function>|</tool_call>)""", re.S
)
_DROPPED_CLOSE = "\n" + PARAM_OPEN


def _value_span(text: str, v: int, final: bool) -> None | str | tuple[int, int]:
    """(value end, resume index) of a parameter value starting at ``v``.

    A ``</parameter>`` ends the value only if ``<parameter=``, ``</function>``, ``</tool_call>`` or the end of
    output follows, so values may quote the tag (Rapid-MLX #1515); a line-start ``<parameter=`` ends a value whose
    close tag was dropped.
    """
    n = len(text)
    dropped = text.find(_DROPPED_CLOSE, v)
    close = text.find(PARAM_CLOSE, v)
    while close >= 0 and (dropped < 0 or close < dropped):
        after = WS_RE.match(text, close + len(PARAM_CLOSE)).end()
        if after == n:
            return (close, after) if final else None
        follower = match_token(text, after, _VALUE_FOLLOWERS, final)
        if follower is None:
            return None
        if follower:
            return close, close + len(PARAM_CLOSE)
        close = text.find(PARAM_CLOSE, close + 1)
    if dropped >= 0:
        return dropped + 1, dropped + 1
    return "output ended inside a parameter value" if final else None


def _xml_json_arguments(text: str, p: int, name: str, closers: tuple[str, ...], final: bool) -> _XmlCall:
    """``<function=NAME>{json}</function>`` (the llama.cpp Hermes 2 Pro variant)."""
    try:
        arguments, end = JSON.raw_decode(text, p)
    except json.JSONDecodeError as err:
        if not final and not json_settled(err, len(text)):
            return None
        return f"invalid JSON arguments: {err.msg}"
    except (ValueError, RecursionError) as err:
        return f"invalid JSON arguments: {err}"
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {type_name(arguments)}"
    q = WS_RE.match(text, end).end()
    tok = match_token(text, q, closers, final)
    if tok is None:
        return None
    if not tok:
        return "expected </function> after the JSON arguments"
    return (name, arguments), (q + len(FUNC_CLOSE) if tok == FUNC_CLOSE else q)


def parse_xml_call(text: str, x: int, final: bool, types: TypeTable, in_block: bool) -> _XmlCall:
    """The Qwen3-Coder call at ``text[x:]`` (which starts with ``<function=``) and the index after it.

    Inside a block ``</tool_call>`` may stand in for ``</function>`` (it is left for the block to consume); a bare
    call outside a block must be complete with its ``</function>``.
    """
    n = len(text)
    start = x + len(FUNC_OPEN)
    q = NAME_RE.match(text, start).end()
    if q == n:
        return "output ended inside <function=...>" if final else None
    if q == start or text[q] != ">":
        return "invalid function name in <function=...>"
    name = text[start:q]
    closers = (FUNC_CLOSE, TOOL_CLOSE) if in_block else (FUNC_CLOSE,)
    p = WS_RE.match(text, q + 1).end()
    if p < n and text[p] == "{":
        return _xml_json_arguments(text, p, name, closers, final)
    typed = types.get(name, {})
    arguments: dict[str, Any] = {}
    while True:
        fast = _PARAM_FAST_RE.match(text, p)
        if fast is not None and _DROPPED_CLOSE not in fast.group(2):
            key, value = fast.group(1, 2)
            value = _trim_newlines(value)
            arguments[key] = _coerce(value, typed[key]) if key in typed else value
            p = fast.end()
            continue
        tok = match_token(text, p, (PARAM_OPEN, *closers), final)
        if tok is None:
            return None
        if tok == FUNC_CLOSE:
            return (name, arguments), p + len(FUNC_CLOSE)
        if tok == TOOL_CLOSE:
            return (name, arguments), p
        if not tok:
            return "output ended before </function>" if p == n else f"unexpected text in <function={name}>"
        key_start = p + len(PARAM_OPEN)
        key_end = NAME_RE.match(text, key_start).end()
        if key_end == n:
            return "output ended inside <parameter=...>" if final else None
        if key_end == key_start or text[key_end] != ">":
            return f"invalid parameter name in <function={name}>"
        span = _value_span(text, key_end + 1, final)
        if span is None or isinstance(span, str):
            return span
        value_end, p = span
        key = text[key_start:key_end]
        value = _trim_newlines(text[key_end + 1 : value_end])
        arguments[key] = _coerce(value, typed[key]) if key in typed else value
        p = WS_RE.match(text, p).end()
