"""Resolving a ``<tool_call>`` block or a bare ``<function=…>`` call into calls, or into why it is none (pure).

Every resolver decides from the text it is given (``final`` means no more text will come) and keeps no state; it
answers None while the text so far cannot settle the block, and once it answers, more text never changes it.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Union

from .calls import JSON, Call, calls_from_values, json_settled, literal_values
from .markup import (
    FENCE,
    FENCE_LINE_PREFIX_RE,
    FENCE_LINE_RE,
    FENCE_OPEN_PREFIX_RE,
    FENCE_OPEN_RE,
    FUNC_OPEN,
    POST_RE,
    TOOL_CLOSE,
    TOOL_OPEN,
    WS_RE,
    match_token,
)
from .xml_calls import TypeTable, parse_xml_call

# How a block (or bare call) resolved: (index where scanning resumes, its calls or None if invalid, why invalid).
# Resolvers return None instead while the text so far cannot settle it.
Outcome = tuple[int, Union[list[Call], None], str]


# A resolver: (text from the block's start, body offset, final, types) -> outcome, or None if not yet settled.
Resolver = Callable[[str, int, bool, TypeTable], Union[Outcome, None]]


def block_body(text: str, i: int, final: bool) -> int | None:
    """Index of the body of the ``<tool_call>`` at ``i``; -1 if the tag is plain text; None if undecidable yet."""
    n = len(text)
    p = WS_RE.match(text, i + len(TOOL_OPEN)).end()
    if p < n and text[p] == "`":
        fence = FENCE_LINE_RE.match(text, p)
        if fence is None:
            return None if not final and FENCE_LINE_PREFIX_RE.fullmatch(text, p) else -1
        p = WS_RE.match(text, fence.end()).end()
    if p == n:
        return -1 if final else None
    if text[p] in "{[":
        return p
    tok = match_token(text, p, (FUNC_OPEN,), final)
    if tok is None:
        return None
    return p if tok else -1


def fence_body(text: str, i: int, final: bool) -> int | None:
    """Index of the ``<tool_call>`` after the fence line at ``i``; -1 if the fence is plain text; None if undecidable.

    A fence line followed by a block opens a group that may hold only blocks (policy 6).
    """
    fence = FENCE_OPEN_RE.match(text, i)
    if fence is None:
        return None if not final and FENCE_OPEN_PREFIX_RE.fullmatch(text, i) else -1
    tok = match_token(text, fence.end(), (TOOL_OPEN,), final)
    if tok is None:
        return None
    return fence.end() if tok else -1


def _block_end(text: str, p: int, final: bool) -> int | None:
    """After a body that parsed: index past the block's end; -1 if other text follows; None if undecidable yet."""
    q = POST_RE.match(text, p).end()
    if text.startswith(TOOL_CLOSE, q):
        return q + len(TOOL_CLOSE)
    if q == len(text):
        return q if final else None
    tok = match_token(text, q, (TOOL_OPEN, TOOL_CLOSE, FENCE), final)
    if tok is None:
        return None
    return q if tok == TOOL_OPEN else -1  # the next block closes this one implicitly


def _first_terminator(text: str, p: int) -> tuple[int, int]:
    """(index, end) of the first ``</tool_call>`` or ``<tool_call>`` from ``p``; (-1, -1) if none."""
    close, opener = text.find(TOOL_CLOSE, p), text.find(TOOL_OPEN, p)
    if close >= 0 and (opener < 0 or close < opener):
        return close, close + len(TOOL_CLOSE)
    return opener, opener


def _invalid_block(text: str, body: int, final: bool, why: str, lenient: bool) -> Outcome | None:
    """A body that did not parse: it spans to its first ``</tool_call>``, the next ``<tool_call>`` or the end."""
    term, end = _first_terminator(text, body)
    if term < 0:
        if not final:
            return None
        term = end = len(text)
        why = f"output ended inside the block ({why})"
    if lenient:
        values = literal_values(text[body:term])
        if values is not None:
            calls, literal_why = calls_from_values(values)
            return end, calls, literal_why
    return end, None, why


def resolve_json_block(text: str, body: int, final: bool, types: TypeTable) -> Outcome | None:
    """Policy 3: consecutive JSON values, then only whitespace / a closing fence before the block's end.

    ``text`` starts at the block's ``<tool_call>``, so error positions are relative to it.
    """
    n = len(text)
    values: list[Any] = []
    p = body
    scan = JSON.scan_once  # raw_decode minus a layer of calls; the StopIteration below is its "Expecting value"
    while True:
        try:
            try:
                value, p = scan(text, p)
            except StopIteration as stop:
                raise json.JSONDecodeError("Expecting value", text, stop.value) from None
        except json.JSONDecodeError as err:
            if not final and not json_settled(err, n):
                return None
            return _invalid_block(text, body, final, f"invalid JSON at char {err.pos}: {err.msg}", True)
        except (ValueError, RecursionError) as err:  # a 5000-digit number, absurd nesting
            return _invalid_block(text, body, final, f"invalid JSON: {err}", True)
        values.append(value)
        p = WS_RE.match(text, p).end()
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
    calls, why = calls_from_values(values)
    return end, calls, why


def resolve_xml_block(text: str, body: int, final: bool, types: TypeTable) -> Outcome | None:
    """Policy 8: one or more ``<function=…>`` calls, then the block's end."""
    calls: list[Call] = []
    p = body
    while True:
        parsed = parse_xml_call(text, p, final, types, in_block=True)
        if parsed is None:
            return None
        if isinstance(parsed, str):
            return _invalid_block(text, body, final, parsed, False)
        call, p = parsed
        calls.append(call)
        q = WS_RE.match(text, p).end()
        tok = match_token(text, q, (FUNC_OPEN,), final)
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


def resolve_bare(text: str, body: int, final: bool, types: TypeTable) -> Outcome | None:
    """A bare ``<function=…>…</function>`` outside a block (``text`` starts at it)."""
    parsed = parse_xml_call(text, 0, final, types, in_block=False)
    if parsed is None:
        return None
    if isinstance(parsed, str):
        return 0, None, parsed
    call, end = parsed
    return end, [call], ""
