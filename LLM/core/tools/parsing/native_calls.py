"""A model's raw assistant text as OpenAI native ``tool_calls``: streamed ``delta`` dicts or a whole message (pure).

What an OpenAI-compatible server (or a proxy in front of one) sends when the model writes its calls as
``<tool_call>`` text: the parser's content, its ``<think>`` text as ``reasoning_content`` (as llama-server
reports reasoning) and each call once its block closes, whole, as one ``tool_calls`` delta (valid OpenAI
streaming; the parser never returns truncated calls). The deltas for any chunking of a text fold into
:func:`native_message` of that text, call ids aside.
"""

from __future__ import annotations

from typing import Any

from ...events import TextDelta, ToolCall
from .output import ParserEvent
from .stream import ToolCallStreamParser, parse_tool_calls

__all__ = ["NativeToolCalls", "native_message"]


class NativeToolCalls:
    """A model's streamed assistant text -> OpenAI chat-completion ``delta`` dicts.

    A delta is ``{"content": str}``, ``{"reasoning_content": str}`` or ``{"tool_calls": [{"index": i, "id":
    "call_…", "type": "function", "function": {"name": …, "arguments": JSON string}}]}``, ``index`` counting
    calls from 0. ``tools`` (the request's OpenAI tool list) types Qwen3-Coder XML parameter values.

    ``start_in_reasoning``: as for :class:`ToolCallStreamParser`: True when the prompt ended with ``<think>``,
    False when it did not. None (the default) detects a lone leading ``</think>`` from the text itself, which
    holds all content back until a think tag or the end; pass True or False when the prompt is known.
    ``max_calls``: the most calls emitted (1 for OpenAI's ``parallel_tool_calls: false``); later ones are
    dropped, their text included. None: every call.
    """

    def __init__(self, tools: list[dict[str, Any]] | None = None, *, start_in_reasoning: bool | None = None,
                 max_calls: int | None = None) -> None:
        self._parser = ToolCallStreamParser(tools, start_in_reasoning)
        self._calls = 0
        self._max_calls = max_calls
        self._finished = False

    @property
    def calls(self) -> int:
        """How many tool calls were emitted so far."""
        return self._calls

    def feed(self, text: str) -> list[dict[str, Any]]:
        """Zero or more deltas for this piece of text."""
        return self._deltas(self._parser.feed(text))

    def finish(self) -> list[dict[str, Any]]:
        """End of stream: the deltas still held back (a partial tag, an unclosed but complete call). Once."""
        if self._finished:
            return []
        self._finished = True
        self._parser.finish()
        return self._deltas(self._parser.final_events)

    def _deltas(self, events: list[ParserEvent]) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        for event in events:
            if type(event) is ToolCall:
                if self._max_calls is None or self._calls < self._max_calls:
                    deltas.append({"tool_calls": [{"index": self._calls, **event.to_openai()}]})
                    self._calls += 1
                continue
            key = "content" if type(event) is TextDelta else "reasoning_content"
            if deltas and key in deltas[-1]:  # the parser's per-tag pieces, sent as one delta
                deltas[-1][key] += event.text
            else:
                deltas.append({key: event.text})
        return deltas


def native_message(
    text: str, tools: list[dict[str, Any]] | None = None, *, start_in_reasoning: bool | None = None,
    max_calls: int | None = None,
) -> dict[str, Any]:
    """A whole assistant text as an OpenAI chat-completion ``message``.

    ``{"role": "assistant", "content": …, "tool_calls": [...]}``: ``tool_calls`` only when there are calls,
    ``content`` None when it is empty and there are calls, ``reasoning_content`` only when there was reasoning.
    ``start_in_reasoning`` and ``max_calls``: as for :class:`NativeToolCalls`.
    """
    result = parse_tool_calls(text, tools, start_in_reasoning=start_in_reasoning)
    calls = result.calls if max_calls is None else result.calls[:max_calls]
    message: dict[str, Any] = {"role": "assistant", "content": result.content or (None if calls else "")}
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if calls:
        message["tool_calls"] = [call.to_openai() for call in calls]
    return message
