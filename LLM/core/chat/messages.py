"""The message list a request sends: the request's history or system + prompt, kept within the usable context."""

from __future__ import annotations

from typing import Any

from ..config import ModelEntry
from .params import InferenceConfig


def build_messages(cfg: InferenceConfig, entry: ModelEntry) -> list[dict[str, Any]]:
    """The message list to send: the request's history, or system + prompt."""
    system = cfg.system_prompt if cfg.system_prompt is not None else entry.system_prompt
    if cfg.messages:
        messages = [dict(m) for m in cfg.messages]
        if system and messages[0].get("role") != "system":
            messages.insert(0, {"role": "system", "content": system})
        if cfg.prompt:
            messages.append({"role": "user", "content": cfg.prompt})
    else:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": cfg.prompt or ""})
    return trim_to_context(messages, entry.effective_usable_context)


def estimate_tokens(message: dict[str, Any]) -> int:
    """Cheap estimate (about 3.5 characters a token) used only to keep history within the context."""
    text = str(message.get("content") or "") + str(message.get("tool_calls") or "")
    return int(len(text) / 3.5) + 4


def trim_to_context(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Drop the oldest turns (never the system prompt or the last message) until the estimate fits."""
    total = sum(estimate_tokens(m) for m in messages)
    if total <= budget:
        return messages
    head = [m for m in messages[:1] if m.get("role") == "system"]
    body = messages[len(head) :]
    while len(body) > 1 and total > budget:
        dropped = body.pop(0)
        total -= estimate_tokens(dropped)
        # A tool result without its assistant call confuses every template: drop them together.
        while len(body) > 1 and body[0].get("role") == "tool":
            total -= estimate_tokens(body.pop(0))
    return head + body
