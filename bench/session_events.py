"""What the session's AnswerRecorder costs per stream event, against a bare loop over the same events.

Side by side in one run, over one recorded-shaped answer (a tool run: two steps, a call and its result, a
notice, usage, and 600 text pieces, as a streamed answer mostly is): a bare ``for`` loop that only touches each
event, and the loop that applies each to a fresh answer through ``AnswerRecorder.apply`` (text appended, cards
filled, steps recorded, metrics timed). The figure is the median, over rounds, of the difference per event.

RESULT session_event_overhead_us (<= 50)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.chat.conversation import Message  # noqa: E402
from LLM.core.events import Done, ReasoningDelta, TextDelta, ToolCall, Usage  # noqa: E402
from LLM.core.session import AnswerRecorder  # noqa: E402
from LLM.core.tools.loop import (  # noqa: E402
    LoopFinished,
    LoopNotice,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolResultEvent,
    ToolRunResult,
    ToolStep,
)
from LLM.core.tools.registry import ToolResult  # noqa: E402

ROUNDS = 200
TARGET_US = 50.0


def answer_events() -> list[object]:
    call = ToolCall("calculator", {"expression": "6*7"}, id="call_1")
    events: list[object] = [StepStarted(1, "native", True), ReasoningDelta("Let me compute that. ")]
    events += [TextDelta("I'll ") for _ in range(20)]
    events += [ToolCallEvent(1, call, "native"), ToolResultEvent(1, call, ToolResult(True, "42", None, 0.4)),
               Usage(120, 24), StepFinished(1, "tool_calls", 120, 24, 80.0, ToolStep(1, "native", [], True)),
               StepStarted(2, "native", True)]
    events += [TextDelta("word ") for _ in range(580)]
    events += [Usage(160, 600, 55.0), Done("stop"),
               StepFinished(2, "stop", 160, 600, 900.0, ToolStep(2, "native", [], True)),
               LoopNotice("info", "done"), LoopFinished(ToolRunResult(final_text="...", finish_reason="stop"))]
    return events


def bare(events: list[object]) -> float:
    started = time.perf_counter()
    seen = 0
    for event in events:
        seen += event is not None
    elapsed = time.perf_counter() - started
    assert seen == len(events)
    return elapsed


def recorded(events: list[object]) -> float:
    recorder = AnswerRecorder(Message("assistant", status="pending"))
    started = time.perf_counter()
    for event in events:
        recorder.apply(event)
    elapsed = time.perf_counter() - started
    assert len(recorder.message.steps) == 2 and recorder.message.tool_cards[0].output == "42"
    return elapsed


def main() -> None:
    events = answer_events()
    for _ in range(5):  # warm up both paths
        bare(events)
        recorded(events)
    differences = []
    for _ in range(ROUNDS):  # interleaved, so a noisy moment costs both sides alike
        base = bare(events)
        full = recorded(events)
        differences.append((full - base) / len(events) * 1e6)
    overhead = statistics.median(differences)
    print(f"events per answer: {len(events)}, rounds: {ROUNDS}")
    print(f"RESULT session_event_overhead_us {overhead:.2f} <= {TARGET_US:g}")


if __name__ == "__main__":
    main()
