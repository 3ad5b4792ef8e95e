"""The fallback tool prompt: the tool list in the system message (pure, table-driven)."""

from __future__ import annotations

import pytest

from LLM.core.tools.prompts import fallback_tool_prompt, with_tool_prompt

TOOLS = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]
PROMPT = fallback_tool_prompt(TOOLS)


def test_prompts_fallback_tool_prompt_lists_each_tool_in_the_hermes_wording():
    assert '<tools>\n{"type": "function", "function": {"name": "calculator"' in PROMPT
    assert PROMPT.endswith('{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


@pytest.mark.parametrize(
    "messages, expected",
    [
        pytest.param([{"role": "user", "content": "hi"}],
                     [{"role": "system", "content": PROMPT}, {"role": "user", "content": "hi"}], id="no-system-added"),
        pytest.param([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                     [{"role": "system", "content": f"Be brief.\n\n{PROMPT}"}, {"role": "user", "content": "hi"}],
                     id="appended-to-system"),
        pytest.param([{"role": "system", "content": None}], [{"role": "system", "content": PROMPT}],
                     id="empty-system-replaced"),
    ],
)
def test_prompts_with_tool_prompt(messages, expected):
    assert with_tool_prompt(messages, TOOLS) == expected
