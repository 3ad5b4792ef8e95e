"""The tool-call grammar builder: which GBNF each JSON-schema shape becomes (pure; the engine test runs it)."""

from __future__ import annotations

import pytest

from LLM.core.tools.grammar import min_call_tokens, string_cap_note, tool_call_grammar


def rules(schema: dict, **options) -> dict[str, str]:
    text = tool_call_grammar([{"type": "function", "function": {"name": "t", "parameters": schema}}], **options)
    return dict(line.split(" ::= ", 1) for line in text.splitlines() if " ::= " in line)


@pytest.mark.parametrize(
    "schema, rule, body",
    [
        pytest.param({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                     "t-args", '"{" t-args-f0 "}"', id="object-required"),
        pytest.param({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                     "t-args-f0", '"\\"x\\"" ": " integer', id="required-member"),
        pytest.param({"type": "object", "properties": {"x": {"type": "integer"}}},
                     "t-args-f0", '( "\\"x\\"" ": " integer )?', id="optional-member"),
        pytest.param({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}},
                      "required": ["b"]},
                     "t-args-f0", '"\\"a\\"" ": " boolean t-args-r1 | t-args-f1', id="optional-then-required"),
        pytest.param({"type": "object", "properties": {"s": {"type": "string", "enum": ["c", "f"]}}},
                     "t-args-s", '"\\"c\\"" | "\\"f\\""', id="enum"),
        pytest.param({"type": "object", "properties": {"s": {"type": "string", "maxLength": 5}}},
                     "t-args-s", '"\\"" char{0,5} "\\""', id="string-max-length"),
        pytest.param({"type": "object", "properties": {"s": {"type": "string"}}},
                     "t-args-s", '"\\"" char{0,200} "\\""', id="string-capped"),
        pytest.param({"type": "object", "properties": {"n": {"type": ["number", "null"]}}},
                     "t-args-n", "number | null", id="type-list"),
        pytest.param({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "integer"},
                                                             "minItems": 1, "maxItems": 3}}},
                     "t-args-l", '"[" ws integer ( "," ws integer ){0,2} ws "]"', id="array-bounds"),
        pytest.param({"type": "object", "properties": {"o": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}},
                     "t-args-o", "integer | t-args-o-1", id="any-of"),
        pytest.param({"type": "object", "properties": {"k": {"const": 3}}}, "t-args-f0",
                     '( "\\"k\\"" ": " "3" )?', id="const"),
        pytest.param({"type": "object"}, "call-t", '"<tool_call>\\n" "{\\"name\\": \\"t\\", \\"arguments\\": " '
                     'object "}\\n</tool_call>"', id="no-properties-any-object"),
    ],
)
def test_grammar_schema_shapes(schema, rule, body):
    assert rules(schema)[rule] == body


def test_grammar_root_allows_a_few_calls_or_exactly_one():
    assert rules({"type": "object"})["root"] == 'call ( "\\n" call ){0,2}'
    assert rules({"type": "object"}, max_calls=1)["root"] == "call"


def test_grammar_calls_any_of_the_tools_and_keeps_rule_names_apart():
    tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
             for name in ("get_time", "get-time")]
    found = dict(line.split(" ::= ", 1) for line in tool_call_grammar(tools).splitlines())
    assert found["call"] == "call-get-time | call-get-time-2"


def test_grammar_needs_a_tool():
    with pytest.raises(ValueError, match="at least one tool"):
        tool_call_grammar([])


def tool(name: str, properties: dict) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": properties}}}


@pytest.mark.parametrize("tools, capped", [
    pytest.param([tool("t", {"s": {"type": "string"}})], "t.s", id="string"),
    pytest.param([tool("t", {"s": {"type": "string", "maxLength": 500}, "n": {"type": "integer"}})], None,
                 id="bounded-or-not-a-string"),
    pytest.param([tool("t", {"e": {"type": "string", "enum": ["a", "b"]}})], None, id="enum-is-not-capped"),
    pytest.param([tool("t", {"o": {"type": "object", "properties": {"q": {"type": "string"}}},
                             "l": {"type": "array", "items": {"type": ["string", "null"]}}})], "t.o.q, t.l[]",
                 id="nested"),
    pytest.param([tool("a", {"x": {"type": "string"}}), tool("b", {"y": {"anyOf": [{"type": "string"}]}})],
                 "a.x, b.y", id="several-tools"),
    pytest.param([tool("t", {f"s{i}": {"type": "string"} for i in range(8)})],
                 "t.s0, t.s1, t.s2, t.s3, t.s4, t.s5 and 2 more", id="many"),
])
def test_grammar_string_cap_note_names_the_capped_strings(tools, capped):
    """Regression (#19, forced calls): the grammar cut every string without maxLength at 200 characters and
    nobody was told; the note says so, naming the strings, and is empty when nothing is capped."""
    expected = f"forced call: strings without maxLength capped at 200 characters ({capped})" if capped else ""
    assert string_cap_note(tools) == expected


# --- a budget: every call the grammar admits closes within max_tokens ---------------------------------------

STRING = {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}
NUMBERS = {"type": "object", "properties": {"n": {"type": "integer"}, "x": {"type": "number"}}, "required": ["n", "x"]}
OPTIONAL = {"type": "object", "required": ["a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "string"}}}


@pytest.mark.parametrize(
    "schema, max_tokens, rule, body",
    [
        # The call's fixed text, 62 characters, is estimated at 35.4 tokens, and one more ends the generation:
        # of 64, 27 are left for the string's characters (a token each).
        pytest.param(STRING, 64, "t-args-s", '"\\"" char{0,27} "\\""', id="string-gets-the-rest"),
        pytest.param(STRING, 40, "t-args-s", '"\\"" char{0,3} "\\""', id="string-gets-little"),
        pytest.param(STRING, 4096, "t-args-s", '"\\"" char{0,200} "\\""', id="string-keeps-the-upper-cap"),
        pytest.param({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}, 64,
                     "t-args-b", '"\\"" char{0,11} "\\""', id="strings-share-the-rest"),
        pytest.param({"type": "object", "properties": {"s": {"type": "string", "maxLength": 100}}}, 64,
                     "t-args-s", '"\\"" char{0,27} "\\""', id="max-length-beyond-the-budget"),
        pytest.param({"type": "object", "properties": {"s": {"type": "string", "maxLength": 5}}}, 64,
                     "t-args-s", '"\\"" char{0,5} "\\""', id="max-length-within-the-budget"),
        pytest.param({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "integer"}}}}, 128,
                     "t-args-l", '"[" ws ( integer ( "," ws integer ){0,3} )? ws "]"', id="array-items-bounded"),
        pytest.param({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "integer"}}}}, 64,
                     "t-args-l", '"[" ws ( integer ( "," ws integer ){0,0} )? ws "]"', id="array-one-item"),
        pytest.param({"type": "object"}, 200, "call-t", '"<tool_call>\\n" "{\\"name\\": \\"t\\", \\"arguments\\": " '
                     'free-object-2-40 "}\\n</tool_call>"', id="free-object-bounded"),
        pytest.param({"type": "object"}, 200, "free-object-2-40", '"{" ( free-string-40 ":" free-scalar-40 '
                     '( "," free-string-40 ":" free-scalar-40 ){0,1} )? "}"', id="free-object-one-level"),
        pytest.param({"type": "object", "properties": {"v": {}}}, 200, "t-args-f0", '( "\\"v\\"" ": " free-2-39 )?',
                     id="free-value-bounded"),
        pytest.param(NUMBERS, 64, "integer-5", '"-"? ([0-9] | [1-9] [0-9]{1,4})', id="integer-digits-share-the-rest"),
        pytest.param(NUMBERS, 64, "number-5", 'integer-5 ("." [0-9]{1,5})? ([eE] [-+]? [0-9]{1,3})?',
                     id="number-digits-share-the-rest"),
        pytest.param(NUMBERS, 49, "number-1", 'integer-1 ("." [0-9]{1,1})? ([eE] [-+]? [0-9]{1,1})?',
                     id="number-at-the-floor"),
        pytest.param(NUMBERS, 128, "t-args-f1", '"\\"x\\"" ": " number', id="numbers-keep-their-16-digits"),
        pytest.param(OPTIONAL, 48, "t-args-f0", '"\\"a\\"" ": " t-args-a t-args-r1', id="last-optional-left-out"),
        pytest.param(OPTIONAL, 48, "t-args-r1", '( ", " "\\"b\\"" ": " integer-3 )?', id="others-kept"),
        pytest.param(OPTIONAL, 40, "t-args-f0", '"\\"a\\"" ": " t-args-a', id="optional-left-out-last-first"),
        pytest.param(OPTIONAL, 56, "t-args-r2", '( ", " "\\"c\\"" ": " t-args-c )?', id="none-left-out-that-fit"),
    ],
)
def test_grammar_budget_bounds_what_is_open_ended(schema, max_tokens, rule, body):
    assert rules(schema, max_calls=1, max_tokens=max_tokens)[rule] == body


@pytest.mark.parametrize("max_tokens, root, cap", [
    pytest.param(None, 'call ( "\\n" call ){0,2}', 200, id="no-budget"),
    pytest.param(4096, 'call ( "\\n" call ){0,2}', 200, id="ample"),
    pytest.param(256, 'call ( "\\n" call ){0,2}', 49, id="shared-by-three"),
    pytest.param(128, "call", 91, id="one-call-keeps-strings-useful"),
])
def test_grammar_budget_is_shared_by_the_calls_or_allows_fewer(max_tokens, root, cap):
    found = rules(STRING, max_tokens=max_tokens)
    assert (found["root"], found["t-args-s"]) == (root, f'"\\"" char{{0,{cap}}} "\\""')


def test_grammar_with_one_call_has_no_repetition_whatever_the_budget():
    for max_tokens in (None, 64, 4096):
        grammar = tool_call_grammar([tool("t", {"s": {"type": "string"}})], max_calls=1, max_tokens=max_tokens)
        assert grammar.startswith("root ::= call\n") and '"\\n" call' not in grammar


def test_grammar_budget_too_small_for_one_call_is_refused_with_the_floor():
    tools = [{"type": "function", "function": {"name": "t", "parameters": STRING}}]
    floor = min_call_tokens(tools)
    assert 'char{0,1}' in tool_call_grammar(tools, max_tokens=floor)
    with pytest.raises(ValueError, match=f"max_tokens {floor - 1} .* needs at least {floor}"):
        tool_call_grammar(tools, max_tokens=floor - 1)


def test_grammar_budget_floor_is_the_dearest_tool():
    cheap = tool("a", {})
    dear = {"type": "function", "function": {"name": "b", "parameters": {
        "type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "string"}}, "required": ["x", "y"]}}}
    assert min_call_tokens([cheap]) < min_call_tokens([dear]) == min_call_tokens([cheap, dear])


CALCULATOR = tool("calculator", {"expression": {"type": "string"}})
TIME = tool("get_current_time", {"timezone": {"type": "string"}})


@pytest.mark.parametrize("tools, options, note", [
    pytest.param([CALCULATOR], {"max_tokens": 64},
                 "forced call, to fit max_tokens 64: strings capped at 17 characters (calculator.expression); at most "
                 "1 call (not 3)", id="budget"),
    pytest.param([CALCULATOR], {"max_tokens": 64, "max_calls": 1},
                 "forced call, to fit max_tokens 64: strings capped at 17 characters (calculator.expression)",
                 id="budget-one-call"),
    pytest.param([CALCULATOR, TIME], {"max_tokens": 64, "max_calls": 1},
                 "forced call, to fit max_tokens 64: strings capped at 17 characters (calculator.expression), at 15 "
                 "characters (get_current_time.timezone)", id="each-tool-its-own-cap"),
    pytest.param([CALCULATOR], {"max_tokens": 4096},
                 "forced call: strings without maxLength capped at 200 characters (calculator.expression)",
                 id="ample-budget-says-what-no-budget-says"),
    pytest.param([tool("t", {"l": {"type": "array", "items": {"type": "integer"}}})], {"max_tokens": 128,
                                                                                       "max_calls": 1},
                 "forced call, to fit max_tokens 128: arrays and free-form JSON bounded at 4 items (t.l)",
                 id="arrays"),
    pytest.param([tool("t", {"n": {"type": "integer"}})], {"max_tokens": 64, "max_calls": 1}, "",
                 id="nothing-held-back"),
    pytest.param([{"type": "function", "function": {"name": "t", "parameters": OPTIONAL}}],
                 {"max_tokens": 48, "max_calls": 1},
                 "forced call, to fit max_tokens 48: strings capped at 3 characters (t.a); numbers capped at 3 digits "
                 "(t.b); optional members left out (t.c)", id="numbers-and-members"),
    pytest.param([tool("t", {"n": {"type": "integer"}})], {"max_tokens": 64},
                 "forced call, to fit max_tokens 64: at most 1 call (not 3)", id="fewer-calls"),
])
def test_grammar_note_reports_the_effective_caps(tools, options, note):
    assert string_cap_note(tools, **options) == note
