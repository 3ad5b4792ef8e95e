"""The context budget: the one token estimate, fitting a request's history, fitting the tool loop's results (pure)."""

from __future__ import annotations

import asyncio
import json

import pytest

from LLM.core.chat.context_budget import (
    SentResult,
    cut_text,
    estimate_tokens,
    fit_results,
    fit_to_context,
    trim_to_context,
    upper_bound_tokens,
)
from LLM.core.chat.turns import assistant_message, tool_result_message
from LLM.core.events import ToolCall

ENTRY = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+3"}'}}


@pytest.mark.parametrize(
    "message, expected",
    [
        pytest.param({"role": "user", "content": ""}, 8, id="empty-costs-the-template-markers"),
        pytest.param({"role": "assistant", "content": None}, 8, id="null-content"),
        pytest.param({"role": "user", "content": "x" * 30}, 10 + 8, id="three-bytes-a-token"),
        pytest.param({"role": "user", "content": "é" * 3}, 2 + 8, id="bytes-not-characters"),
        pytest.param({"role": "user", "content": [{"type": "text", "text": "x" * 30}, {"type": "text", "text": "yyy"}]},
                     11 + 8, id="text-parts-as-their-text"),
        pytest.param({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                                                      + "A" * 300_000}}]},
                     256 + 8, id="an-image-as-its-estimate-not-its-base64"),
        pytest.param({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA"}}]},
                     len(json.dumps({"type": "input_audio", "input_audio": {"data": "AAAA"}})) // 3 + 8,
                     id="other-parts-as-json"),
        pytest.param({"role": "assistant", "content": "ok", "tool_calls": [ENTRY]},
                     len("ok" + json.dumps([ENTRY])) // 3 + 8, id="tool-calls-count"),
    ],
)
def test_context_budget_estimate_tokens(message, expected):
    assert estimate_tokens(message) == expected


def test_context_budget_upper_bound_is_above_the_estimate():
    messages = [{"role": "user", "content": "héllo wörld " * 20}, {"role": "assistant", "content": "", "tool_calls": [ENTRY]}]
    assert upper_bound_tokens(messages) >= sum(estimate_tokens(m) for m in messages)


def turn(role: str, name: str) -> dict:
    """A message the estimate puts at 18 tokens (30 bytes), named by its first characters."""
    return {"role": role, "content": name.ljust(30, ".")}


S, U1, A1, T1, A2, U2 = (turn("system", "S"), turn("user", "U1"), turn("assistant", "A1"), turn("tool", "T1"),
                         turn("assistant", "A2"), turn("user", "U2"))


@pytest.mark.parametrize(
    "messages, budget, expected",
    [
        pytest.param([S, U1, A2, U2], 18 * 4, [S, U1, A2, U2], id="fits-unchanged"),
        pytest.param([S, U1, A2, U2], 18 * 3, [S, A2, U2], id="oldest-turn-goes-system-stays"),
        pytest.param([S, U1, A1, T1, A2, U2], 18 * 4, [S, A2, U2], id="a-tool-result-never-starts-the-history"),
        pytest.param([S, U1, A2, U2], 5, [S, U2], id="the-last-message-goes-whatever-it-costs"),
        pytest.param([U1, A2, U2], 18 * 2, [A2, U2], id="no-system-prompt"),
    ],
)
def test_context_budget_trim_to_context(messages, budget, expected):
    assert trim_to_context(messages, budget) == expected


class Counter:
    """An engine's exact count: ``per_message`` tokens a message; remembers how often it was asked."""

    def __init__(self, per_message: int | None) -> None:
        self.per_message = per_message
        self.asked = 0

    async def __call__(self, messages: list[dict]) -> int | None:
        self.asked += 1
        return None if self.per_message is None else self.per_message * len(messages)


@pytest.mark.parametrize(
    "per_message, budget, kept, asked",
    [
        pytest.param(10, 10_000, 7, 0, id="under-the-upper-bound-the-engine-is-not-asked"),
        pytest.param(10, 100, 7, 1, id="exact-count-fits-though-the-bound-does-not"),
        pytest.param(10, 45, 4, 1 + 3, id="fewest-turns-dropped-by-bisection"),
        pytest.param(None, 18 * 3, 3, 1, id="engine-cannot-count-the-estimate-trims"),
    ],
)
def test_context_budget_fit_to_context(per_message, budget, kept, asked):
    messages = [S] + [turn("user" if i % 2 == 0 else "assistant", f"M{i}") for i in range(6)]
    counter = Counter(per_message)
    fitted = asyncio.run(fit_to_context(messages, budget, counter))
    assert fitted == [S] + messages[len(messages) - kept + 1 :]
    assert counter.asked == asked


@pytest.mark.parametrize(
    "text, max_bytes, kept",
    [
        pytest.param("short", 100, "short", id="within-unchanged"),
        pytest.param("x" * 1000, 300, "x" * 180, id="cut-leaves-room-for-the-note"),
        pytest.param("é" * 200, 201, "é" * 40, id="never-half-a-character"),
    ],
)
def test_context_budget_cut_text(text, max_bytes, kept):
    out = cut_text(text, max_bytes)
    assert out.startswith(kept)
    if out != text:
        assert out == (f"{kept}\n[cut to fit the model's context: the first {len(kept):,} of {len(text):,} characters "
                       f"are shown, {len(text) - len(kept):,} characters were left out]")
        assert len(out.encode("utf-8")) <= max_bytes


QUESTION = {"role": "user", "content": "What is in the logs?"}


def loop_history(sizes: list[int], native: bool = True) -> tuple[list[dict], list[SentResult]]:
    """The caller's question, then one step per size: an assistant call and its (whole) result."""
    history, sent = [QUESTION], []
    for step, size in enumerate(sizes, start=1):
        call = ToolCall("read_log", {"step": step}, f"c{step}")
        history.append(assistant_message("", [call], native))
        history.append(tool_result_message(call, "y" * size, native))
        sent.append(SentResult(len(history) - 1, call, "y" * size, native, step))
    return history, sent


@pytest.mark.parametrize("native", [True, False], ids=["native", "fallback"])
def test_context_budget_fit_results_cuts_a_huge_result_to_its_share(native):
    history, sent = loop_history([100_000], native)
    fit_results(history, 1, sent, 1, budget=2048, reserve=0)
    shown = history[-1]["content"]
    assert len(shown.encode("utf-8")) <= 2048 * 3 // 2 + 40  # half the context (+ the fallback's tags)
    assert f"of {100_000:,} characters" in shown and "left out" in shown
    assert history[0] == QUESTION and history[-1]["role"] == ("tool" if native else "user")


def test_context_budget_fit_results_leaves_out_earlier_steps_first():
    history, sent = loop_history([1_400, 1_400])
    fit_results(history, 1, sent, 2, budget=1000, reserve=0)
    assert history[2]["content"] == "[the result of read_log (1,400 characters) was left out to fit the model's context]"
    assert history[4]["content"] == "y" * 1_400  # this step's result is what the model needs next
    assert history[2]["tool_call_id"] == "c1"  # the call keeps its result turn: templates still pair them


def test_context_budget_fit_results_shares_what_is_left_within_one_step():
    history, sent = loop_history([1_400])
    fit_results(history, 1, sent, 1, budget=1000, reserve=600)
    assert history[0] == QUESTION
    assert "left out" in history[-1]["content"]
    assert sum(estimate_tokens(m) for m in history) <= 1000 * 0.9 - 600  # the margin's share, less the reserve


def test_context_budget_fit_results_leaves_fitting_results_whole():
    history, sent = loop_history([100, 200])
    before = [dict(m) for m in history]
    fit_results(history, 1, sent, 2, budget=4096, reserve=100)
    assert history == before
