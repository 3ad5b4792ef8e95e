"""The chat turns of tool use, native and as text, and a saved answer as history turns (pure, table-driven)."""

from __future__ import annotations

import pytest

from LLM.core.chat.conversation import Message
from LLM.core.chat.parts import Notice, TextPart, ToolCard
from LLM.core.chat.turns import (
    answer_turns,
    assistant_message,
    raw_call_text,
    text_tool_turns,
    tool_result_message,
    tool_result_text,
)
from LLM.core.events import ToolCall

ADD = ToolCall("calculator", {"expression": "2+3"}, "c1")
ADD_ENTRY = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+3"}'}}
ADD_TAGGED = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'


@pytest.mark.parametrize(
    "text, calls, native, expected",
    [
        pytest.param("", [ADD], True, {"role": "assistant", "content": None, "tool_calls": [ADD_ENTRY]},
                     id="native-no-text-is-null-content"),
        pytest.param("Let me add.", [ADD], True,
                     {"role": "assistant", "content": "Let me add.", "tool_calls": [ADD_ENTRY]}, id="native-with-text"),
        pytest.param(ADD_TAGGED, [], False, {"role": "assistant", "content": ADD_TAGGED}, id="fallback-raw-text"),
    ],
)
def test_turns_assistant_message(text, calls, native, expected):
    assert assistant_message(text, calls, native) == expected


@pytest.mark.parametrize(
    "native, expected",
    [
        pytest.param(True, {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "5"}, id="native"),
        pytest.param(False, {"role": "user", "content": "<tool_response>\n5\n</tool_response>"}, id="fallback"),
    ],
)
def test_turns_tool_result_message(native, expected):
    assert tool_result_message(ADD, "5", native) == expected


def test_turns_raw_call_text_is_the_tagged_form():
    assert raw_call_text(ToolCall("echo", {"text": "é"})) == '<tool_call>\n{"name": "echo", "arguments": {"text": "é"}}\n</tool_call>'


@pytest.mark.parametrize(
    "messages, expected",
    [
        pytest.param([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                     [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                     id="no-tool-turns-unchanged"),
        pytest.param(
            [{"role": "user", "content": "2+3?"},
             {"role": "assistant", "content": None, "tool_calls": [ADD_ENTRY]},
             {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "5"},
             {"role": "assistant", "content": "It is 5."}],
            [{"role": "user", "content": "2+3?"},
             {"role": "assistant", "content": ADD_TAGGED},
             {"role": "user", "content": "<tool_response>\n5\n</tool_response>"},
             {"role": "assistant", "content": "It is 5."}],
            id="native-call-and-result-as-text"),
        pytest.param(
            [{"role": "assistant", "content": "Let me see.", "tool_calls": [
                {**ADD_ENTRY, "function": {"name": "calculator", "arguments": "{not json"}}]}],
            [{"role": "assistant",
              "content": 'Let me see.\n<tool_call>\n{"name": "calculator", "arguments": "{not json"}\n</tool_call>'}],
            id="text-kept-and-bad-arguments-passed-as-given"),
    ],
)
def test_turns_text_tool_turns(messages, expected):
    assert text_tool_turns(messages) == expected


@pytest.mark.parametrize(
    "card, expected",
    [
        pytest.param(ToolCard(1, "calculator", {}, "native", ok=True, output="5"), "5", id="ok-output"),
        pytest.param(ToolCard(1, "calculator", {}, "native", ok=False, error="bad expression"),
                     "Error: bad expression", id="failed-error"),
        pytest.param(ToolCard(1, "calculator", {}, "native"),
                     "Error: the call did not finish (the answer was stopped)", id="unfinished-stopped"),
    ],
)
def test_turns_tool_result_text(card, expected):
    assert tool_result_text(card) == expected


def card(iteration: int, call_id: str | None, output: str, source: str = "native") -> ToolCard:
    return ToolCard(iteration, "calculator", {"expression": output}, source, call_id, True, output)


def call_entry(call_id: str, expression: str) -> dict:
    arguments = f'{{"expression": "{expression}"}}'
    return {"id": call_id, "type": "function", "function": {"name": "calculator", "arguments": arguments}}


def result(call_id: str, output: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": "calculator", "content": output}


@pytest.mark.parametrize(
    "parts, expected",
    [
        pytest.param([TextPart("Hello.\n")], [{"role": "assistant", "content": "Hello."}], id="text-only"),
        pytest.param(
            [TextPart("Let me see."), card(1, "a", "2"), card(1, "b", "4"), TextPart("2 and 4.")],
            [{"role": "assistant", "content": "Let me see.", "tool_calls": [call_entry("a", "2"), call_entry("b", "4")]},
             result("a", "2"), result("b", "4"), {"role": "assistant", "content": "2 and 4."}],
            id="one-step-two-calls-then-text"),
        pytest.param(
            [card(1, "a", "2"), card(2, "b", "4")],
            [{"role": "assistant", "content": None, "tool_calls": [call_entry("a", "2")]}, result("a", "2"),
             {"role": "assistant", "content": None, "tool_calls": [call_entry("b", "4")]}, result("b", "4")],
            id="steps-split-without-text-between"),
        pytest.param(
            [card(1, None, "2", "fallback"), Notice("repeated_call", "careful"), TextPart("Done.")],
            [{"role": "assistant", "content": None, "tool_calls": [call_entry("call_0_0", "2")]},
             result("call_0_0", "2"), {"role": "assistant", "content": "Done."}],
            id="fallback-call-gets-an-id-and-notices-are-not-turns"),
    ],
)
def test_turns_answer_turns(parts, expected):
    assert answer_turns(Message("assistant", parts)) == expected
