"""Call objects from decoded JSON or Python literals: the lenient JSON decoder, the arguments policy (pure)."""

from __future__ import annotations

import ast
import json
from typing import Any

from .markup import FENCE

# A call as the parsing functions find it, (name, arguments); the parser gives it an id when it is final.
Call = tuple[str, dict[str, Any]]

# strict=False: raw control characters inside strings are common in model output (report 4E).
JSON = json.JSONDecoder(strict=False)

# A JSON error this far before the end of the text cannot be undone by more text: the decoder looks at most
# ~9 characters past an error (``-Infinity``); only an unterminated string points further back, and its
# message says so.
JSON_LOOKAHEAD = 16


def json_settled(err: json.JSONDecodeError, n: int) -> bool:
    """Whether a decode error on the first ``n`` characters stays an error whatever text follows."""
    return not err.msg.startswith("Unterminated string") and err.pos < n - JSON_LOOKAHEAD


def type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


class _NotJson(ValueError):
    pass


def jsonable(value: Any) -> Any:
    """A Python literal as JSON data (tuples become lists); raises _NotJson for sets, bytes, complex..."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: jsonable(item) for key, item in value.items()}
    raise _NotJson(type(value).__name__)


def literal_values(body: str) -> list[Any] | None:
    """Policy 3 fallback: the body as one Python literal (single quotes, trailing commas), or None."""
    text = body.strip()
    if text.endswith(FENCE):
        text = text[:-3].rstrip()
    if not text or text[0] not in "{[":
        return None
    try:
        return [jsonable(ast.literal_eval(text))]
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
            raw = JSON.decode(raw)
        except json.JSONDecodeError as err:
            return None, f'"arguments" is a string that is not a JSON object ({err.msg})'
        except (ValueError, RecursionError) as err:
            return None, f'"arguments" is a string that is not a JSON object ({err})'
    return None, f'"arguments" must be an object, got {type_name(raw)}'


def _call_from_object(obj: Any) -> tuple[Call | None, str]:
    if not isinstance(obj, dict):
        return None, f"expected a call object, got {type_name(obj)}"
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


def calls_from_values(values: list[Any]) -> tuple[list[Call] | None, str]:
    """Decoded block values as calls: an array means several calls, all of which must be valid."""
    items: list[Any] = []
    for value in values:
        if isinstance(value, list):
            if not value:
                return None, "empty array of calls"
            items.extend(value)
        else:
            items.append(value)
    calls: list[Call] = []
    for number, item in enumerate(items, 1):
        call, why = _call_from_object(item)
        if call is None:
            return None, why if len(items) == 1 else f"call {number} of {len(items)}: {why}"
        calls.append(call)
    return calls, ""
