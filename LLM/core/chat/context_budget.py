"""The context budget, in one place: what a message costs in tokens, and fitting to the usable context both a
request's history (the oldest turns give way) and the tool loop's results (cut, then left out) (pure).

Fitting a request asks the engine for exact counts (``count``: llama-server's /apply-template + /tokenize) only
when a cheap upper bound says it may not fit; engines that cannot count, and the loop's results, get the one
estimate below.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..events import ToolCall
from .turns import tool_result_message

TokenCounter = Callable[[list[dict[str, Any]]], Awaitable["int | None"]]
# The estimate: UTF-8 bytes / 3. What fills a context is code, JSON, logs and tool output, which tokenizers cut
# at about 3 bytes a token (prose runs nearer 4): erring towards more tokens keeps an estimated prompt inside.
BYTES_PER_TOKEN = 3
# Chat templates add role markers and separators around each message.
TEMPLATE_TOKENS_PER_MESSAGE = 8
# What an image costs, until the engine counts it: vision encoders give from 64 (SmolVLM) to about 1000 tokens
# (Qwen2-VL at 1024 px); this errs high for the small models this workbench starts with. Never its base64's length.
IMAGE_TOKENS_ESTIMATE = 256


def estimate_tokens(message: dict[str, Any]) -> int:
    """The estimated cost of one message, for engines that cannot count (see BYTES_PER_TOKEN)."""
    return len(_text(message).encode("utf-8")) // BYTES_PER_TOKEN + TEMPLATE_TOKENS_PER_MESSAGE


def has_images(messages: list[dict[str, Any]]) -> bool:
    """Whether a message sends an image part (an engine's exact count, which leaves images out, cannot decide)."""
    return any(isinstance(m.get("content"), list) and any(isinstance(p, dict) and p.get("type") == "image_url"
                                                          for p in m["content"]) for m in messages)


def upper_bound_tokens(messages: list[dict[str, Any]]) -> int:
    """More tokens than any byte-level tokenizer makes of these messages (a token is at least one byte)."""
    return sum(len(_text(m).encode("utf-8")) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages)


# ----- a request's history -----
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
    if isinstance(content, list):  # parts: text as it is, an image as its estimate
        text = "".join(str(p.get("text") or "") if p.get("type") == "text" else
                       "x" * (IMAGE_TOKENS_ESTIMATE * BYTES_PER_TOKEN) if p.get("type") in ("image_url", "attachment")
                       else json.dumps(p) for p in content if isinstance(p, dict))
    else:
        text = content if isinstance(content, str) else json.dumps(content) if content else ""
    calls = message.get("tool_calls")
    return text + (json.dumps(calls) if calls else "")


# ----- the tool loop's results -----
# Estimated, not counted: an exact count costs an engine round trip per try, and the request built from these
# turns is fitted again (exactly, where the engine counts) before it is sent.
RESULT_SHARE = 2  # one result may take at most half the usable context
MIN_RESULT_BYTES = 200  # what a result keeps even when nothing else fits
CONTEXT_MARGIN = 0.9  # the estimate is not exact: fill at most this share of the usable context


@dataclass(frozen=True)
class SentResult:
    """A tool result in the loop's history: where, and all of it (the model may get less)."""

    index: int
    call: ToolCall
    text: str
    native: bool
    iteration: int


def cut_text(text: str, max_bytes: int) -> str:
    """``text`` within ``max_bytes`` (UTF-8), saying it was cut and how much was left out."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    head = text.encode("utf-8")[: max(0, max_bytes - 120)].decode("utf-8", "ignore")
    return (f"{head}\n[cut to fit the model's context: the first {len(head):,} of {len(text):,} characters are "
            f"shown, {len(text) - len(head):,} characters were left out]")


def fit_results(
    history: list[dict[str, Any]], own_start: int, sent: list[SentResult], iteration: int, budget: int,
    reserve: int,
) -> None:
    """Rewrite the results in ``history`` so that the system prompt, the user's question and the loop's own turns
    fit the usable context (``budget`` tokens, less ``reserve`` for the tool descriptions).

    Each result gets at most a share of the context; if that is still too much, results of earlier steps are left
    out, oldest first, then this step's results share what is left. Older conversation turns are not counted: the
    request's fit_to_context drops those first. The user's question (the caller's last message) is never what gives
    way, and every call keeps its result message, so templates still pair them.
    """
    system = [m for m in history[:1] if m.get("role") == "system" and own_start > 1]
    pinned = system + history[own_start - 1 : own_start]  # the system prompt and the user's question
    room = int(budget * CONTEXT_MARGIN) - reserve
    limit = max(MIN_RESULT_BYTES, budget * BYTES_PER_TOKEN // RESULT_SHARE)

    def show(entry: SentResult, text: str) -> None:
        history[entry.index] = tool_result_message(entry.call, text, entry.native)

    def used() -> int:
        return sum(estimate_tokens(m) for m in pinned + history[own_start:])

    for entry in sent:
        show(entry, cut_text(entry.text, limit))
    for entry in sent:
        if entry.iteration == iteration or used() <= room:
            break
        show(entry, f"[the result of {entry.call.name} ({len(entry.text):,} characters) was left out to fit the "
                    "model's context]")
    current = [e for e in sent if e.iteration == iteration]
    over = used() - room
    if over > 0 and current:
        share = max(MIN_RESULT_BYTES, (sum(len(history[e.index]["content"].encode("utf-8")) for e in current)
                                       - over * BYTES_PER_TOKEN) // len(current))
        for entry in current:
            show(entry, cut_text(entry.text, min(limit, share)))
