"""ChatML, the prompt format used when a server cannot render the model's own chat template (pure)."""

from __future__ import annotations

from typing import Any


def render_chatml(messages: list[dict[str, Any]]) -> str:
    """``<|im_start|>role\\ntext<|im_end|>`` per message, then an open assistant turn (tools are not rendered)."""
    parts = [f"<|im_start|>{m.get('role', 'user')}\n{message_text(m)}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def message_text(message: dict[str, Any]) -> str:
    """OpenAI content may be a string, null, or a list of parts; only text parts matter here."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
