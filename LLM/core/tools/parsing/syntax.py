"""The grammar of tool-call markup: tags, call objects, typed XML values, block resolution (pure).

Used by the stream engine in ``toolcalls.py``; every function here decides from the text it is
given (``final`` means no more text will come) and never keeps state.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Callable, Union


# --------------------------------------------------------------------------------------------------- lexicon

_TOOL_OPEN = "<tool_call>"
_TOOL_CLOSE = "</tool_call>"
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
_FUNC_OPEN = "<function="
_FUNC_CLOSE = "</function>"
_PARAM_OPEN = "<parameter="
_PARAM_CLOSE = "</parameter>"
_FENCE = "```"

# Every tag that can end an open block ends with "tool_call>" (a bare call: "function>"), so while streaming only
# their arrival is worth another look at the block.
_BLOCK_TRIGGER = "tool_call>"
_BARE_TRIGGER = "function>"

# Markup that content scanning stops at, besides ``` (found with str.find). The "block" branch is the usual opener
# of a real block, recognised in one step; anything else starting with <tool_call> goes through _block_body. All
# branches start with "<", which lets the regex engine skip to the next "<" quickly.
_MARK_RE = re.compile(
    r"<(?:(?P<block>tool_call>\s*(?:```[\w+\-.]*[ \t]*\r?\n\s*)?(?=[{\[]|<function=))"
    r"|tool_call>|think>|/think>|function=)"
)
_FENCE_RE = re.compile(re.escape("```"))
_WS_RE = re.compile(r"\s*")
_POST_RE = re.compile(r"\s*(?:```\s*)?")  # after a block's body: whitespace and an optional closing fence
_FENCE_LINE_RE = re.compile(r"```[\w+\-.]*[ \t]*\r?\n")
_FENCE_LINE_PREFIX_RE = re.compile(r"`{1,2}|```[\w+\-.]*[ \t]*\r?")
_FENCE_OPEN_RE = re.compile(r"```[\w+\-.]*[ \t]*\r?\n\s*")
_FENCE_OPEN_PREFIX_RE = re.compile(r"```[\w+\-.]*[ \t]*\r?")
_NAME_RE = re.compile(r"""[^{}<>"'\s]*""")  # vLLM _is_valid_function_name: rejects an unrendered {{ tc.name }}

_VALUE_FOLLOWERS = (_PARAM_OPEN, _FUNC_CLOSE, _TOOL_CLOSE)

# strict=False: raw control characters inside strings are common in model output (report 4E).
_JSON = json.JSONDecoder(strict=False)

# A JSON error this far before the end of the text cannot be undone by more text: the decoder looks at most
# ~9 characters past an error (``-Infinity``); only an unterminated string points further back, and its
# message says so.
_JSON_LOOKAHEAD = 16


def _proper_prefixes(*tokens: str) -> frozenset[str]:
    return frozenset(tok[:k] for tok in tokens for k in range(1, len(tok)))


_CONTENT_PREFIXES = _proper_prefixes(_TOOL_OPEN, _THINK_OPEN, _THINK_CLOSE, _FUNC_OPEN, _FENCE)
_REASONING_PREFIXES = _proper_prefixes(_THINK_CLOSE)
_LONGEST_PREFIX = max(map(len, _CONTENT_PREFIXES))


def _held_suffix(buf: str, start: int, prefixes: frozenset[str]) -> int:
    """Length of the longest tail of ``buf[start:]`` that may still grow into a tag (held back while streaming)."""
    n = len(buf)
    for j in range(max(start, n - _LONGEST_PREFIX), n):
        if buf[j] in "<`" and buf[j:] in prefixes:
            return n - j
    return 0


def _match_token(text: str, p: int, tokens: tuple[str, ...], final: bool) -> str | None:
    """The token of ``tokens`` at ``text[p:]``; "" if none can be there; None if the text ends too early to say."""
    for tok in tokens:
        if text.startswith(tok, p):
            return tok
    if not final:
        rest = text[p : p + 16]
        for tok in tokens:
            if len(rest) < len(tok) and tok.startswith(rest):
                return None
    return ""


def _may_end_here(before: str) -> bool:
    """Whether a closing tag after ``before`` may end a block: a body ends in } ] > or a closing fence."""
    before = before[:-2] if before.endswith("</") else before[:-1]
    before = before.rstrip()
    if before.endswith(_FENCE):
        before = before[:-3].rstrip()
    return not before or before[-1] in "}]>"


def _json_settled(err: json.JSONDecodeError, n: int) -> bool:
    """Whether a decode error on the first ``n`` characters stays an error whatever text follows."""
    return not err.msg.startswith("Unterminated string") and err.pos < n - _JSON_LOOKAHEAD


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


# --------------------------------------------------------------------------------------------------- call objects


# A call as the parsing functions find it, (name, arguments); the parser gives it an id when it is final.
_Call = tuple[str, dict[str, Any]]


class _NotJson(ValueError):
    pass


def _jsonable(value: Any) -> Any:
    """A Python literal as JSON data (tuples become lists); raises _NotJson for sets, bytes, complex..."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _jsonable(item) for key, item in value.items()}
    raise _NotJson(type(value).__name__)


def _literal_values(body: str) -> list[Any] | None:
    """Policy 3 fallback: the body as one Python literal (single quotes, trailing commas), or None."""
    text = body.strip()
    if text.endswith(_FENCE):
        text = text[:-3].rstrip()
    if not text or text[0] not in "{[":
        return None
    try:
        return [_jsonable(ast.literal_eval(text))]
    except Exception:  # literal_eval raises most exception types on hostile input; all mean "not a literal"
        return None


def _arguments(raw: Any) -> tuple[dict[str, Any] | None, str]:
    """Policy 4: null/"" -> {}, a string is decoded up to 3 times, anything but an object is invalid."""
    for _ in range(4):
        if raw is None or raw == "":
            return {}, ""
        if isinstance(raw, dict):
            return raw, ""
        if not isinstance(raw, str):
            break
        try:
            raw = _JSON.decode(raw)
        except json.JSONDecodeError as err:
            return None, f'"arguments" is a string that is not a JSON object ({err.msg})'
        except (ValueError, RecursionError) as err:
            return None, f'"arguments" is a string that is not a JSON object ({err})'
    return None, f'"arguments" must be an object, got {_type_name(raw)}'


def _call_from_object(obj: Any) -> tuple[_Call | None, str]:
    if not isinstance(obj, dict):
        return None, f"expected a call object, got {_type_name(obj)}"
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None, 'missing or empty "name"'
    raw = obj.get("arguments")
    if raw is None:
        raw = obj.get("parameters")
    arguments, why = _arguments(raw)
    if arguments is None:
        return None, why
    return (name, arguments), ""


def _calls_from_values(values: list[Any]) -> tuple[list[_Call] | None, str]:
    """Decoded block values as calls: an array means several calls, all of which must be valid."""
    items: list[Any] = []
    for value in values:
        if isinstance(value, list):
            if not value:
                return None, "empty array of calls"
            items.extend(value)
        else:
            items.append(value)
    calls: list[_Call] = []
    for number, item in enumerate(items, 1):
        call, why = _call_from_object(item)
        if call is None:
            return None, why if len(items) == 1 else f"call {number} of {len(items)}: {why}"
        calls.append(call)
    return calls, ""


# --------------------------------------------------------------------------------------------------- XML values

# Schema types per tool and parameter, precomputed once per parser; only parameters with a non-string type are
# listed, since every other value stays the raw string.
_TypeTable = dict[str, dict[str, frozenset[str]]]


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


def _type_table(tools: list[dict[str, Any]] | None) -> _TypeTable:
    """Tool name -> parameter -> JSON-schema types; accepts OpenAI entries and bare ``{name, parameters}``."""
    table: _TypeTable = {}
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
        return _JSON.decode(text)  # first: JSON understands true/false/null (vLLM test_qwen36_bugs BUG 1)
    except (ValueError, RecursionError):
        pass
    try:
        return _jsonable(ast.literal_eval(text))
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
_XmlCall = Union[None, str, tuple[_Call, int]]

# The common parameter in one regex: value up to the first </parameter> that a follower makes structural. It
# agrees with _value_span whenever it matches and the value holds no line-start <parameter= (checked by caller).
_PARAM_FAST_RE = re.compile(
    r"""<parameter=([^{}<>"'\s]+)>(.*?)</parameter>\s*(?=<parameter=|</function>|</tool_call>)""", re.S
)
_DROPPED_CLOSE = "\n" + _PARAM_OPEN


def _value_span(text: str, v: int, final: bool) -> None | str | tuple[int, int]:
    """(value end, resume index) of a parameter value starting at ``v``.

    A ``</parameter>`` ends the value only if ``<parameter=``, ``</function>``, ``</tool_call>`` or the end of
    output follows, so values may quote the tag (Rapid-MLX #1515); a line-start ``<parameter=`` ends a value whose
    close tag was dropped.
    """
    n = len(text)
    dropped = text.find(_DROPPED_CLOSE, v)
    close = text.find(_PARAM_CLOSE, v)
    while close >= 0 and (dropped < 0 or close < dropped):
        after = _WS_RE.match(text, close + len(_PARAM_CLOSE)).end()
        if after == n:
            return (close, after) if final else None
        follower = _match_token(text, after, _VALUE_FOLLOWERS, final)
        if follower is None:
            return None
        if follower:
            return close, close + len(_PARAM_CLOSE)
        close = text.find(_PARAM_CLOSE, close + 1)
    if dropped >= 0:
        return dropped + 1, dropped + 1
    return "output ended inside a parameter value" if final else None


def _xml_json_arguments(text: str, p: int, name: str, closers: tuple[str, ...], final: bool) -> _XmlCall:
    """``<function=NAME>{json}</function>`` (the llama.cpp Hermes 2 Pro variant)."""
    try:
        arguments, end = _JSON.raw_decode(text, p)
    except json.JSONDecodeError as err:
        if not final and not _json_settled(err, len(text)):
            return None
        return f"invalid JSON arguments: {err.msg}"
    except (ValueError, RecursionError) as err:
        return f"invalid JSON arguments: {err}"
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {_type_name(arguments)}"
    q = _WS_RE.match(text, end).end()
    tok = _match_token(text, q, closers, final)
    if tok is None:
        return None
    if not tok:
        return "expected </function> after the JSON arguments"
    return (name, arguments), (q + len(_FUNC_CLOSE) if tok == _FUNC_CLOSE else q)


def _parse_xml_call(text: str, x: int, final: bool, types: _TypeTable, in_block: bool) -> _XmlCall:
    """The Qwen3-Coder call at ``text[x:]`` (which starts with ``<function=``) and the index after it.

    Inside a block ``</tool_call>`` may stand in for ``</function>`` (it is left for the block to consume); a bare
    call outside a block must be complete with its ``</function>``.
    """
    n = len(text)
    start = x + len(_FUNC_OPEN)
    q = _NAME_RE.match(text, start).end()
    if q == n:
        return "output ended inside <function=...>" if final else None
    if q == start or text[q] != ">":
        return "invalid function name in <function=...>"
    name = text[start:q]
    closers = (_FUNC_CLOSE, _TOOL_CLOSE) if in_block else (_FUNC_CLOSE,)
    p = _WS_RE.match(text, q + 1).end()
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
        tok = _match_token(text, p, (_PARAM_OPEN, *closers), final)
        if tok is None:
            return None
        if tok == _FUNC_CLOSE:
            return (name, arguments), p + len(_FUNC_CLOSE)
        if tok == _TOOL_CLOSE:
            return (name, arguments), p
        if not tok:
            return "output ended before </function>" if p == n else f"unexpected text in <function={name}>"
        key_start = p + len(_PARAM_OPEN)
        key_end = _NAME_RE.match(text, key_start).end()
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
        p = _WS_RE.match(text, p).end()


# --------------------------------------------------------------------------------------------------- blocks

# How a block (or bare call) resolved: (index where scanning resumes, its calls or None if invalid, why invalid).
# Resolvers return None instead while the text so far cannot settle it.
_Outcome = tuple[int, Union[list[_Call], None], str]


# A resolver: (text from the block's start, body offset, final, types) -> outcome, or None if not yet settled.
_Resolver = Callable[[str, int, bool, _TypeTable], Union[_Outcome, None]]


def _block_body(text: str, i: int, final: bool) -> int | None:
    """Index of the body of the ``<tool_call>`` at ``i``; -1 if the tag is plain text; None if undecidable yet."""
    n = len(text)
    p = _WS_RE.match(text, i + len(_TOOL_OPEN)).end()
    if p < n and text[p] == "`":
        fence = _FENCE_LINE_RE.match(text, p)
        if fence is None:
            return None if not final and _FENCE_LINE_PREFIX_RE.fullmatch(text, p) else -1
        p = _WS_RE.match(text, fence.end()).end()
    if p == n:
        return -1 if final else None
    if text[p] in "{[":
        return p
    tok = _match_token(text, p, (_FUNC_OPEN,), final)
    if tok is None:
        return None
    return p if tok else -1


def _block_end(text: str, p: int, final: bool) -> int | None:
    """After a body that parsed: index past the block's end; -1 if other text follows; None if undecidable yet."""
    q = _POST_RE.match(text, p).end()
    if text.startswith(_TOOL_CLOSE, q):
        return q + len(_TOOL_CLOSE)
    if q == len(text):
        return q if final else None
    tok = _match_token(text, q, (_TOOL_OPEN, _TOOL_CLOSE, _FENCE), final)
    if tok is None:
        return None
    return q if tok == _TOOL_OPEN else -1  # the next block closes this one implicitly


def _first_terminator(text: str, p: int) -> tuple[int, int]:
    """(index, end) of the first ``</tool_call>`` or ``<tool_call>`` from ``p``; (-1, -1) if none."""
    close, opener = text.find(_TOOL_CLOSE, p), text.find(_TOOL_OPEN, p)
    if close >= 0 and (opener < 0 or close < opener):
        return close, close + len(_TOOL_CLOSE)
    return opener, opener


def _invalid_block(text: str, body: int, final: bool, why: str, lenient: bool) -> _Outcome | None:
    """A body that did not parse: it spans to its first ``</tool_call>``, the next ``<tool_call>`` or the end."""
    term, end = _first_terminator(text, body)
    if term < 0:
        if not final:
            return None
        term = end = len(text)
        why = f"output ended inside the block ({why})"
    if lenient:
        values = _literal_values(text[body:term])
        if values is not None:
            calls, literal_why = _calls_from_values(values)
            return end, calls, literal_why
    return end, None, why


def _resolve_json_block(text: str, body: int, final: bool, types: _TypeTable) -> _Outcome | None:
    """Policy 3: consecutive JSON values, then only whitespace / a closing fence before the block's end.

    ``text`` starts at the block's ``<tool_call>``, so error positions are relative to it.
    """
    n = len(text)
    values: list[Any] = []
    p = body
    scan = _JSON.scan_once  # raw_decode minus a layer of calls; the StopIteration below is its "Expecting value"
    while True:
        try:
            try:
                value, p = scan(text, p)
            except StopIteration as stop:
                raise json.JSONDecodeError("Expecting value", text, stop.value) from None
        except json.JSONDecodeError as err:
            if not final and not _json_settled(err, n):
                return None
            return _invalid_block(text, body, final, f"invalid JSON at char {err.pos}: {err.msg}", True)
        except (ValueError, RecursionError) as err:  # a 5000-digit number, absurd nesting
            return _invalid_block(text, body, final, f"invalid JSON: {err}", True)
        values.append(value)
        p = _WS_RE.match(text, p).end()
        if p == n or text[p] not in "{[":
            break
    end = _block_end(text, p, final)
    if end is None:
        return None
    if end < 0:
        return _invalid_block(text, body, final, f"unexpected text after the JSON at char {p}", True)
    first = values[0]
    if len(values) == 1 and type(first) is dict:  # the usual {"name": ..., "arguments": {...}}, checked directly
        name, arguments = first.get("name"), first.get("arguments")
        if type(name) is str and name.strip() and type(arguments) is dict:
            return end, [(name, arguments)], ""
    calls, why = _calls_from_values(values)
    return end, calls, why


def _resolve_xml_block(text: str, body: int, final: bool, types: _TypeTable) -> _Outcome | None:
    """Policy 8: one or more ``<function=…>`` calls, then the block's end."""
    calls: list[_Call] = []
    p = body
    while True:
        parsed = _parse_xml_call(text, p, final, types, in_block=True)
        if parsed is None:
            return None
        if isinstance(parsed, str):
            return _invalid_block(text, body, final, parsed, False)
        call, p = parsed
        calls.append(call)
        q = _WS_RE.match(text, p).end()
        tok = _match_token(text, q, (_FUNC_OPEN,), final)
        if tok is None:
            return None
        if not tok:
            break
        p = q
    end = _block_end(text, p, final)
    if end is None:
        return None
    if end < 0:
        return _invalid_block(text, body, final, f"unexpected text after </function> at char {p}", False)
    return end, calls, ""


def _resolve_bare(text: str, body: int, final: bool, types: _TypeTable) -> _Outcome | None:
    """A bare ``<function=…>…</function>`` outside a block (``text`` starts at it)."""
    parsed = _parse_xml_call(text, 0, final, types, in_block=False)
    if parsed is None:
        return None
    if isinstance(parsed, str):
        return 0, None, parsed
    call, end = parsed
    return end, [call], ""
