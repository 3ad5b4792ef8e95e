"""Running an eval suite through the real tool loop, one task at a time, as a stream of progress events.

Each task runs the model's first step (and its second, for a two-step task) through ``ToolLoop`` with
the task's own tools: the suite's schemas with canned answers, handed to the loop directly, so the
runtime's tool registry (the built-ins, the user's files) is neither used nor changed. The loop is left
as soon as the last scored step's calls are in: the final answer it would ask for after
``max_iterations`` is not scored, so it is not waited for.

The modes:

* ``native``: tool_mode native, tool_choice auto (``tools`` sent; only native ``tool_calls`` count).
* ``fallback``: tool_mode fallback, tool_choice auto (the tool prompt; ``<tool_call>`` parsed from text).
* ``constrained``: tool_mode fallback with tool_choice ``required`` on tasks that expect a call, which on
  llama-server holds the first step's output to a grammar of the offered tools' schemas (the model
  still picks the tool and the arguments). Tasks that expect no call run with tool_choice auto, as in
  fallback: ``none`` would make abstention trivially right and ``required`` trivially wrong, so
  abstention is measured as the model would be used. Only the first step is forced: the loop's
  tool_choice applies to the step it forces, so the second step of a two-step task runs with auto.
  Where the engine takes no grammar the loop says so (an ``unconstrained`` note) and the mode is
  fallback plus a request for a call.

Generation is greedy (temperature 0) by default, so two runs of a suite agree.
``run_eval`` is an async generator: iterate it from any asyncio loop (the window's qasync loop too);
cancelling the consuming task stops the request in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from ..chat.conversation import Message, Notice, StepRecord
from ..chat.messages import build_messages
from ..chat.params import InferenceConfig, request_params
from ..errors import ConfigError, GenerationCancelled, LLMError
from ..runtime import Runtime
from ..session.recorder import AnswerRecorder
from ..tools.loop import LoopNotice, StepStarted, ToolLoop
from ..tools.registry import Tool
from .scoring import (
    MadeCall,
    ModeSummary,
    EvalStep,
    TaskOutcome,
    failed_score,
    score_task,
    summarize,
)
from .suite import Suite, Task

EVAL_MODES = ("native", "fallback", "constrained")
EVAL_MAX_NEW_TOKENS = 256  # room for a call or two; the eval does not score prose


@dataclass(frozen=True)
class TaskStarted:
    mode: str
    index: int  # 1-based, within the mode
    total: int
    task_id: str


@dataclass(frozen=True)
class TaskFinished:
    mode: str
    index: int
    total: int
    outcome: TaskOutcome


@dataclass(frozen=True)
class ModeFinished:
    summary: ModeSummary


@dataclass
class EvalReport:
    model: str
    suite: str
    summaries: dict[str, ModeSummary] = field(default_factory=dict)
    outcomes: list[TaskOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``llmctl eval tools --json`` document."""
        return {
            "model": self.model,
            "suite": self.suite,
            "modes": {mode: summary.to_dict() for mode, summary in self.summaries.items()},
            "tasks": [outcome.to_dict() for outcome in self.outcomes],
        }


@dataclass(frozen=True)
class EvalFinished:
    report: EvalReport


EvalEvent = TaskStarted | TaskFinished | ModeFinished | EvalFinished


def parse_eval_modes(modes: str | Iterable[str]) -> tuple[str, ...]:
    """``"native,constrained"`` or a list -> the modes in the given order; unknown names are a ConfigError."""
    names = [m.strip() for m in (modes.split(",") if isinstance(modes, str) else modes) if m.strip()]
    unknown = [m for m in names if m not in EVAL_MODES]
    if unknown or not names:
        raise ConfigError(f"modes: unknown mode {', '.join(repr(m) for m in unknown) or '(none given)'} "
                          f"(use {', '.join(EVAL_MODES)}, comma-separated)")
    return tuple(dict.fromkeys(names))


async def run_eval(
    runtime: Runtime,
    model_id: str,
    suite: Suite,
    modes: str | Iterable[str] = EVAL_MODES,
    *,
    temperature: float = 0.0,
    max_new_tokens: int = EVAL_MAX_NEW_TOKENS,
) -> AsyncIterator[EvalEvent]:
    """Every task of ``suite`` in each mode, in order: TaskStarted / TaskFinished per task, ModeFinished per
    mode, then EvalFinished with the whole report. A task that fails (an LLMError) is scored as wrong and
    the run goes on; cancellation propagates."""
    chosen = parse_eval_modes(modes)
    runtime.entry(model_id)  # an unknown model fails before anything starts
    async with runtime.crashes_explained(model_id), runtime.in_use(model_id):
        await runtime.client_for(model_id)  # start and warm the server now, so no task's latency holds it
    report = EvalReport(model_id, suite.name)
    total = len(suite.tasks)
    for mode in chosen:
        outcomes = []
        for index, task in enumerate(suite.tasks, start=1):
            yield TaskStarted(mode, index, total, task.id)
            outcome = await run_task(runtime, model_id, task, mode, temperature=temperature,
                                     max_new_tokens=max_new_tokens)
            outcomes.append(outcome)
            report.outcomes.append(outcome)
            yield TaskFinished(mode, index, total, outcome)
        summary = summarize(mode, outcomes)
        report.summaries[mode] = summary
        yield ModeFinished(summary)
    yield EvalFinished(report)


async def arun_eval(
    runtime: Runtime,
    model_id: str,
    suite: Suite,
    modes: str | Iterable[str] = EVAL_MODES,
    *,
    on_event: Callable[[EvalEvent], None] | None = None,
    temperature: float = 0.0,
    max_new_tokens: int = EVAL_MAX_NEW_TOKENS,
) -> EvalReport:
    """``run_eval`` to the end; ``on_event`` sees every progress event on the way."""
    async with aclosing(run_eval(runtime, model_id, suite, modes, temperature=temperature,
                                 max_new_tokens=max_new_tokens)) as events:
        async for event in events:
            if on_event is not None:
                on_event(event)
            if isinstance(event, EvalFinished):
                return event.report
    raise LLMError("the eval ended without a report")  # unreachable: run_eval always finishes with one


def task_tools(task: Task) -> list[Tool]:
    """The task's tools as loop Tools: the suite's schema, a handler that answers the canned text."""
    tools = []
    for spec in task.tools:
        tools.append(Tool(spec.name, spec.description, spec.parameters, _canned(task.results.get(spec.name,
                                                                                                 spec.result))))
    return tools


def _canned(text: str) -> Callable[..., Any]:
    async def answer(**_arguments: Any) -> str:
        return text

    return answer


def loop_settings(mode: str, task: Task) -> tuple[str, str]:
    """(tool_mode, tool_choice) of a task in an eval mode."""
    if mode == "native":
        return "native", "auto"
    if mode == "fallback":
        return "fallback", "auto"
    if mode == "constrained":
        return "fallback", "required" if task.expects_call else "auto"
    raise ConfigError(f"modes: unknown mode {mode!r} (use {', '.join(EVAL_MODES)})")


async def run_task(
    runtime: Runtime, model_id: str, task: Task, mode: str, *, temperature: float = 0.0,
    max_new_tokens: int = EVAL_MAX_NEW_TOKENS,
) -> TaskOutcome:
    """Run one task's scored steps through the tool loop, recorded as an answer (the session's recorder, as the
    window and llmctl record theirs), and score them."""
    tool_mode, tool_choice = loop_settings(mode, task)
    entry = runtime.entry(model_id)
    cfg = InferenceConfig(prompt=task.prompt, model_id=model_id, system_prompt=task.system,
                          temperature=temperature, max_new_tokens=max_new_tokens)
    loop = ToolLoop(runtime, model_id, task_tools(task), request_params(cfg, entry), tool_mode,  # type: ignore[arg-type]
                    max_iterations=len(task.steps), tool_choice=tool_choice)
    recorder = AnswerRecorder(Message("assistant", status="pending", model_id=model_id))
    error: LLMError | None = None
    started = time.perf_counter()
    try:
        async with runtime.crashes_explained(model_id), aclosing(loop.run(build_messages(cfg, entry))) as events:
            async for event in events:
                if _past_scored(event, len(task.steps)):
                    break  # the scored steps are done; what follows is the loop's closing answer
                recorder.apply(event)
    except GenerationCancelled:
        raise
    except LLMError as exc:
        error = exc
    latency_ms = (time.perf_counter() - started) * 1000
    answer = recorder.finish("failed" if error is not None else "done", None, error)
    steps = eval_steps(answer, recorder.step)
    notices = [f"{part.kind}: {part.message}" for part in answer.parts if isinstance(part, Notice)]
    if error is not None:
        score = failed_score(task, f"error: {type(error).__name__}: {error}")
    else:
        # In a thread: a schema `pattern` check may wait on a child process (tools/safe_regex).
        score = await asyncio.to_thread(score_task, task, [s.calls for s in steps], [s.text for s in steps])
    return TaskOutcome(mode, task, score, steps, latency_ms, f"{type(error).__name__}: {error}" if error else None,
                       notices, answer)


def _past_scored(event: object, scored: int) -> bool:
    """Whether the loop has gone past the task's scored steps (its closing answer, or a guard ending the run)."""
    if isinstance(event, StepStarted):
        return event.iteration > scored
    return isinstance(event, LoopNotice) and event.kind in ("max_iterations", "repeated_call")


def eval_steps(answer: Message, current: StepStarted | None) -> list[EvalStep]:
    """The recorded answer's steps as the scorer reads them: each request, with the calls the loop made of it.
    A step that failed before it finished has no record: its start and calls are what there is."""
    steps = []
    for iteration in range(1, answer.iteration + 1):
        record = next((r for r in answer.steps if r.iteration == iteration), None)
        if record is not None:
            step = EvalStep(record.tool_choice, record.constrained, record.text.strip(), record.raw_output,
                            list(record.parse_errors), finish_reason=record.finish_reason,
                            prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
                            duration_ms=record.duration_ms)
        else:
            step = EvalStep(current.tool_choice, current.constrained) if current is not None else EvalStep()
        step.calls = [MadeCall(card.name, dict(card.arguments), card.source, _invalid(record, card.call_id))
                      for card in answer.tool_cards if card.iteration == iteration]
        steps.append(step)
    return steps


def _invalid(record: StepRecord | None, call_id: str | None) -> str | None:
    if record is None:
        return None
    return next((c.get("invalid_arguments") for c in record.calls if c.get("id") == call_id), None)
