"""The transformers server's request checks: message_problems (pure) and the request models."""

from __future__ import annotations

from typing import Any

import pytest

from LLM.core.servers.hf_requests import (
    DEFAULT_COMPLETION_TOKENS,
    ChatRequest,
    CompletionRequest,
    message_problems,
)

USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([USER], []),
        ([{"role": "system", "content": "be brief"}, USER, {"role": "assistant", "content": "ok"}], []),
        ([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}], []),
        ([USER, {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "1", "content": "42"}], []),
        ("hello", ["messages: must be a list of message objects; got str"]),
        (None, ["messages: must be a list of message objects; got null"]),
        ([], ["messages: must not be empty"]),
        ([USER, "hi"], ["messages[1]: must be an object; got str"]),
        ([USER, {"role": "bogus"}],
         ["messages[1].role: must be one of system, user, assistant, tool; got 'bogus'"]),
        ([{"content": "no role"}], ["messages[0].role: is required (one of system, user, assistant, tool)"]),
        ([{"role": "user"}], ["messages[0].content: is required for role 'user'"]),
        ([{"role": "assistant", "content": None}], ["messages[0].content: is required for role 'assistant'"]),
        ([{"role": "tool", "tool_call_id": "1"}], ["messages[0].content: is required for role 'tool'"]),
        ([{"role": "user", "content": 5}],
         ["messages[0].content: must be a string or a list of content parts; got int"]),
        ([{"role": "user", "content": [{"text": "a"}, "b", {"type": "text"}]}],
         ["messages[0].content[0].type: is required (a string such as 'text')",
          "messages[0].content[1]: must be an object; got str",
          "messages[0].content[2].text: is required for a text part (a string)"]),
        ([{"role": "assistant", "content": "", "tool_calls": [{"function": {}}]}],
         ["messages[0].tool_calls[0].function.name: is required (a string)"]),
        ([{"role": "assistant", "content": "", "tool_calls": "f()"}],
         ["messages[0].tool_calls: must be a list; got str"]),
        ([{"role": "user", "content": "hi", "name": 3}], ["messages[0].name: must be a string; got int"]),
        ([{"role": "user"}, {"role": "x", "content": "y"}],
         ["messages[0].content: is required for role 'user'",
          "messages[1].role: must be one of system, user, assistant, tool; got 'x'"]),
    ],
    ids=["one-user-turn", "system-user-assistant", "content-parts", "tool-call-round", "not-a-list", "null",
         "empty", "message-not-object", "bogus-role", "missing-role", "user-without-content",
         "assistant-without-content-or-tool-calls", "tool-without-content", "content-not-text",
         "bad-content-parts", "tool-call-without-name", "tool-calls-not-list", "name-not-string",
         "every-problem-reported"],
)
def test_message_problems_names_the_problem_and_where(messages: Any, expected: list[str]) -> None:
    assert message_problems(messages) == expected


@pytest.mark.parametrize(
    ("body", "prompt", "max_tokens", "stop"),
    [
        ({"prompt": "abc"}, "abc", DEFAULT_COMPLETION_TOKENS, []),
        ({"prompt": ["abc"], "max_tokens": 3, "stop": "x"}, "abc", 3, ["x"]),
        ({"prompt": ["a", "b"]}, None, DEFAULT_COMPLETION_TOKENS, []),
    ],
    ids=["string", "list-of-one", "list-of-two-is-refused"],
)
def test_completion_request_takes_one_prompt_and_openai_default_max_tokens(
    body: dict[str, Any], prompt: str | None, max_tokens: int, stop: list[str]
) -> None:
    request = CompletionRequest.model_validate(body)
    params = request.sampling()
    assert (request.prompt_text, params.max_tokens, params.stop) == (prompt, max_tokens, stop)


TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        ({}, False),
        ({"tools": []}, False),
        ({"tools": TOOLS}, True),
        ({"tools": TOOLS, "tool_choice": "auto"}, True),
        ({"tools": TOOLS, "tool_choice": "required"}, True),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}}, True),
        ({"tools": TOOLS, "tool_choice": "none"}, False),
    ],
    ids=["no-tools", "empty-tools", "tools", "auto", "required", "named", "none"],
)
def test_chat_request_native_tools_with_tools_unless_tool_choice_is_none(body: dict[str, Any], parsed: bool) -> None:
    request = ChatRequest.model_validate({"messages": [USER], **body})
    assert request.native_tools == (TOOLS if parsed else None)
