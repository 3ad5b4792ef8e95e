"""Raw model text as OpenAI native tool calls: the whole message, the streamed deltas, and any chunking."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from LLM.core.tools.parsing import NativeToolCalls, native_message

WEATHER_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]


def block(name: str, arguments: dict[str, Any]) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": arguments})}\n</tool_call>'


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool_calls entry as the tests compare it: id left out, arguments decoded."""
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


PARIS = block("get_weather", {"city": "Paris"})
TOKYO = block("get_weather", {"city": "Tokyo"})
INVALID = '<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}\n</tool_call>'
XML = ("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n"
       "</parameter>\n</function>\n</tool_call>")

# (id, text, tools, expected message: content, reasoning_content (absent: None), calls)
CASES: list[tuple[str, str, list[dict[str, Any]] | None, str | None, str | None, list[dict[str, Any]]]] = [
    ("plain-text", "The capital of France is Paris.", None, "The capital of France is Paris.", None, []),
    ("empty", "", None, "", None, []),
    ("one-call", PARIS, None, None, None, [call("get_weather", {"city": "Paris"})]),
    ("two-calls", f"{PARIS}\n{TOKYO}", None, None, None,
     [call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Tokyo"})]),
    ("call-after-text", f"Let me check.\n{PARIS}", None, "Let me check.", None,
     [call("get_weather", {"city": "Paris"})]),
    ("text-after-call", f"{PARIS}\nChecking now.", None, "Checking now.", None,
     [call("get_weather", {"city": "Paris"})]),
    ("invalid-block-stays-content", f"Checking.\n{INVALID}", None, f"Checking.\n{INVALID}", None, []),
    ("invalid-block-beside-a-valid-one", f"{INVALID}\n{TOKYO}", None, INVALID, None,
     [call("get_weather", {"city": "Tokyo"})]),
    ("call-inside-think-is-reasoning", f"<think>Maybe {PARIS} first.</think>\nIt is sunny.", None, "It is sunny.",
     f"Maybe {PARIS} first.", []),
    ("think-then-call", f"<think>The user wants the weather.</think>\n\n{PARIS}", None, None,
     "The user wants the weather.", [call("get_weather", {"city": "Paris"})]),
    ("lone-think-close-then-call", f"I should look it up.</think>\n\n{PARIS}", None, None, "I should look it up.",
     [call("get_weather", {"city": "Paris"})]),
    ("xml-function-body-typed-by-tools", XML, WEATHER_TOOLS, None, None,
     [call("get_weather", {"city": "Paris", "days": 3})]),
    ("tag-mention-is-text", "Wrap calls in <tool_call> tags.", None, "Wrap calls in <tool_call> tags.", None, []),
    ("unclosed-complete-call-at-the-end", f"Sure.\n{PARIS[: -len('</tool_call>')]}", None, "Sure.", None,
     [call("get_weather", {"city": "Paris"})]),
    ("truncated-call-stays-content", 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"ci', None,
     'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"ci', None, []),
    ("non-ascii-arguments", block("say", {"text": "héllo ✓"}), None, None, None,
     [call("say", {"text": "héllo ✓"})]),
]
IDS = [case[0] for case in CASES]


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """The message with call ids checked and left out, and arguments decoded (their spelling is free)."""
    out = dict(message)
    if "tool_calls" in out:
        ids = [entry["id"] for entry in out["tool_calls"]]
        assert all(i.startswith("call_") for i in ids) and len(set(ids)) == len(ids)
        out["tool_calls"] = [
            {"type": entry["type"], "function": {"name": entry["function"]["name"],
                                                 "arguments": json.loads(entry["function"]["arguments"])}}
            for entry in out["tool_calls"]
        ]
    return out


def expected_message(content: str | None, reasoning: str | None, calls: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return message


def fold(deltas: list[dict[str, Any]]) -> dict[str, Any]:
    """Streamed deltas folded into a message, as an OpenAI client accumulates them; checks each delta's shape."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for delta in deltas:
        assert len(delta) == 1, delta
        ((key, value),) = delta.items()
        if key == "content":
            content.append(value)
        elif key == "reasoning_content":
            reasoning.append(value)
        else:
            assert key == "tool_calls" and len(value) == 1, delta
            entry = dict(value[0])
            assert entry.pop("index") == len(calls)  # whole calls, counted from 0 in order
            assert isinstance(entry["function"]["arguments"], str)
            calls.append(entry)
    text = "".join(content)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def stream(chunks: list[str], tools: list[dict[str, Any]] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    native = NativeToolCalls(tools, **kwargs)
    deltas = [delta for chunk in chunks for delta in native.feed(chunk)]
    return deltas + native.finish()


@pytest.mark.parametrize(("case_id", "text", "tools", "content", "reasoning", "calls"), CASES, ids=IDS)
def test_native_message_turns_tagged_calls_into_tool_calls(
    case_id: str, text: str, tools: Any, content: str | None, reasoning: str | None, calls: list[dict[str, Any]]
) -> None:
    assert comparable(native_message(text, tools)) == expected_message(content, reasoning, calls)


@pytest.mark.parametrize(("case_id", "text", "tools", "content", "reasoning", "calls"), CASES, ids=IDS)
def test_native_tool_calls_deltas_fold_into_the_message_for_every_split_point(
    case_id: str, text: str, tools: Any, content: str | None, reasoning: str | None, calls: list[dict[str, Any]]
) -> None:
    expected = expected_message(content, reasoning, calls)
    assert comparable(fold(stream([text], tools))) == expected
    assert comparable(fold(stream(list(text), tools))) == expected  # one character at a time
    for i in range(len(text) + 1):
        assert comparable(fold(stream([text[:i], text[i:]], tools))) == expected, f"split at {i}"


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_native_tool_calls_any_chunking_gives_the_same_message(case: tuple[Any, ...], cuts: list[int]) -> None:
    _, text, tools, content, reasoning, calls = case
    points = sorted({min(cut, len(text)) for cut in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)])]
    assert comparable(fold(stream(chunks, tools))) == expected_message(content, reasoning, calls)


def test_native_tool_calls_sends_no_piece_of_call_markup_as_content() -> None:
    text = f"Let me check.\n{PARIS}\n{TOKYO}"
    deltas = stream(list(text))
    sent = "".join(d.get("content", "") for d in deltas)
    assert sent == "Let me check." and "<" not in sent


def test_native_tool_calls_counts_calls_and_emits_each_once_its_block_closes() -> None:
    tokens = ["<tool_call>", "\n", '{"', "name", '":', ' "', "get", "_weather", '",', ' "', "arguments", '":', ' {"',
              "city", '":', ' "', "Paris", '"}}', "\n", "</tool_call>"]
    assert "".join(tokens) == PARIS
    native = NativeToolCalls(start_in_reasoning=False)
    assert native.feed("Checking.\n") == [{"content": "Checking."}]
    assert [native.feed(token) for token in tokens[:-1]] == [[]] * (len(tokens) - 1)  # an open block is hidden
    assert native.calls == 0
    (delta,) = native.feed(tokens[-1])
    assert native.calls == 1
    assert delta["tool_calls"][0]["index"] == 0
    assert delta["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    native.feed("\n" + TOKYO)
    assert native.calls == 2
    assert native.finish() == [] and native.finish() == []


def test_native_tool_calls_finish_releases_a_held_back_partial_tag() -> None:
    native = NativeToolCalls(start_in_reasoning=False)
    assert native.feed("Use the <tool_ca") == [{"content": "Use the"}]
    assert native.finish() == [{"content": " <tool_ca"}]


@pytest.mark.parametrize(
    ("start_in_reasoning", "text", "expected"),
    [
        (True, f"The user wants Paris.</think>\n{PARIS}", [
            {"reasoning_content": "The user wants Paris."}, "call"]),
        (True, "Still thinking", [{"reasoning_content": "Still thinking"}]),
        (False, "Hello</think> world", [{"content": "Hello world"}]),
    ],
    ids=["prompt-opened-think", "unclosed-reasoning", "stray-close-tag-dropped"],
)
def test_native_tool_calls_starts_where_the_prompt_left_off(
    start_in_reasoning: bool, text: str, expected: list[Any]
) -> None:
    deltas = stream([text], start_in_reasoning=start_in_reasoning)
    merged: list[Any] = []
    for delta in deltas:  # adjacent text pieces may come apart or together: compare them merged
        key = next(iter(delta))
        if key == "tool_calls":
            merged.append("call")
        elif merged and isinstance(merged[-1], dict) and key in merged[-1]:
            merged[-1] = {key: merged[-1][key] + delta[key]}
        else:
            merged.append(dict(delta))
    assert merged == expected
    assert comparable(fold(deltas)) == comparable(native_message(text, start_in_reasoning=start_in_reasoning))


def test_native_tool_calls_holds_content_until_the_end_only_when_the_prompt_is_unknown() -> None:
    """Unknown prompt: a lone ``</think>`` may still turn the text so far into reasoning, so it waits."""
    unknown, known = NativeToolCalls(), NativeToolCalls(start_in_reasoning=False)
    assert (unknown.feed("Hello "), unknown.feed("world"), unknown.finish()) == ([], [], [{"content": "Hello world"}])
    assert (known.feed("Hello "), known.feed("world"), known.finish()) == ([{"content": "Hello"}],
                                                                           [{"content": " world"}], [])


def test_native_tool_calls_max_calls_drops_later_calls_alike_whole_and_streamed() -> None:
    """OpenAI's parallel_tool_calls false (the transformers server): the first call only, the text around kept."""
    text = f"Let me check.\n{PARIS}\n{TOKYO}"
    expected = expected_message("Let me check.", None, [call("get_weather", {"city": "Paris"})])
    assert comparable(native_message(text, max_calls=1)) == expected
    assert comparable(fold(stream(list(text), max_calls=1))) == expected
    native = NativeToolCalls(max_calls=1)
    native.feed(text)
    native.finish()
    assert native.calls == 1
