"""The tool-call grammar builder: which GBNF each JSON-schema shape becomes (pure; the engine test runs it)."""

from __future__ import annotations

import pytest

from LLM.core.tools.grammar import string_cap_note, tool_call_grammar


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
