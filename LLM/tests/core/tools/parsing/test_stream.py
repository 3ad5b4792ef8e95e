"""The `<tool_call>` parser: the shared real-world case file, policy cases, streaming and properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from LLM.core.events import ReasoningDelta, TextDelta, ToolCall
from LLM.core.tools.parsing import ParsedOutput, ToolCallStreamParser, parse_tool_calls
from LLM.tests.fakes.handle import REPO_ROOT
from LLM.tests.fakes.replies import CALL_TEXT

_CASE_FILES = (REPO_ROOT.parent / "shared" / "toolcall_cases.jsonl", REPO_ROOT / "LLM" / "tests" / "data" / "toolcall_cases.jsonl")


def _load_cases() -> list[dict[str, Any]]:
    path = next(p for p in _CASE_FILES if p.exists())
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


CASES = _load_cases()


def calls_of(result: ParsedOutput) -> list[tuple[str, dict[str, Any]]]:
    return [(call.name, call.arguments) for call in result.calls]


def expected_calls(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(call["name"], call["arguments"]) for call in case["expected_calls"]]


def stream(
    chunks: list[str], tools: list[dict[str, Any]] | None = None, start_in_reasoning: bool | None = None,
    stream_content: bool = False,
) -> tuple[ParsedOutput, list[Any]]:
    """Feed ``chunks``; return the result and every event, the final flush included."""
    parser = ToolCallStreamParser(tools, start_in_reasoning=start_in_reasoning, stream_content=stream_content)
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    result = parser.finish()
    return result, events + parser.final_events


def joined(events: list[Any], kind: type) -> str:
    return "".join(event.text for event in events if isinstance(event, kind))


def assert_same(a: ParsedOutput, b: ParsedOutput) -> None:
    assert (a.content, a.reasoning, calls_of(a), a.errors) == (b.content, b.reasoning, calls_of(b), b.errors)


def assert_events_match(result: ParsedOutput, events: list[Any]) -> None:
    """The deltas join to exactly the result, and the call events are the result's calls."""
    assert joined(events, TextDelta) == result.content
    assert joined(events, ReasoningDelta) == result.reasoning
    assert [event for event in events if isinstance(event, ToolCall)] == result.calls


# --------------------------------------------------------------------------------------------------- case file


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_parse_tool_calls_case_file(case: dict[str, Any]):
    result = parse_tool_calls(case["text"], case.get("tools"))
    assert calls_of(result) == expected_calls(case)
    assert result.content.strip() == case["expected_content"]
    assert result.content == result.content.strip()


STREAMED_CASES = [case for case in CASES if "chunks" in case]


@pytest.mark.parametrize("case", STREAMED_CASES, ids=[case["id"] for case in STREAMED_CASES])
def test_stream_parser_case_file_own_chunks(case: dict[str, Any]):
    assert "".join(case["chunks"]) == case["text"]
    result, events = stream(case["chunks"], case.get("tools"))
    assert calls_of(result) == expected_calls(case)
    assert joined(events, TextDelta).strip() == case["expected_content"]
    assert_events_match(result, events)
    assert_same(result, parse_tool_calls(case["text"], case.get("tools")))


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_stream_parser_case_file_char_by_char(case: dict[str, Any]):
    result, events = stream(list(case["text"]), case.get("tools"))
    assert calls_of(result) == expected_calls(case)
    assert joined(events, TextDelta).strip() == case["expected_content"]
    assert_events_match(result, events)
    assert_same(result, parse_tool_calls(case["text"], case.get("tools")))


@pytest.mark.parametrize("case", STREAMED_CASES, ids=[case["id"] for case in STREAMED_CASES])
def test_stream_parser_no_tag_fragment_leaks_into_content(case: dict[str, Any]):
    """Held-back tag prefixes (`<tool`, `</thi`) never reach the content channel when they turn out to be markup."""
    _result, events = stream(case["chunks"], case.get("tools"))
    content = joined(events, TextDelta)
    for fragment in ("<tool", "</thi", "<think", "<function", "<parameter"):
        if fragment not in case["expected_content"]:
            assert fragment not in content


# --------------------------------------------------------------------------------------------------- policy table

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "test_types",
            "parameters": {
                "type": "object",
                "properties": {
                    "int_param": {"type": "integer"},
                    "float_param": {"type": "number"},
                    "bool_param": {"type": "boolean"},
                    "str_param": {"type": "string"},
                    "obj_param": {"type": "object"},
                    "arr_param": {"type": "array"},
                    "date": {"type": "integer"},
                    "maybe": {"type": ["integer", "null"]},
                    "nothing": {"type": "integer"},
                    "text_null": {"type": "string"},
                },
            },
        },
    }
]


def xml_call(name: str, **params: str) -> str:
    body = "".join(f"<parameter={key}>\n{value}\n</parameter>\n" for key, value in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def json_call(name: str, arguments: Any, key: str = "arguments") -> str:
    return "<tool_call>\n" + json.dumps({"name": name, key: arguments}) + "\n</tool_call>"


POLICY_CASES = [
    pytest.param(
        xml_call("test_types", int_param="42", float_param="3.14", bool_param="true", str_param="hello world",
                 obj_param='{"key": "value"}', arr_param="[1, true, null]"),
        WEATHER_TOOLS,
        [("test_types", {"int_param": 42, "float_param": 3.14, "bool_param": True, "str_param": "hello world",
                         "obj_param": {"key": "value"}, "arr_param": [1, True, None]})],
        "",
        id="xml-values-typed-from-openai-tool-schema",
    ),
    pytest.param(
        xml_call("test_types", date="2026-01-15", float_param="1e3", bool_param="yes", obj_param="{'a': (1, 2)}"),
        WEATHER_TOOLS,
        [("test_types", {"date": "2026-01-15", "float_param": 1000.0, "bool_param": "yes",
                         "obj_param": {"a": [1, 2]}})],
        "",
        id="xml-value-that-does-not-fit-its-type-stays-a-string",
    ),
    pytest.param(
        xml_call("test_types", maybe="7", nothing="null", text_null="null", float_param="5"),
        WEATHER_TOOLS,
        [("test_types", {"maybe": 7, "nothing": None, "text_null": "null", "float_param": 5})],
        "",
        id="xml-null-only-for-non-string-types",
    ),
    pytest.param(
        xml_call("unknown_tool", int_param="42"), WEATHER_TOOLS, [("unknown_tool", {"int_param": "42"})], "",
        id="xml-undeclared-tool-still-a-call-with-string-values",
    ),
    pytest.param(
        "<tool_call>\n<function=f>\n<parameter=a>\n1\n<parameter=b>\n2\n</parameter>\n</function>\n</tool_call>",
        None, [("f", {"a": "1", "b": "2"})], "", id="xml-dropped-parameter-close-ended-by-next-line-parameter",
    ),
    pytest.param(
        "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</tool_call>", None, [("f", {"a": "1"})], "",
        id="xml-missing-function-close-ended-by-tool-call-close",
    ),
    pytest.param(
        "<tool_call>\n<function=f>\n<parameter=code>\n  indented\n\n</parameter>\n</function>\n</tool_call>", None,
        [("f", {"code": "  indented\n"})], "", id="xml-trims-exactly-one-newline-each-side",
    ),
    pytest.param(
        "<tool_call><function=now></function></tool_call>", None, [("now", {})], "", id="xml-no-parameters",
    ),
    pytest.param(
        '<tool_call>\n<function=f>{"a": [1, 2]}</function>\n</tool_call>', None, [("f", {"a": [1, 2]})], "",
        id="xml-function-tag-with-json-arguments-in-block",
    ),
    pytest.param(
        "<tool_call>\n<function=a>\n</function>\n<function=b>\n<parameter=x>\n1\n</parameter>\n</function>\n"
        "</tool_call>", None, [("a", {}), ("b", {"x": "1"})], "", id="xml-two-functions-in-one-block",
    ),
    pytest.param(
        "Writing.\n<tool_call>\n<function=write>\n<parameter=content>\nhalf a fi", None, [],
        "Writing.\n<tool_call>\n<function=write>\n<parameter=content>\nhalf a fi",
        id="xml-truncated-inside-value-is-not-a-call",
    ),
    pytest.param(
        "<tool_call>\n<function={{ tc.name }}>\n</function>\n</tool_call>", None, [],
        "<tool_call>\n<function={{ tc.name }}>\n</function>\n</tool_call>", id="xml-unrendered-template-name-invalid",
    ),
    pytest.param(
        "<function=lookup>\n<parameter=q>\ncats\n</parameter>\n</function>\n</tool_call>\nok", None,
        [("lookup", {"q": "cats"})], "ok", id="bare-xml-function-swallows-orphan-close-tag",
    ),
    pytest.param(
        "Call it as <function=name> with parameters.", None, [], "Call it as <function=name> with parameters.",
        id="bare-function-mention-in-prose-is-text",
    ),
    pytest.param(
        "<function=lookup>\n<parameter=q>\ncats\n</parameter>\n", None, [],
        "<function=lookup>\n<parameter=q>\ncats\n</parameter>", id="bare-function-without-close-is-text",
    ),
    pytest.param(
        json_call("get_weather", {"city": "Berlin"}, key="parameters"), None, [("get_weather", {"city": "Berlin"})],
        "", id="json-parameters-alias",
    ),
    pytest.param(
        json_call("get_weather", json.dumps({"city": "Paris"})), None, [("get_weather", {"city": "Paris"})], "",
        id="json-string-arguments-decoded",
    ),
    pytest.param(
        json_call("get_weather", json.dumps(json.dumps({"city": "Paris"}))), None,
        [("get_weather", {"city": "Paris"})], "", id="json-double-encoded-arguments-decoded",
    ),
    pytest.param(
        json_call("echo", "hello"), None, [], json_call("echo", "hello"), id="json-plain-string-arguments-invalid",
    ),
    pytest.param(
        json_call("echo", [1, 2]), None, [], json_call("echo", [1, 2]), id="json-array-arguments-invalid",
    ),
    pytest.param(json_call("now", None), None, [("now", {})], "", id="json-null-arguments-empty"),
    pytest.param(json_call("now", ""), None, [("now", {})], "", id="json-empty-string-arguments-empty"),
    pytest.param(
        '<tool_call>\n{"name": "a", "arguments": {}}\n{"name": "b", "arguments": {"x": 1}}\n</tool_call>', None,
        [("a", {}), ("b", {"x": 1})], "", id="json-two-objects-in-one-block",
    ),
    pytest.param(
        '<tool_call>\n[{"name": "a", "arguments": {}}, {"arguments": {}}]\n</tool_call>', None, [],
        '<tool_call>\n[{"name": "a", "arguments": {}}, {"arguments": {}}]\n</tool_call>',
        id="json-array-with-one-bad-member-is-wholly-invalid",
    ),
    pytest.param("<tool_call>\n[]\n</tool_call>", None, [], "<tool_call>\n[]\n</tool_call>", id="json-empty-array"),
    pytest.param(
        '<tool_call>\n```json\n{"name": "a", "arguments": {"x": 1}}\n```\n</tool_call>', None, [("a", {"x": 1})], "",
        id="fence-inside-the-tags",
    ),
    pytest.param(
        'Here:\n```json\n<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n```\nDone.', None,
        [("a", {})], "Here:\n\nDone.", id="fence-around-valid-blocks-goes-with-them",
    ),
    pytest.param(
        '```xml\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "b", "arguments": {}}'
        "</tool_call>\n```", None, [("a", {}), ("b", {})], "", id="fence-around-two-blocks",
    ),
    pytest.param(
        '```json\n<tool_call>\n{"arguments": {}}\n</tool_call>\n```', None, [],
        '```json\n<tool_call>\n{"arguments": {}}\n</tool_call>\n```', id="fence-around-invalid-block-stays",
    ),
    pytest.param(
        '```json\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\nand more\n```', None, [("a", {})],
        "```json\n\nand more\n```", id="fence-with-prose-stays-but-call-still-parsed",
    ),
    pytest.param(
        "```python\nprint('<b>')\n```", None, [], "```python\nprint('<b>')\n```", id="ordinary-code-fence-is-text",
    ),
    pytest.param(
        'Wrap calls in <tool_call> tags. <tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>', None,
        [("a", {"x": 1})], "Wrap calls in <tool_call> tags.", id="tag-mention-in-prose-then-real-call",
    ),
    pytest.param(
        'The end: <tool_call>', None, [], "The end: <tool_call>", id="tag-mention-at-end-of-output",
    ),
    pytest.param(
        '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>\n{"name": "b", "argu', None,
        [("a", {})], '<tool_call>\n{"name": "b", "argu', id="truncated-block-after-valid-block",
    ),
    pytest.param(
        '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "b", "arguments": {"x": 1,}\n'
        '<tool_call>{"name": "c", "arguments": {}}</tool_call>', None, [("a", {}), ("c", {})],
        '<tool_call>{"name": "b", "arguments": {"x": 1,}', id="bad-block-between-good-ones-kept-visible",
    ),
    pytest.param(
        "<tool_call>\n{'name': 'f', 'arguments': {'flag': True, 'none': None}}\n</tool_call>", None,
        [("f", {"flag": True, "none": None})], "", id="python-literal-fallback",
    ),
    pytest.param(
        '<tool_call>\n{"name": "f", "arguments": {"a": 1,},}\n</tool_call>', None, [("f", {"a": 1})], "",
        id="trailing-commas-via-literal-fallback",
    ),
    pytest.param(
        "<tool_call>\n{'name': 'f', 'arguments': {'s': {1, 2}}}\n</tool_call>", None, [],
        "<tool_call>\n{'name': 'f', 'arguments': {'s': {1, 2}}}\n</tool_call>",
        id="python-literal-that-is-not-json-data-invalid",
    ),
    pytest.param(
        '<tool_call>{"name": "w", "arguments": {"t": "line1\nline2\ttab"}}</tool_call>', None,
        [("w", {"t": "line1\nline2\ttab"})], "", id="raw-control-characters-in-strings",
    ),
    pytest.param(
        '<tool_call>{"name": "say", "arguments": {"t": "\\ud83d\\ude00 caf\\u00e9"}}</tool_call>', None,
        [("say", {"t": "😀 café"})], "", id="unicode-escapes-and-surrogate-pairs",
    ),
    pytest.param(
        '<tool_call>{"name": "a", "arguments": {}} trailing words</tool_call>', None, [],
        '<tool_call>{"name": "a", "arguments": {}} trailing words</tool_call>', id="text-after-json-invalid",
    ),
    pytest.param("", None, [], "", id="empty-output"),
    pytest.param(" \n\t ", None, [], "", id="whitespace-only"),
]


@pytest.mark.parametrize("text, tools, calls, content", POLICY_CASES)
def test_parse_tool_calls_policy(text: str, tools: Any, calls: list[Any], content: str):
    result = parse_tool_calls(text, tools)
    assert calls_of(result) == calls
    assert result.content == content
    streamed, events = stream(list(text), tools)
    assert_same(streamed, result)
    assert_events_match(streamed, events)


REASONING_CASES = [
    pytest.param("<think>a</think>b</think>c", "a", "bc", [], id="stray-close-after-think-is-dropped"),
    pytest.param("<think>a</think>x<think>b</think>y", "ab", "xy", [], id="two-think-blocks"),
    pytest.param(
        'Hello <think>never closed <tool_call>{"name": "a", "arguments": {}}</tool_call>', 
        'never closed <tool_call>{"name": "a", "arguments": {}}</tool_call>', "Hello", [],
        id="unclosed-think-after-content-makes-rest-reasoning",
    ),
    pytest.param(
        'draft <tool_call>{"name": "a", "arguments": {}}</tool_call></think>real', 
        'draft <tool_call>{"name": "a", "arguments": {}}</tool_call>', "real", [],
        id="lone-leading-close-turns-draft-call-into-reasoning",
    ),
    pytest.param(
        '<tool_call>{"name": "w", "arguments": {"t": "</think>"}}</tool_call>ok', "", "ok", [("w", {"t": "</think>"})],
        id="think-tag-inside-a-json-string-is-data",
    ),
    pytest.param("<think>\n\n</think>\n\nHi", "", "Hi", [], id="empty-think-of-non-thinking-mode"),
]


@pytest.mark.parametrize("text, reasoning, content, calls", REASONING_CASES)
def test_parse_tool_calls_reasoning(text: str, reasoning: str, content: str, calls: list[Any]):
    result = parse_tool_calls(text)
    assert (result.reasoning, result.content, calls_of(result)) == (reasoning, content, calls)
    streamed, events = stream(list(text))
    assert_same(streamed, result)
    assert_events_match(streamed, events)


def test_parse_tool_calls_errors_say_which_block_and_why():
    text = (
        '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": {"x": 1 "y": 2}}</tool_call>\n'
        '<tool_call>{"arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "c", "arguments": {"x": "cut'
    )
    errors = parse_tool_calls(text).errors
    assert len(errors) == 3
    assert errors[0].startswith("tool_call block 2: invalid JSON at char ") and "delimiter" in errors[0]
    assert errors[1] == 'tool_call block 3: missing or empty "name"'
    assert errors[2].startswith("tool_call block 4: output ended inside the block")


def test_parse_tool_calls_tag_mention_records_no_error():
    assert parse_tool_calls("Use <tool_call> and <function=x> tags.").errors == []


# --------------------------------------------------------------------------------------------------- results


def test_tool_call_to_openai_encodes_arguments_once():
    call = parse_tool_calls(json_call("get_weather", {"city": "Zürich"})).calls[0]
    entry = call.to_openai()
    assert entry["id"] == call.id and entry["id"].startswith("call_")
    assert entry["type"] == "function"
    assert entry["function"]["name"] == "get_weather"
    assert json.loads(entry["function"]["arguments"]) == {"city": "Zürich"}


def test_tool_call_ids_are_unique():
    text = "\n".join(json_call("f", {"i": i}) for i in range(50))
    ids = [call.id for call in parse_tool_calls(text).calls + parse_tool_calls(text).calls]
    assert len(set(ids)) == 100
    assert ToolCall("f", {}).id != ToolCall("f", {}).id


# --------------------------------------------------------------------------------------------------- streaming


def test_stream_parser_sends_a_call_when_its_block_closes():
    parser = ToolCallStreamParser(start_in_reasoning=False)
    assert parser.feed('Checking.<tool_call>{"name": "a", "arguments": {"x": 1}}') == [TextDelta("Checking.")]
    events = parser.feed("</tool_call>")
    assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCall)] == [("a", {"x": 1})]


def test_stream_parser_sends_an_invalid_block_as_content_when_it_closes():
    parser = ToolCallStreamParser(start_in_reasoning=False)
    assert parser.feed('<tool_call>{"name": ""}') == []
    assert joined(parser.feed("</tool_call> after"), TextDelta) == '<tool_call>{"name": ""}</tool_call> after'


def test_stream_parser_holds_a_partial_tag_then_releases_it():
    parser = ToolCallStreamParser(start_in_reasoning=False)
    assert joined(parser.feed("a <tool_ca"), TextDelta) == "a"
    assert joined(parser.feed("rt"), TextDelta) == " <tool_cart"


def test_stream_parser_finish_flushes_and_keeps_final_events():
    parser = ToolCallStreamParser(start_in_reasoning=False)
    parser.feed('Checking.\n<tool_call>\n{"name": "a", "arguments": {}}\n')
    result = parser.finish()
    assert calls_of(result) == [("a", {})]
    assert [e for e in parser.final_events if isinstance(e, ToolCall)] == result.calls
    assert parser.finish() is result
    with pytest.raises(RuntimeError):
        parser.feed("more")


def test_stream_parser_start_in_reasoning_streams_reasoning_at_once():
    parser = ToolCallStreamParser(start_in_reasoning=True)
    assert parser.feed("planning") == [ReasoningDelta("planning")]
    assert parser.feed(" more</think>\n\nAnswer") == [ReasoningDelta(" more"), TextDelta("Answer")]
    assert parser.finish().reasoning == "planning more"


def test_stream_parser_not_in_reasoning_keeps_text_before_stray_close():
    result, events = stream(list("abc</think>def"), start_in_reasoning=False)
    assert (result.content, result.reasoning) == ("abcdef", "")
    assert_events_match(result, events)


def test_stream_parser_auto_mode_holds_content_until_a_think_tag_settles_it():
    """Default mode: text may still turn out to precede a lone </think>, so it waits; <think> settles it."""
    parser = ToolCallStreamParser()
    assert parser.feed("Hello there. ") == []
    assert parser.feed("<think>") == [TextDelta("Hello there.")]
    auto = ToolCallStreamParser()
    auto.feed("Hello there.")
    assert auto.finish().content == "Hello there."
    assert auto.final_events == [TextDelta("Hello there.")]


SETTLED_EARLY = [
    pytest.param('<tool_call>{name: x}</tool_call> then prose', "then prose", id="invalid-block"),
    pytest.param('<tool_call>{"name": "x", "arguments": {"a": tr</tool_call> then prose' + " that goes on" * 6,
                 "goes on", id="invalid-block-ending-without-brace"),
    pytest.param('<tool_call>{"name": "w", "arguments": {"c": "a </tool_call> b"}}</tool_call> after', "after",
                 id="close-tag-quoted-in-a-string"),
    pytest.param("Use <function=name> to call it. More prose follows here.", "follows here.", id="bare-mention"),
    pytest.param("<tool_call>\n<function=f>\n<parameter=a>\nx </tool_call> y\n</parameter>\n</function>\n</tool_call>"
                 " after", "after", id="xml-value-quoting-the-close-tag"),
    pytest.param('```json\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\n```\nafter', "after",
                 id="fence-around-a-block"),
]


@pytest.mark.parametrize("text, tail", SETTLED_EARLY)
def test_stream_parser_settles_blocks_before_the_end(text: str, tail: str):
    """Content after a resolved block is sent while streaming, not only at finish().

    (A look at an open block that the text so far cannot settle is retried at the next plausible closing tag or
    once the block has doubled, so a settled block may wait for up to its own length of further text.)
    """
    parser = ToolCallStreamParser(start_in_reasoning=False)
    events = [event for ch in text for event in parser.feed(ch)]
    assert joined(events, TextDelta).endswith(tail)
    result = parser.finish()
    assert joined(events + parser.final_events, TextDelta) == result.content == parse_tool_calls(text).content


@pytest.mark.timeout(120)  # not a speed: only a quadratic parser (minutes) hangs past it; it takes about a second
def test_stream_parser_long_block_char_by_char_stays_linear():
    """A 400 KB block fed one character at a time must not be re-parsed per character (that took minutes)."""
    text = json_call("write_file", {"path": "a.txt", "content": "x </tool_call> y\n" * 24_000})
    parser = ToolCallStreamParser(start_in_reasoning=False)
    for ch in text:
        parser.feed(ch)
    result = parser.finish()
    assert result.calls[0].arguments["content"].count("</tool_call>") == 24_000


LONE_CLOSE_CASES = [
    # stream_content: content goes out at once; a call before a lone </think> is still never a call
    pytest.param(f"a {CALL_TEXT} b</think>c", [], "a  bc", id="call-before-lone-close-is-void"),
    pytest.param(f"a</think>b {CALL_TEXT}", ["calculator"], "ab", id="call-after-lone-close-runs"),
    pytest.param(f"a {CALL_TEXT}<think>x</think>b", ["calculator"], "a b", id="think-block-settles-earlier-call"),
    pytest.param(f"a {CALL_TEXT}", ["calculator"], "a", id="no-tag-call-runs-at-the-end"),
    pytest.param('a <tool_call>{"name": ""}</tool_call></think>b', [], 'a <tool_call>{"name": ""}</tool_call>b',
                 id="invalid-block-before-lone-close-stays-text-without-error"),
]


@pytest.mark.parametrize("text, calls, content", LONE_CLOSE_CASES)
def test_stream_parser_stream_content_mode(text: str, calls: list[str], content: str):
    """Regression (tool path fixes, bug 1): a call drafted inside reasoning was run. With content streamed at once
    (the prompt is known not to open ``<think>``), a call before a lone ``</think>`` is still never a call."""
    result, events = stream(list(text), stream_content=True)
    assert [c.name for c in result.calls] == calls and result.content == content
    assert_events_match(result, events)
    assert [c.name for c in result.calls] == [c.name for c in parse_tool_calls(text).calls]  # the policy's calls
    assert result.errors == []


# --------------------------------------------------------------------------------------------------- properties

FRAGMENTS = [
    "<tool_call>", "</tool_call>", "<think>", "</think>", "<function=f>", "<function=get_weather>", "</function>",
    "<parameter=a>", "<parameter=city>", "</parameter>", "```", "```json\n", "\n", " ", "\r\n", "\t", "<", ">", "{",
    "}", "[", "]", '"', ",", ":", "'", "\\", "null", "true", "1", "x < y", "<tool_ca", "</tool", "</thi",
    '{"name": "f", "arguments": {"a": 1}}', '{"name": "g"}', '[{"name": "h", "arguments": {}}]', '"name": ',
    '"arguments": ', '{"name": "w", "arguments": {"t": "</tool_call>"}}', "{'name': 'p', 'arguments': {}}",
    "hello", "wörld 😀", "Paris", '{"name": ""}',
]
TEXTS = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40).map("".join)
MODES = st.sampled_from([None, True, False])


def random_chunks(data: st.DataObject, text: str) -> list[str]:
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=12)) | {0, len(text)})
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, mode=MODES, data=st.data())
def test_stream_parser_any_chunking_equals_whole_parse(text: str, mode: bool | None, data: st.DataObject):
    whole = parse_tool_calls(text, start_in_reasoning=mode)
    for chunks in (random_chunks(data, text), list(text)):
        streamed, events = stream(chunks, start_in_reasoning=mode)
        assert_same(streamed, whole)
        assert_events_match(streamed, events)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, data=st.data())
def test_stream_parser_stream_content_mode_any_chunking_equals_whole(text: str, data: st.DataObject):
    """Regression (tool path fixes, bug 1): the fix's stream_content mode (content sent at once, a call before a
    lone ``</think>`` still void) keeps the parser's contract: any chunking gives the whole-text result, and the
    deltas join to exactly the result's content and reasoning."""
    whole, _ = stream([text], stream_content=True)
    for chunks in (random_chunks(data, text), list(text)):
        streamed, events = stream(chunks, stream_content=True)
        assert_same(streamed, whole)
        assert_events_match(streamed, events)
    # Only where content goes differs from the policy's own (held) parse: the calls are the same.
    assert calls_of(whole) == calls_of(parse_tool_calls(text, start_in_reasoning=None))


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_characters="<")))
def test_parse_tool_calls_prose_without_markup_is_content_exactly(text: str):
    result = parse_tool_calls(text)
    assert (result.content, result.reasoning, result.calls, result.errors) == (text.strip(), "", [], [])


PROSE = st.text(alphabet=st.characters(blacklist_characters="<`"), max_size=30)
VALID_BLOCKS = st.sampled_from(
    [
        (json_call("a", {"x": 1}), ("a", {"x": 1})),
        ('<tool_call>{"name": "b", "arguments": {}}</tool_call>', ("b", {})),
        (xml_call("c", q="v"), ("c", {"q": "v"})),
        ('<tool_call>\n{"name": "d", "parameters": {"s": "</tool_call>"}}\n</tool_call>', ("d", {"s": "</tool_call>"})),
    ]
)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(PROSE, VALID_BLOCKS), max_size=6), tail=PROSE, data=st.data())
def test_parse_tool_calls_keeps_all_text_between_valid_blocks(parts: list[Any], tail: str, data: st.DataObject):
    text = "".join(prose + block for prose, (block, _call) in parts) + tail
    result = parse_tool_calls(text, start_in_reasoning=False)
    assert result.content == ("".join(prose for prose, _block in parts) + tail).strip()
    assert calls_of(result) == [call for _prose, (_block, call) in parts]
    streamed, events = stream(random_chunks(data, text), start_in_reasoning=False)
    assert_same(streamed, result)
    assert_events_match(streamed, events)
