"""Tool turns in history: the text form that requests without `tools` send (pure, table-driven)."""

from __future__ import annotations

import pytest

from LLM.core.tools.prompts import text_tool_turns

CALL = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+3"}'}}


@pytest.mark.parametrize(
    "messages, expected",
    [
        pytest.param([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                     [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                     id="no-tool-turns-unchanged"),
        pytest.param(
            [{"role": "user", "content": "2+3?"},
             {"role": "assistant", "content": None, "tool_calls": [CALL]},
             {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "5"},
             {"role": "assistant", "content": "It is 5."}],
            [{"role": "user", "content": "2+3?"},
             {"role": "assistant",
              "content": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'},
             {"role": "user", "content": "<tool_response>\n5\n</tool_response>"},
             {"role": "assistant", "content": "It is 5."}],
            id="native-call-and-result-as-text"),
        pytest.param(
            [{"role": "assistant", "content": "Let me see.", "tool_calls": [
                {**CALL, "function": {"name": "calculator", "arguments": "{not json"}}]}],
            [{"role": "assistant",
              "content": 'Let me see.\n<tool_call>\n{"name": "calculator", "arguments": "{not json"}\n</tool_call>'}],
            id="text-kept-and-bad-arguments-passed-as-given"),
    ],
)
def test_prompts_text_tool_turns(messages, expected):
    assert text_tool_turns(messages) == expected
