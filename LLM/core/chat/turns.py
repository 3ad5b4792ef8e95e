"""The chat turns of tool use, built in one place (pure): an assistant turn with its calls and a turn per result,
natively (``tool_calls`` and ``role: tool``) or as text (``<tool_call>`` / ``<tool_response>``, the Hermes/Qwen
form that any chat template renders); and a saved answer as the turns that go back as history."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..events import ToolCall
from .parts import TextPart, ToolCard

if TYPE_CHECKING:
    from .conversation import Message


def assistant_message(text: str, calls: list[ToolCall], native: bool) -> dict[str, Any]:
    """The assistant turn as history: native calls as ``tool_calls``; fallback keeps its raw tagged text."""
    if native:
        return {"role": "assistant", "content": text or None, "tool_calls": [c.to_openai() for c in calls]}
    return {"role": "assistant", "content": text}


def tool_result_message(call: ToolCall, output: str, native: bool) -> dict[str, Any]:
    """One result. Native: ``role: tool`` with the call id. Fallback: a user turn with <tool_response>,
    as the Hermes/Qwen templates render it, which any chat template accepts."""
    if native:
        return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": output}
    return _tool_response(output)


def raw_call_text(call: ToolCall) -> str:
    """A fallback call as the model wrote it, for the assistant turn in history."""
    return _tagged_call(call.name, call.arguments)


def text_tool_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A history's native tool turns in the text form (``<tool_call>`` / ``<tool_response>``), for requests
    that send no tools: any chat template renders it, and the model still sees what it called and got."""
    if not any(m.get("tool_calls") or m.get("role") == "tool" for m in messages):
        return messages
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "tool":
            out.append(_tool_response(message.get("content") or ""))
        elif message.get("tool_calls"):
            calls = [_call_text(c) for c in message["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join(filter(None, [message.get("content") or "", *calls]))})
        else:
            out.append(message)
    return out


def tool_result_text(card: ToolCard) -> str:
    """What the model was shown as the result (as ToolResult.text words it)."""
    if card.ok is None:
        return "Error: the call did not finish (the answer was stopped)"
    return card.output if card.ok else f"Error: {card.error}"


def answer_turns(message: Message) -> list[dict[str, Any]]:
    """One saved answer as chat turns: per tool step, the text before its calls plus the calls (native form),
    then the results; then the final text."""
    turns: list[dict[str, Any]] = []
    text: list[str] = []
    cards: list[ToolCard] = []

    def flush_calls() -> None:
        if not cards:
            return
        content = "\n\n".join(t for t in text if t)
        # An id the engine never gave (a fallback call) is made up, unique within this answer, to pair the turns.
        calls = [ToolCall(card.name, card.arguments, card.call_id or f"call_{len(turns)}_{i}")
                 for i, card in enumerate(cards)]
        turns.append(assistant_message(content, calls, native=True))
        turns.extend(tool_result_message(call, tool_result_text(card), native=True) for call, card in zip(calls, cards))
        text.clear()
        cards.clear()

    for part in message.parts:
        if isinstance(part, ToolCard):
            if cards and part.iteration != cards[-1].iteration:
                flush_calls()
            cards.append(part)
        elif isinstance(part, TextPart):
            flush_calls()
            if part.text.strip("\n"):
                text.append(part.text.strip("\n"))
    flush_calls()
    if text:
        turns.append({"role": "assistant", "content": "\n\n".join(text)})
    return turns


def _tool_response(output: str) -> dict[str, Any]:
    return {"role": "user", "content": f"<tool_response>\n{output}\n</tool_response>"}


def _tagged_call(name: Any, arguments: Any) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _call_text(entry: dict[str, Any]) -> str:
    function = entry.get("function") or {}
    arguments = function.get("arguments")
    try:
        decoded = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        decoded = arguments
    return _tagged_call(function.get("name"), decoded)
