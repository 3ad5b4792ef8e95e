"""The pure conversation model behind the chat pages: history, branches, metrics, saving."""

from __future__ import annotations


import pytest

from LLM.core.chat.conversation import Conversation, Message, Notice, TextPart, ToolCard
from LLM.core.chat.metrics import Metrics, MetricsMeter


def answered(*turns: tuple[str, str, str]) -> Conversation:
    conversation = Conversation()
    for question, answer, status in turns:
        conversation.add_user(question)
        message = conversation.add_assistant("m")
        message.append_text(answer)
        message.status = status  # type: ignore[assignment]
    return conversation


@pytest.mark.parametrize(
    "turns, expected",
    [
        pytest.param([("q1", "a1", "done")], ["user:q1", "assistant:a1"], id="one-turn"),
        pytest.param([("q1", "partial", "stopped"), ("q2", "a2", "done")],
                     ["user:q1", "assistant:partial", "user:q2", "assistant:a2"], id="stopped-partial-kept"),
        # Never two user turns in a row (Gemma's and Mistral's templates reject that): the exchange goes.
        pytest.param([("q1", "half", "failed"), ("q2", "a2", "done")], ["user:q2", "assistant:a2"],
                     id="failed-exchange-left-out"),
        pytest.param([("q1", "", "stopped"), ("q2", "a2", "done")], ["user:q2", "assistant:a2"],
                     id="empty-exchange-left-out"),
    ],
)
def test_conversation_history(turns, expected):
    history = answered(*turns).history()
    assert [f"{m['role']}:{m['content']}" for m in history] == expected


def test_conversation_history_upto_leaves_out_the_answer_being_written():
    conversation = answered(("q1", "a1", "done"))
    conversation.add_user("q2")
    pending = conversation.add_assistant("m")
    assert conversation.history(upto=pending)[-1] == {"role": "user", "content": "q2"}


def test_conversation_regenerate_adds_a_sibling_branch():
    conversation = answered(("q1", "a1", "done"), ("q2", "old", "done"))
    old = conversation.last_assistant()
    new = conversation.regenerate("m")
    assert new.parent_id == old.parent_id and conversation.head == new.id
    assert [m.id for m in conversation.siblings(new)] == [old.id, new.id]
    assert old.id in conversation.nodes and old not in conversation.messages
    assert conversation.history(upto=new)[-1] == {"role": "user", "content": "q2"}


def test_conversation_regenerate_without_an_answer_is_refused():
    with pytest.raises(ValueError):
        Conversation().regenerate("m")


def test_conversation_text_after_a_tool_card_starts_a_new_part():
    message = Message("assistant")
    message.append_text("Let me ")
    message.append_text("compute.")
    message.parts.append(ToolCard(1, "calculator", {"expression": "2+3"}, "native", "c1", True, "5"))
    message.append_text("It is 5.")
    assert [type(p).__name__ for p in message.parts] == ["TextPart", "ToolCard", "TextPart"]
    assert message.content == "Let me compute.\n\nIt is 5."


def test_conversation_round_trips_through_a_dict():
    conversation = answered(("q1", "a1", "done"))
    answer = conversation.last_assistant()
    answer.parts += [ToolCard(1, "calculator", {"expression": "1+1"}, "fallback", "c", False, "", "boom", 2.5),
                     Notice("max_iterations", "stopped"), TextPart("after")]
    answer.reasoning = "hmm"
    answer.metrics = Metrics(12.0, 30.0, 5, 7, 100.0, "stop", 7)
    conversation.regenerate("m")
    conversation.always_allowed.add("write_file")
    conversation.settings.temperature = 0.7
    restored = Conversation.from_dict(conversation.to_dict())
    assert restored.to_dict() == conversation.to_dict()
    assert restored.nodes[answer.id].tool_cards[0].error == "boom"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_conversation_metrics_meter_times_first_token_and_rate():
    clock = FakeClock()
    meter = MetricsMeter(clock)
    clock.now += 0.5
    meter.delta()
    for _ in range(10):
        clock.now += 0.1
        meter.delta()
    meter.usage(20, 11)
    meter.usage(5, 4)  # a second tool-loop step adds up
    metrics = meter.snapshot("stop")
    assert metrics.time_to_first_token_ms == pytest.approx(500)
    assert metrics.tokens_per_second == pytest.approx(14 / 1.0)
    assert (metrics.prompt_tokens, metrics.completion_tokens, metrics.chunks) == (25, 15, 11)


@pytest.mark.parametrize(
    "metrics, expected",
    [
        pytest.param(Metrics(250, 31.25, 5, 7, 900, "stop"),
                     "0.25 s to first token  ·  31.2 tok/s  ·  5 prompt + 7 completion tokens  ·  finish: stop",
                     id="full"),
        pytest.param(Metrics(finish_reason="stopped"), "finish: stopped", id="stopped-before-first-token"),
        pytest.param(Metrics(100, None, None, None, 100, "length", chunks=3),
                     "0.10 s to first token  ·  3 chunks (no token usage reported)  ·  finish: length", id="no-usage"),
        pytest.param(Metrics(100, None, None, None, 100, "cancelled", chunks=3),
                     "0.10 s to first token  ·  3 chunks (stopped before the engine reported token usage)  ·  "
                     "finish: cancelled", id="stopped-before-usage"),
    ],
)
def test_conversation_metrics_summary(metrics, expected):
    assert metrics.summary() == expected


def test_conversation_tool_loop_rate_uses_request_time_not_wall_time():
    """Tool calls make tokens but no text, and tool runs take time: the rate is tokens over request time."""
    clock = FakeClock()
    meter = MetricsMeter(clock)
    meter.usage(10, 20, request_ms=500)  # a step that only called a tool
    clock.now += 3.0  # the tool ran
    meter.delta()
    clock.now += 0.01
    meter.delta()
    meter.usage(40, 10, request_ms=500)
    assert meter.snapshot("stop").tokens_per_second == pytest.approx(30.0)
