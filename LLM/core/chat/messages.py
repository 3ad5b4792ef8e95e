"""The message list a request sends: the request's history or system + prompt, kept within the usable context.

Fitting asks the engine for exact token counts (``count``: llama-server's /apply-template + /tokenize)
only when a cheap upper bound says the history may not fit; engines that cannot count get the
3.5-characters-a-token estimate.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import ModelEntry
from .params import InferenceConfig

TokenCounter = Callable[[list[dict[str, Any]]], Awaitable["int | None"]]
# Chat templates add role markers and separators around each message.
TEMPLATE_TOKENS_PER_MESSAGE = 8


def build_messages(cfg: InferenceConfig, entry: ModelEntry) -> list[dict[str, Any]]:
    """The message list to send: the request's history, or system + prompt (not yet fitted to the context)."""
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
    return messages


def completion_prompt(cfg: InferenceConfig) -> str:
    """What a base model continues: the prompt as written (a history is joined as plain text, no template)."""
    if cfg.prompt is not None and not cfg.messages:
        return cfg.prompt
    parts = [str(m.get("content") or "") for m in cfg.messages or [] if m.get("role") != "system"]
    if cfg.prompt:
        parts.append(cfg.prompt)
    return "\n\n".join(parts)


async def fit_to_context(
    messages: list[dict[str, Any]], budget: int, count: TokenCounter | None = None
) -> list[dict[str, Any]]:
    """Drop the oldest turns (never the system prompt or the last message) until the prompt fits ``budget``.

    Exact when ``count`` can count: the fewest turns are dropped whose remainder fits, found by bisection.
    """
    if upper_bound_tokens(messages) <= budget:
        return messages  # cannot overflow: no need to ask the engine
    exact = await count(messages) if count is not None else None
    if exact is None:
        return trim_to_context(messages, budget)
    if exact <= budget:
        return messages
    head, body = _split_head(messages)
    cuts = _cut_points(body)
    low, high = 0, len(cuts) - 1  # the last cut keeps only the last message: it is sent whatever it costs
    while low < high:
        middle = (low + high) // 2
        tokens = await count(head + body[cuts[middle] :])
        if tokens is not None and tokens <= budget:
            high = middle
        else:
            low = middle + 1
    return head + body[cuts[low] :]


def upper_bound_tokens(messages: list[dict[str, Any]]) -> int:
    """More tokens than any byte-level tokenizer makes of these messages (a token is at least one byte)."""
    total = 0
    for message in messages:
        total += len(_text(message).encode("utf-8")) + TEMPLATE_TOKENS_PER_MESSAGE
    return total


def estimate_tokens(message: dict[str, Any]) -> int:
    """Cheap estimate (about 3.5 characters a token), for engines that cannot count."""
    return int(len(_text(message)) / 3.5) + 4


def trim_to_context(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Drop the oldest turns (never the system prompt or the last message) until the estimate fits."""
    costs = [estimate_tokens(m) for m in messages]
    if sum(costs) <= budget:
        return messages
    head, body = _split_head(messages)
    head_cost = sum(costs[: len(head)])
    kept_cost = [0] * (len(body) + 1)  # kept_cost[i]: the estimate of body[i:], one pass (long chats)
    for i in range(len(body) - 1, -1, -1):
        kept_cost[i] = kept_cost[i + 1] + costs[len(head) + i]
    for cut in _cut_points(body):
        if kept_cost[cut] + head_cost <= budget:
            return head + body[cut:]
    return head + body[-1:]


def _split_head(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    head = [m for m in messages[:1] if m.get("role") == "system"]
    return head, messages[len(head) :]


def _cut_points(body: list[dict[str, Any]]) -> list[int]:
    """Where the kept history may start, fewest dropped first; a tool result never starts it (its call
    would be gone, which confuses every template). The last point keeps only the last message."""
    cuts = [i for i in range(len(body)) if i == 0 or body[i].get("role") != "tool"]
    last = len(body) - 1
    return [c for c in cuts if c < last] + [last]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content) if content else ""
    calls = message.get("tool_calls")
    return text + (json.dumps(calls) if calls else "")
