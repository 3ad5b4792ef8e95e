"""The pure conversation model behind the chat pages: history, branches, metrics, saving."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ----- history(): always well formed, tool answers as the model made them -----
def test_conversation_history_tool_answer_becomes_calls_results_and_text():
    conversation = Conversation(kind="tools")
    conversation.add_user("2+3 and 4*5?")
    answer = conversation.add_assistant("m")
    answer.parts = [
        TextPart("Let me compute."),
        ToolCard(1, "calculator", {"expression": "2+3"}, "native", "c1", True, "5"),
        ToolCard(1, "calculator", {"expression": "4*"}, "fallback", None, False, "", "syntax error"),
        Notice("loop_guard", "not sent to the model"),
        ToolCard(2, "calculator", {"expression": "4*5"}, "native", "c3"),  # still running when it stopped
        TextPart("5 and 20."),
    ]
    answer.status = "stopped"
    generated = "call_0_1"  # a call without an id gets one, the same in the call and in its result
    assert conversation.history() == [
        {"role": "user", "content": "2+3 and 4*5?"},
        {"role": "assistant", "content": "Let me compute.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+3"}'}},
            {"id": generated, "type": "function", "function": {"name": "calculator",
                                                               "arguments": '{"expression": "4*"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "5"},
        {"role": "tool", "tool_call_id": generated, "name": "calculator", "content": "Error: syntax error"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c3", "type": "function", "function": {"name": "calculator",
                                                          "arguments": '{"expression": "4*5"}'}}]},
        {"role": "tool", "tool_call_id": "c3", "name": "calculator",
         "content": "Error: the call did not finish (the answer was stopped)"},
        {"role": "assistant", "content": "5 and 20."},
    ]


def test_conversation_history_merges_questions_whose_answer_is_missing():
    """A question saved without any answer (the app was killed first) joins the next one: no two user turns."""
    conversation = Conversation()
    conversation.add_user("first")
    conversation.add_user("second")
    answer = conversation.add_assistant("m")
    answer.append_text("both")
    assert [(m["role"], m["content"]) for m in conversation.history()] == [("user", "first\n\nsecond"),
                                                                          ("assistant", "both")]


def test_conversation_history_follows_the_active_branch():
    conversation = answered(("q1", "a1", "done"), ("q2", "old", "done"))
    conversation.regenerate("m").append_text("new")
    assert [m["content"] for m in conversation.history()] == ["q1", "a1", "q2", "new"]
    conversation.switch_branch(conversation.last_assistant().id, 1)
    assert [m["content"] for m in conversation.history()] == ["q1", "a1", "q2", "old"]


def check_well_formed(turns: list[dict]) -> None:
    """What chat templates accept: user first, never two user turns in a row, each call answered right after it."""
    assert not turns or turns[0]["role"] == "user"
    pending: list[str] = []  # call ids still waiting for their result
    previous = None
    for turn in turns:
        role = turn["role"]
        if pending:
            assert role == "tool" and turn["tool_call_id"] == pending.pop(0), turns
            assert isinstance(turn["content"], str) and turn["content"], turns
        elif role == "tool":
            raise AssertionError(f"a result without its call: {turns}")
        elif role == "user":
            assert previous != "user", f"two user turns in a row: {turns}"
        else:
            assert role == "assistant" and previous in ("user", "tool"), turns
            calls = turn.get("tool_calls")
            assert turn["content"] or calls, turns
            if calls:
                ids = [call["id"] for call in calls]
                assert len(set(ids)) == len(ids) and all(ids), turns
                pending = ids
        previous = role
    assert not pending, f"calls without results: {turns}"


@st.composite
def answer_parts(draw: st.DrawFn) -> list:
    parts = []
    for kind in draw(st.lists(st.sampled_from(["text", "card", "notice"]), max_size=5)):
        if kind == "text":
            parts.append(TextPart(draw(st.sampled_from(["", "\n", "words", "\nmore\n"]))))
        elif kind == "card":
            call_id = draw(st.one_of(st.none(), st.just(f"id{len(parts)}")))
            parts.append(ToolCard(draw(st.integers(1, 3)), "calc", {"x": 1}, "native", call_id,
                                  draw(st.sampled_from([True, False, None])), "out", "err"))
        else:
            parts.append(Notice("guard", "n"))
    return parts


exchanges = st.lists(st.tuples(st.booleans(),  # whether the question got an answer message at all
                               st.sampled_from(["done", "stopped", "failed", "streaming", "pending"]),
                               answer_parts()), max_size=8)


@settings(max_examples=300, deadline=None)
@given(exchanges, st.booleans())
def test_conversation_history_is_always_well_formed(turns, ends_with_a_new_question):
    conversation = Conversation(kind="tools")
    expected_results = 0
    for n, (has_answer, status, parts) in enumerate(turns):
        conversation.add_user(f"q{n}")
        if has_answer:
            answer = conversation.add_assistant("m")
            answer.parts, answer.status = parts, status
            if status != "failed" and (answer.content or answer.tool_cards):
                expected_results += len(answer.tool_cards)
    if ends_with_a_new_question:
        conversation.add_user("latest")
    history = conversation.history()
    check_well_formed(history)
    assert sum(turn["role"] == "tool" for turn in history) == expected_results  # every call has its result
    if ends_with_a_new_question:
        assert history[-1]["role"] == "user" and history[-1]["content"].endswith("latest")
    pending = conversation.add_assistant("m")  # what is sent for the next answer
    check_well_formed(conversation.history(upto=pending))
