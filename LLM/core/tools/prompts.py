"""Messages for tool use: the Hermes/Qwen tool prompt for fallback mode, and history entries (pure)."""

from __future__ import annotations

import json
from typing import Any

from ..events import ToolCall

# The wording of the Qwen2.5 / Hermes chat templates, which models of that family were trained on.
_FALLBACK_HEADER = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
_FALLBACK_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def fallback_tool_prompt(tools: list[dict[str, Any]]) -> str:
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return _FALLBACK_HEADER + lines + _FALLBACK_FOOTER


def with_tool_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append the tool prompt to the system message (adding one when there is none)."""
    prompt = fallback_tool_prompt(tools)
    if messages and messages[0].get("role") == "system":
        system = str(messages[0].get("content") or "")
        return [{"role": "system", "content": f"{system}\n\n{prompt}" if system else prompt}, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


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
    return {"role": "user", "content": f"<tool_response>\n{output}\n</tool_response>"}


def raw_call_text(call: ToolCall) -> str:
    """A fallback call as the model wrote it, for the assistant turn in history."""
    return _tagged_call(call.name, call.arguments)


def _tagged_call(name: Any, arguments: Any) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def text_tool_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A history's native tool turns in the text form (``<tool_call>`` / ``<tool_response>``), for requests
    that send no tools: any chat template renders it, and the model still sees what it called and got."""
    if not any(m.get("tool_calls") or m.get("role") == "tool" for m in messages):
        return messages
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{message.get('content') or ''}\n</tool_response>"})
        elif message.get("tool_calls"):
            calls = [_call_text(c) for c in message["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join(filter(None, [message.get("content") or "", *calls]))})
        else:
            out.append(message)
    return out


def _call_text(entry: dict[str, Any]) -> str:
    function = entry.get("function") or {}
    arguments = function.get("arguments")
    try:
        decoded = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        decoded = arguments
    return _tagged_call(function.get("name"), decoded)
