"""A GBNF grammar that admits only ``<tool_call>`` blocks whose arguments satisfy the tools' JSON schemas (pure).

Sent as llama-server's per-request ``grammar`` when a call is forced (``tool_choice`` required or a
named tool) in fallback mode, so even a model whose template knows nothing of tools emits a call
that parses and validates. The block layout is fixed (one space, one newline), which small models
follow more easily than free whitespace. Schema support: object (properties, required), string
(enum, const), integer, number, boolean, null, array (items, minItems, maxItems), anyOf / oneOf,
type lists; anything else is any JSON value of the right shape.

With ``max_tokens``, every call the grammar admits can close within it (a call cut off by max_tokens
is no call at all). What the model writes freely is bounded by what the budget leaves after a call's
fixed text: strings (below their maxLength too) and numbers' digits share a tool's rest equally;
arrays without maxItems and free-form JSON hold a few items, fewer before strings get shorter than
USEFUL_STRING_CHARS; optional members are left out, the last first, only where a call cannot fit
otherwise. Several calls share the budget equally, and fewer are allowed where a share would leave
strings shorter than USEFUL_STRING_CHARS. Tokens are estimated from characters:

* text the grammar fixes (markup, names, keys, punctuation, literals): FIXED_CHARS_PER_TOKEN (1.75)
  characters a token. Measured with the default model (SmolLM2-135M) on llama-server, the tokens it
  generated under this grammar for each built-in tool with empty strings, 20 runs each: the
  calculator's 80 characters took 27 tokens as /tokenize splits them, 28-34 generated at temperature
  0.2 (2.35 characters a token at worst) and 28-36 at 1.0 (2.2); the worst of all the tools was 1.87
  (get_current_time at 1.0). Hotter sampling splits the text more; near temperature 2 it may take a
  token a character, which no estimate short of one a byte covers.
* what the model writes freely (string characters, digits): a token a character, the most a
  byte-level vocabulary spends on ASCII (every token is at least a byte; SmolLM2 writes digits one
  token each). Escapes and non-ASCII text can take more (``\\u00e9`` is 6 tokens), which the margin
  in the fixed text's estimate absorbs only in part.
* one token for the end of generation.

So max_tokens 64 holds one calculator call with an expression of up to 17 characters, 256 three of 38.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_CALLS = 3  # a forced step may make several calls, but not repeat them until max_tokens
# A string without maxLength is capped: a small model that loses its way inside a string would otherwise
# fill max_tokens and the call would never close. string_cap_note says which strings, so the user is told.
MAX_STRING_CHARS = 200
FIXED_CHARS_PER_TOKEN = 1.75  # see the module docstring for the measurement
END_TOKENS = 1  # the end-of-generation token counts against max_tokens too
MAX_ITEMS = 8  # with a budget: the most items of an array without maxItems, or of free-form JSON
# With a budget, several calls (or more array items) only while each string keeps this many characters.
USEFUL_STRING_CHARS = 32

_DIGITS = 16  # the integer rule's most digits, and a fraction's
_ITEM_LEVELS = (MAX_ITEMS, 4, 2, 1)  # tried in turn until strings keep a useful length; then none

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
    tools: list[dict[str, Any]], *, max_calls: int = MAX_CALLS, max_string_chars: int = MAX_STRING_CHARS,
    max_tokens: int | None = None,
) -> str:
    """Grammar for 1..max_calls ``<tool_call>`` blocks calling any of ``tools`` (OpenAI tool entries), each able
    to close within ``max_tokens`` when given (ValueError where not even one call can: see min_call_tokens)."""
    fit = _fit(tools, max_calls, max_string_chars, max_tokens)
    builder, calls = _build(tools, fit)
    builder.add("call", " | ".join(calls))
    more = f' ( "\\n" call ){{0,{fit.calls - 1}}}' if fit.calls > 1 else ""
    return f"root ::= call{more}\n" + "\n".join(builder.rules) + "\n" + _BASE_RULES + "\n"


def string_cap_note(
    tools: list[dict[str, Any]], *, max_calls: int = MAX_CALLS, max_string_chars: int = MAX_STRING_CHARS,
    max_tokens: int | None = None,
) -> str:
    """What the grammar for ``tools`` holds a call to beyond their schemas, for the user to see: the strings it
    caps and at how many characters; with a budget also the digits, items and optional members it gives up and
    whether it allows fewer calls. "" when it holds them to nothing more."""
    fit = _fit(tools, max_calls, max_string_chars, max_tokens)
    builder = _build(tools, fit)[0]
    plain = _build(tools, _fit(tools, max_calls, max_string_chars, None))[0]
    left_out = [path for size in fit.sizes for path in size.left_out]
    if fit.max_tokens is None or (builder.capped == plain.capped and not (builder.digits or builder.bounded)
                                  and not left_out and fit.calls == max_calls):
        return f"forced call: strings without maxLength capped {_caps(plain.capped)}" if plain.capped else ""
    parts = [f"strings capped {_caps(builder.capped)}"] if builder.capped else []
    if builder.digits:
        parts.append(f"numbers capped {_caps(builder.digits, 'digits')}")
    if builder.bounded:
        parts.append(f"arrays and free-form JSON bounded {_caps(builder.bounded, 'items')}")
    if left_out:
        parts.append(f"optional members left out ({_paths(sorted(left_out))})")
    if fit.calls < max_calls:
        parts.append(f"at most {fit.calls} call{'s' if fit.calls > 1 else ''} (not {max_calls})")
    return f"forced call, to fit max_tokens {fit.max_tokens}: " + "; ".join(parts)


def min_call_tokens(tools: list[dict[str, Any]]) -> int:
    """The smallest max_tokens with which a grammar can let a call of any of ``tools`` close (1-character
    strings and numbers, no items, no optional members): below it, tool_call_grammar has no grammar to give."""
    def least(function: dict[str, Any]) -> float:
        return _cost(function, _Size(1, 0, frozenset(_optional(function))))

    return max(math.ceil(least(function) - _ROUNDING) for function in _functions(tools)) + END_TOKENS


_NOTE_PATHS = 6


def _paths(paths: list[str]) -> str:
    more = f" and {len(paths) - _NOTE_PATHS} more" if len(paths) > _NOTE_PATHS else ""
    return ", ".join(paths[:_NOTE_PATHS]) + more


def _caps(caps: dict[str, int], unit: str = "characters") -> str:
    """``at 23 characters (a.x, b.y), at 5 characters (c.z)``: the paths grouped by their bound."""
    groups: dict[int, list[str]] = {}
    for path, cap in caps.items():
        groups.setdefault(cap, []).append(path)
    return ", ".join(f"at {cap} {unit if cap != 1 else unit[:-1]} ({_paths(paths)})" for cap, paths in groups.items())


@dataclass(frozen=True)
class _Size:
    """What one tool's calls may hold."""

    chars: int = MAX_STRING_CHARS  # a string's most characters (and, with a budget, a number's most digits)
    items: int | None = None  # with a budget: an open array's or free-form JSON's most items (None: no budget)
    left_out: frozenset[str] = field(default_factory=frozenset)  # optional members the grammar leaves out


@dataclass(frozen=True)
class _Fit:
    """How a grammar fits a budget: how many calls, and what each tool's calls may hold."""

    calls: int
    sizes: list[_Size]
    max_tokens: int | None


def _functions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not tools:
        raise ValueError("a tool-call grammar needs at least one tool")
    return [tool.get("function", tool) for tool in tools]


def _fit(tools: list[dict[str, Any]], max_calls: int, max_chars: int, max_tokens: int | None) -> _Fit:
    functions = _functions(tools)
    if max_tokens is None:
        return _Fit(max_calls, [_Size(max_chars)] * len(functions), None)
    room = max_tokens - END_TOKENS
    for calls in range(max(max_calls, 1), 0, -1):
        share = (room - (calls - 1) * _fixed("\n")) / calls
        sizes = [_size(function, share, max_chars) for function in functions]
        fitting = [size for size in sizes if size is not None]
        if len(fitting) == len(sizes) and (calls == 1 or all(
                size.chars >= min(USEFUL_STRING_CHARS, max_chars) and not size.left_out for size in fitting)):
            return _Fit(calls, fitting, max_tokens)
    raise ValueError(f"max_tokens {max_tokens} cannot hold a call of every tool; it needs at least "
                     f"{min_call_tokens(tools)}")


def _size(function: dict[str, Any], share: float, max_chars: int) -> _Size | None:
    """The most a call of ``function`` may hold to cost at most ``share`` tokens; None where nothing fits."""

    def longest(items: int, left_out: frozenset[str]) -> int | None:
        """The most characters a string may take; None where not even one fits."""
        if not _within(_cost(function, _Size(1, items, left_out)), share):
            return None
        low, high = 1, max(max_chars, 1)
        while low < high:  # the cost never falls as strings grow
            mid = (low + high + 1) // 2
            low, high = (mid, high) if _within(_cost(function, _Size(mid, items, left_out)), share) else (low, mid - 1)
        return low

    optional = _optional(function)
    for kept in range(len(optional), -1, -1):  # the last optional member is given up first
        left_out = frozenset(optional[kept:])
        fewest = longest(0, left_out)
        if fewest is not None:
            break
    else:
        return None
    wanted = min(USEFUL_STRING_CHARS, fewest)
    for items in _ITEM_LEVELS:
        chars = longest(items, left_out)
        if chars is not None and chars >= wanted:
            return _Size(chars, items, left_out)
    return _Size(fewest, 0, left_out)


def _optional(function: dict[str, Any]) -> list[str]:
    """The paths of ``function``'s optional members, parents before their members."""
    builder = _Builder(budget=True)
    builder.size = _Size(1, 0)
    builder.call(function)
    return builder.optional


def _cost(function: dict[str, Any], size: _Size) -> float:
    builder = _Builder(budget=True)
    builder.size = size
    return builder.call(function)[1]


def _build(tools: list[dict[str, Any]], fit: _Fit) -> tuple[_Builder, list[str]]:
    """The rules of each tool's call, and the call rules' names."""
    builder = _Builder(budget=fit.max_tokens is not None)
    calls = []
    for function, size in zip(_functions(tools), fit.sizes):
        builder.size = size
        calls.append(builder.call(function)[0])
    return builder, calls


_ROUNDING = 1e-9  # costs are sums of fractions of FIXED_CHARS_PER_TOKEN: compared with this much slack


def _within(cost: float, share: float) -> bool:
    return cost <= share + _ROUNDING


def _fixed(text: str) -> float:
    """The estimated tokens of text the grammar fixes."""
    return len(text) / FIXED_CHARS_PER_TOKEN


_Expr = tuple[str, float]  # a grammar expression (a rule name or a literal) and its most estimated tokens
# A number is written freely (a sign, digits, "." and digits, "e-" and 3 digits: a token a character); the rest fixed.
_SCALAR_COSTS = {"integer": 1.0 + _DIGITS, "number": 2.0 * _DIGITS + 7.0, "boolean": _fixed("false"),
                 "null": _fixed("null")}


class _Builder:
    def __init__(self, *, budget: bool) -> None:
        self.rules: list[str] = []
        self._names: set[str] = set()
        self._budget = budget  # bound everything open-ended (else only strings without maxLength)
        self.size = _Size()  # the current tool's
        self.capped: dict[str, int] = {}  # strings held below what their schema allows: "tool.arg" -> characters
        self.digits: dict[str, int] = {}  # numbers a budget holds to fewer digits: "tool.arg" -> digits
        self.bounded: dict[str, int] = {}  # arrays and free-form JSON a budget bounds: "tool.list" -> items
        self.optional: list[str] = []  # optional members written into the grammar
        self._shared: dict[tuple[str, int, int], _Expr] = {}  # rules of bounded numbers and free-form JSON

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

    def call(self, function: dict[str, Any]) -> _Expr:
        name = function["name"]
        args, cost = self.value(function.get("parameters") or {"type": "object"}, f"{name}-args", name)
        header = f'{{"name": {json.dumps(name)}, "arguments": '
        rule = self.add(f"call-{name}", f'"<tool_call>\\n" {json.dumps(header)} {args} "}}\\n</tool_call>"')
        return rule, cost + _fixed(f"<tool_call>\n{header}}}\n</tool_call>")

    def value(self, schema: Any, name: str, path: str) -> _Expr:
        """A grammar expression for values of ``schema``, found at ``path``, and its cost."""
        if not isinstance(schema, dict) or not schema:
            return self._any(path)
        if "const" in schema:
            return _literal(schema["const"]), _fixed(_json(schema["const"]))
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            rule = self.add(name, " | ".join(_literal(v) for v in schema["enum"]))
            return rule, max(_fixed(_json(v)) for v in schema["enum"])
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self._either([self.value(option, f"{name}-{i}", path) for i, option in enumerate(options)], name)
        kind = schema.get("type")
        if isinstance(kind, list):
            return self._either([self.value({**schema, "type": k}, f"{name}-{k}", path) for k in kind], name)
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, name, path)
        if kind == "array":
            return self._array(schema, name, path)
        if kind == "string":
            return self._string(schema, name, path)
        if kind in ("integer", "number"):
            return self._number(kind, path)
        if kind in ("boolean", "null"):
            return kind, _SCALAR_COSTS[kind]
        return self._any(path)

    def _either(self, parts: list[_Expr], name: str) -> _Expr:
        return self.add(name, " | ".join(rule for rule, _ in parts)), max(cost for _, cost in parts)

    def _string(self, schema: dict[str, Any], name: str, path: str) -> _Expr:
        low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
        allowed = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
        chars = self.size.chars
        high = max(low, chars if allowed is None or (self._budget and allowed > chars) else allowed)
        if allowed is None or high < allowed:
            self.capped.setdefault(path, high)
        return self.add(name, f'"\\"" char{{{low},{high}}} "\\""'), _fixed('""') + high

    def _number(self, kind: str, path: str) -> _Expr:
        if not self._budget:
            return kind, _SCALAR_COSTS[kind]
        digits = min(_DIGITS, self.size.chars)
        if digits < _DIGITS:
            self.digits.setdefault(path, digits)
        return self._numbers(digits)[kind == "number"]

    def _numbers(self, digits: int) -> tuple[_Expr, _Expr]:
        """(integer, number) of up to ``digits`` digits before the point and after it (3 in an exponent)."""
        if digits >= _DIGITS:  # the base rules
            return ("integer", _SCALAR_COSTS["integer"]), ("number", _SCALAR_COSTS["number"])
        key = ("number", digits, 0)
        if key not in self._shared:
            more = f" | [1-9] [0-9]{{1,{digits - 1}}}" if digits > 1 else ""
            integer = self.add(f"integer-{digits}", f'"-"? ([0-9]{more})')
            exponent = min(3, digits)
            number = self.add(f"number-{digits}",
                              f'{integer} ("." [0-9]{{1,{digits}}})? ([eE] [-+]? [0-9]{{1,{exponent}}})?')
            self._shared[("integer", digits, 0)] = (integer, 1.0 + digits)
            self._shared[key] = (number, 2.0 * digits + 4 + exponent)
        return self._shared[("integer", digits, 0)], self._shared[key]

    def _object(self, schema: dict[str, Any], name: str, path: str) -> _Expr:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            if self.size.items is None:
                return "object", math.inf
            self.bounded.setdefault(path, self.size.items)
            return self._free_json()[1]
        required = set(schema.get("required") or ())
        members = []
        for key, sub in properties.items():
            where = f"{path}.{key}"
            if key not in required:
                if where in self.size.left_out:
                    continue
                self.optional.append(where)
            members.append((key, key in required, self.value(sub, f"{name}-{key}", where)))
        # Members in schema order, optional ones skippable. rest[i]: members i.. after one was written (each
        # starts with a comma); first[i]: members i.. when none was written yet (None: nothing can follow).
        n = len(members)
        rest: list[str] = [""] * (n + 1)
        first: list[str | None] = [None] * (n + 1)
        for i in range(n - 1, -1, -1):
            key, needed, (value, _) = members[i]
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
        # The most it costs: every member written (the optional ones too), comma-separated.
        cost = _fixed("{}") + _fixed(", ") * max(n - 1, 0) + sum(_fixed(f"{_json(key)}: ") + c
                                                              for key, _, (_, c) in members)
        return self.add(name, f'"{{"{inside} "}}"'), cost

    def _array(self, schema: dict[str, Any], name: str, path: str) -> _Expr:
        item, item_cost = self.value(schema.get("items"), f"{name}-item", f"{path}[]")
        low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        items = self.size.items
        if items is not None and (high is None or high > max(low, items)):
            high = max(low, items)
            self.bounded.setdefault(path, high)
        if high == 0:
            return self.add(name, '"[" ws "]"'), _fixed("[]")
        extra_low = max(low - 1, 0)
        extra_high = "" if high is None else str(high - 1)
        repeated = f'{item} ( "," ws {item} ){{{extra_low},{extra_high}}}'
        body = repeated if low >= 1 else f"( {repeated} )?"
        cost = math.inf if high is None else _fixed("[]") + high * item_cost + (high - 1) * _fixed(",")
        return self.add(name, f'"[" ws {body} ws "]"'), cost

    def _any(self, path: str) -> _Expr:
        """Any JSON value: unbounded without a budget; with one, a scalar or one level of a few items."""
        if self.size.items is None:
            return "value", math.inf
        self.bounded.setdefault(path, self.size.items)
        return self._free_json()[0]

    def _free_json(self) -> tuple[_Expr, _Expr]:
        """Bounded free-form JSON, (any value, an object): a scalar, or one level of up to the current size's
        items of scalars (strings and numbers as long as the size allows)."""
        items, chars = self.size.items or 0, self.size.chars
        key = ("free", items, chars)
        if key not in self._shared:
            (integer, _), (number, number_cost) = self._numbers(min(_DIGITS, chars))
            string = self.add(f"free-string-{chars}", f'"\\"" char{{0,{chars}}} "\\""')
            scalar = self.add(f"free-scalar-{chars}", f"{string} | {number} | boolean | null")
            scalar_cost = max(_fixed('""') + chars, number_cost, _SCALAR_COSTS["boolean"])
            member = f'{string} ":" {scalar}'
            array = self.add(f"free-array-{items}-{chars}", _repeated("[", scalar, items, "]"))
            obj = self.add(f"free-object-{items}-{chars}", _repeated("{", member, items, "}"))
            commas = max(items - 1, 0) * _fixed(",")
            array_cost = _fixed("[]") + items * scalar_cost + commas
            obj_cost = _fixed("{}") + items * (_fixed('"":') + chars + scalar_cost) + commas
            any_rule = self.add(f"free-{items}-{chars}", f"{scalar} | {array} | {obj}")
            self._shared[key] = (any_rule, max(scalar_cost, array_cost, obj_cost))
            self._shared[("free-object", items, chars)] = (obj, obj_cost)
        return self._shared[key], self._shared[("free-object", items, chars)]


def _repeated(opening: str, item: str, most: int, closing: str) -> str:
    """``opening``, up to ``most`` comma-separated ``item``s, ``closing`` (GBNF)."""
    inside = f' ( {item} ( "," {item} ){{0,{most - 1}}} )?' if most else ""
    return f"{json.dumps(opening)}{inside} {json.dumps(closing)}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _literal(value: Any) -> str:
    """A JSON value as a GBNF string literal."""
    return json.dumps(_json(value), ensure_ascii=False)
