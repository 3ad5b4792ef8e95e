"""The tool prompt of fallback mode: the tool list in the system prompt, as Hermes/Qwen models were trained on it
(pure). The chat turns of tool use are built in ``LLM.core.chat.turns``."""

from __future__ import annotations

import json
from typing import Any

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
