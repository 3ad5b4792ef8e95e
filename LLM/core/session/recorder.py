"""How an answer becomes a saved message: every stream and tool-loop event applied to its ``Message`` once.

The window, ``llmctl`` and the eval all fold events through :class:`AnswerRecorder`, so an answer is
recorded the same whichever front end drove it: its text and reasoning, token usage and timing
(``Metrics``), tool cards and their results, each request of the tool loop (``StepRecord``), the loop's
notices, and how it finished. :meth:`AnswerRecorder.apply` returns what changed, so a view redraws
only that (as Anki's operations return their changes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..chat.conversation import Message, Notice, StepRecord, ToolCard
from ..chat.metrics import MetricsMeter
from ..errors import LLMError
from ..events import Done, ReasoningDelta, TextDelta, ToolCall, Usage
from ..failures import describe_error
from ..tools.loop import (
    LoopFinished,
    LoopNotice,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolResultEvent,
    ToolRunResult,
    ToolStep,
)

# What ``apply`` reports: which part of the answer an event changed.
TEXT, REASONING, USAGE, DONE, STEP_STARTED, CARD, RESULT, STEP, NOTICE, FINISHED = (
    "text", "reasoning", "usage", "done", "step_started", "card", "result", "step", "notice", "finished")
# A view redraws the answer's body for these; the others change only counters or the status line.
VISIBLE_CHANGES = frozenset({TEXT, REASONING, CARD, RESULT, STEP, NOTICE})
WAITING_FOR_APPROVAL = "waiting for your approval…"


def step_record(step: ToolStep, offset: int = 0) -> StepRecord:
    """The loop's account of one request, as the answer keeps it (numbered after ``offset`` kept steps)."""
    return StepRecord(
        iteration=step.iteration + offset, mode=step.mode, tool_choice=step.tool_choice, constrained=step.constrained,
        constraint_note=step.constraint_note,
        url=step.url, request=step.request_body, raw_output=step.raw_text, native_calls=step.native_calls,
        calls=[_call_record(call, source) for call, source in step.calls],
        parse_errors=list(step.parse_errors), text=step.text, reasoning=step.reasoning,
        finish_reason=step.finish_reason, prompt_tokens=step.prompt_tokens, completion_tokens=step.completion_tokens,
        request_ms=step.request_ms, duration_ms=step.duration_ms,
    )


def _call_record(call: ToolCall, source: str) -> dict[str, Any]:
    record = {"name": call.name, "arguments": call.arguments, "id": call.id, "source": source}
    if call.invalid_arguments is not None:  # what the model sent instead of a JSON object
        record["invalid_arguments"] = call.invalid_arguments
    return record


def _call_text(call: ToolCall, limit: int = 300) -> str:
    """A call as the user reads it: ``name({"arg": ...})``, the arguments cut short past ``limit``."""
    arguments = call.invalid_arguments if call.invalid_arguments is not None else \
        json.dumps(call.arguments, ensure_ascii=False)
    return f"{call.name}({arguments if len(arguments) <= limit else arguments[:limit] + '…'})"


class AnswerRecorder:
    """Folds one request's events into its answer, ``message``, as they arrive; :meth:`finish` closes it.

    A replayed tool answer starts with the steps it kept from the version it replays: the loop counts its
    own steps from 1, so they are numbered after those (``offset``).
    """

    def __init__(self, message: Message, clock: Callable[[], float] = time.perf_counter) -> None:
        self.message = message
        self.offset = len(message.steps)
        self.meter = MetricsMeter(clock)
        self.finish_reason: str | None = None
        self.context_used: int | None = None  # prompt + answer tokens of the last request, as the engine counted
        self.step: StepStarted | None = None  # the loop's current request
        self.result: ToolRunResult | None = None  # the whole tool run, once it ended
        self.error: LLMError | None = None
        self._apply: dict[type, Callable[[Any], str | None]] = {
            TextDelta: self._text, ReasoningDelta: self._reasoning, Usage: self._usage, Done: self._done,
            StepStarted: self._step_started, ToolCallEvent: self._call, ToolResultEvent: self._result,
            StepFinished: self._step_finished, LoopNotice: self._notice, LoopFinished: self._loop_finished,
        }

    def apply(self, event: object) -> str | None:
        """Apply one event; what it changed (TEXT, CARD, ...), None for an event the answer does not keep."""
        handler = self._apply.get(type(event))
        return handler(event) if handler is not None else None

    def finish(self, status: str, finish_reason: str | None = None, error: LLMError | None = None,
               stop_reason: str | None = None) -> Message:
        """Close the answer: done, stopped (``stop_reason`` when it was not the user's Stop) or failed."""
        message = self.message
        reason = finish_reason or self.finish_reason or "stop"
        message.status = status  # type: ignore[assignment]
        message.error = describe_error(error) if error is not None else None
        message.stop_reason = stop_reason
        message.metrics = self.meter.snapshot(reason)
        self.finish_reason, self.error = reason, error
        return message

    def card(self, call_id: str | None) -> ToolCard | None:
        """The answer's card of a call (the latest with that id)."""
        return next((c for c in reversed(self.message.tool_cards) if c.call_id == call_id), None)

    @property
    def text(self) -> str:
        """The answer's text exactly as streamed (``Message.content`` trims each part)."""
        return self.message.streamed_text

    # ----- one handler per event type -----
    def _text(self, event: TextDelta) -> str:
        self.meter.delta()
        self.message.append_text(event.text)
        self.message.status = "streaming"
        return TEXT

    def _reasoning(self, event: ReasoningDelta) -> str:
        self.meter.delta()
        self.message.reasoning += event.text
        self.message.status = "streaming"
        return REASONING

    def _usage(self, event: Usage) -> str:
        self.meter.usage(event.prompt_tokens, event.completion_tokens, tokens_per_second=event.tokens_per_second)
        self._note_context(event.prompt_tokens, event.completion_tokens)
        return USAGE

    def _done(self, event: Done) -> str:
        self.finish_reason = event.finish_reason
        if not event.tool_calls:
            return DONE
        # Only a plain chat sees calls here (the tool loop keeps its Done): say what the model tried, not nothing.
        self.message.parts.append(Notice("tool_call_in_chat", f"The model tried to call "
                                         f"{', '.join(_call_text(call) for call in event.tool_calls)}; tools run "
                                         "only in a tool chat (the Tool chat tab, or llmctl run --tools)."))
        return NOTICE

    def _step_started(self, event: StepStarted) -> str:
        self.step = event
        self.message.iteration = event.iteration + self.offset
        return STEP_STARTED

    def _call(self, event: ToolCallEvent) -> str:
        call = event.call
        self.message.parts.append(ToolCard(event.iteration + self.offset, call.name, dict(call.arguments),
                                           event.source, call_id=call.id))
        self.message.status = "streaming"
        return CARD

    def _result(self, event: ToolResultEvent) -> str | None:
        card = self.card(event.call.id)
        if card is None:
            return None
        result = event.result
        card.ok, card.output, card.error, card.duration_ms = result.ok, result.output, result.error, result.duration_ms
        return RESULT

    def _step_finished(self, event: StepFinished) -> str:
        self.meter.usage(event.prompt_tokens, event.completion_tokens, event.duration_ms)
        self._note_context(event.prompt_tokens, event.completion_tokens)
        if event.step is None:
            return USAGE
        self.message.steps.append(step_record(event.step, self.offset))
        return STEP

    def _notice(self, event: LoopNotice) -> str:
        self.message.parts.append(Notice(event.kind, event.message))
        return NOTICE

    def _loop_finished(self, event: LoopFinished) -> str:
        self.result = event.result
        self.finish_reason = event.result.stopped_by or event.result.finish_reason
        return FINISHED

    def _note_context(self, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        if prompt_tokens is not None:
            self.context_used = prompt_tokens + (completion_tokens or 0)
