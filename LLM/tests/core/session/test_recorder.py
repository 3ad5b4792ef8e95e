"""AnswerRecorder: every stream and loop event applied to the saved message once (pure, table-driven)."""

from __future__ import annotations

import pytest

from LLM.core.chat.conversation import Message, Notice, StepRecord, TextPart, ToolCard
from LLM.core.errors import ServerExitedError
from LLM.core.events import Done, ReasoningDelta, TextDelta, ToolCall, Usage
from LLM.core.session import AnswerRecorder, describe_error
from LLM.core.session.recorder import CARD, DONE, NOTICE, REASONING, RESULT, STEP, STEP_STARTED, TEXT, USAGE
from LLM.core.tools.loop import (
    LoopFinished,
    LoopNotice,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolResultEvent,
    ToolRunResult,
    ToolStep,
)
from LLM.core.tools.registry import ToolResult

CALL = ToolCall("calculator", {"expression": "6*7"}, id="call_1")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def recorded(*events: object, message: Message | None = None) -> tuple[AnswerRecorder, list[str | None]]:
    recorder = AnswerRecorder(message or Message("assistant", status="pending"), clock=Clock())
    return recorder, [recorder.apply(event) for event in events]


@pytest.mark.parametrize("events, changes, check", [
    ([TextDelta("Hel"), TextDelta("lo")], [TEXT, TEXT],
     lambda r: r.message.content == "Hello" and r.message.status == "streaming" and r.meter.deltas == 2),
    ([ReasoningDelta("think"), TextDelta("ok")], [REASONING, TEXT],
     lambda r: r.message.reasoning == "think" and r.message.content == "ok"),
    ([Usage(10, 3, 55.0)], [USAGE],
     lambda r: r.context_used == 13 and r.meter.prompt_tokens == 10 and r.meter.engine_speeds == [55.0]),
    ([Done("length")], [DONE], lambda r: r.finish_reason == "length"),
    ([StepStarted(1, "native", True), ToolCallEvent(1, CALL, "native")], [STEP_STARTED, CARD],
     lambda r: r.message.iteration == 1 and r.message.tool_cards == [
         ToolCard(1, "calculator", {"expression": "6*7"}, "native", call_id="call_1")]),
    ([ToolCallEvent(1, CALL, "native"), ToolResultEvent(1, CALL, ToolResult(True, "42", None, 1.5))], [CARD, RESULT],
     lambda r: (r.message.tool_cards[0].ok, r.message.tool_cards[0].output, r.message.tool_cards[0].duration_ms)
     == (True, "42", 1.5)),
    ([ToolResultEvent(1, CALL, ToolResult(True, "42", None, 1.5))], [None],  # no card: nothing to fill
     lambda r: r.message.parts == []),
    ([StepFinished(1, "tool_calls", 20, 5, 12.0, ToolStep(1, "native", [], True, raw_text="<raw>"))], [STEP],
     lambda r: r.message.steps[0].raw_output == "<raw>" and r.context_used == 25 and r.meter.request_ms == 12.0),
    ([StepFinished(1, "stop", 20, 5, 12.0)], [USAGE], lambda r: r.message.steps == []),
    ([LoopNotice("max_iterations", "stopped")], [NOTICE],
     lambda r: r.message.parts == [Notice("max_iterations", "stopped")]),
    ([LoopFinished(ToolRunResult(finish_reason="stop", stopped_by="denied"))], ["finished"],
     lambda r: r.finish_reason == "denied"),
    (["not an event", 42], [None, None], lambda r: r.message.parts == []),
], ids=["text", "reasoning", "usage", "done", "call", "result", "orphan-result", "step", "step-without-exchange",
        "notice", "loop-finished", "unknown"])
def test_recorder_applies_each_event_once(events, changes, check):
    recorder, seen = recorded(*events)
    assert seen == changes
    assert check(recorder)


def test_recorder_text_after_a_card_starts_a_new_part():
    recorder, _ = recorded(TextDelta("Let me see."), ToolCallEvent(1, CALL, "native"), TextDelta("It is 42."))
    kinds = [type(part) for part in recorder.message.parts]
    assert kinds == [TextPart, ToolCard, TextPart]
    assert recorder.text == "Let me see.It is 42."


def test_recorder_numbers_a_replayed_answers_steps_after_the_kept_ones():
    """A replay keeps the old version's first step: the loop's step 1 is the answer's step 2."""
    kept = Message("assistant", status="pending")
    kept.parts.append(ToolCard(1, "calculator", {}, "native", call_id="old", ok=True, output="1"))
    kept.steps.append(StepRecord(1, "native"))
    recorder = AnswerRecorder(kept)
    recorder.apply(StepStarted(1, "native", True))
    recorder.apply(ToolCallEvent(1, CALL, "native"))
    recorder.apply(StepFinished(1, "tool_calls", 1, 1, 1.0, ToolStep(1, "native", [], True)))
    assert kept.iteration == 2 and kept.tool_cards[-1].iteration == 2
    assert [step.iteration for step in kept.steps] == [1, 2]


@pytest.mark.parametrize("status, reason, error, stop_reason, expect", [
    ("done", None, None, None, ("done", "length", None, None)),  # the stream's own finish reason
    ("stopped", "cancelled", None, "model switched", ("stopped", "cancelled", None, "model switched")),
    ("failed", "error", ServerExitedError("m", 1), None,
     ("failed", "error", "'m' stopped unexpectedly (exit status 1); it restarts when you send the next message.",
      None)),
])
def test_recorder_finish_closes_the_answer(status, reason, error, stop_reason, expect):
    recorder, _ = recorded(TextDelta("partial"), Done("length"))
    message = recorder.finish(status, reason, error, stop_reason)
    assert (message.status, message.metrics.finish_reason, message.error, message.stop_reason) == expect
    assert message.metrics.chunks == 1 and message.content == "partial"


def test_describe_error_names_the_type():
    assert describe_error(ValueError("bad")) == "ValueError: bad"
