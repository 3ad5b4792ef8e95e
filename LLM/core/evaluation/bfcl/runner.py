"""Running BFCL's tasks through the real tool loop: concurrent up to the server's slots, resumable, stored as they end.

Each task is one request: the question's messages with the task's functions as tools (converted as BFCL
converts them for function-calling models), read back from the loop's first step and scored by the AST
checker. The modes are the tool eval's (``evaluation.runner``): native (only native ``tool_calls`` count, as
BFCL's function-calling handlers read them), fallback (``<tool_call>`` text) and constrained (fallback with
tool_choice required, held to a grammar on llama-server). Constrained forces a call only on categories
scored by the calls' AST: on irrelevance and relevance a forced call would make the answer trivially wrong or
right, so those run as fallback. ``parallel_tool_calls`` is true only on the parallel categories, so a
forced call elsewhere is exactly one call.

A run is identified by model, adapter, mode, engine build and data version (``store.RunKey``). Its tasks
already in the store are skipped, so an interrupted run resumes where it stopped and a finished one is not
computed again unless ``rerun``. A task whose request fails (the server, not the model) is reported and not
stored, so the next run retries it; MAX_ERRORS_IN_A_ROW such failures stop the run with the last error. A
prompt longer than the context is the model's failure (``context_overflow``), stored like any other.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ...chat.params import InferenceConfig, request_params
from ...errors import BackendStatusError, ContextOverflowError, GenerationCancelled, LLMError
from ...runtime import Runtime
from ...tools.loop import StepFinished, ToolLoop, ToolStep
from ...tools.registry import Tool
from ..runner import parse_eval_modes
from .checker import Verdict, check_ast, check_relevance, decoder_failure, no_call_verdict
from .convert import NameMap, to_openai_tools
from .data import BfclData, BfclTask, scored_by_relevance
from .store import EvalStore, RunKey, RunSummary, TaskResult

SUITE = "bfcl"
BFCL_MAX_NEW_TOKENS = 256  # room for a few calls; BFCL scores calls, not prose
MAX_ERRORS_IN_A_ROW = 5


@dataclass(frozen=True)
class BfclModeStarted:
    mode: str
    run_id: int
    total: int  # tasks of the data in this mode
    skipped: int  # already in the store from an earlier run of the same key


@dataclass(frozen=True)
class BfclTaskDone:
    mode: str
    done: int  # tasks of this mode finished so far, skipped ones included
    total: int
    result: TaskResult


@dataclass(frozen=True)
class BfclTaskError:
    mode: str
    task_id: str
    error: str  # not stored: the next run retries the task


@dataclass(frozen=True)
class BfclModeDone:
    summary: RunSummary
    errors: int


BfclEvent = BfclModeStarted | BfclTaskDone | BfclTaskError | BfclModeDone


async def run_bfcl(
    runtime: Runtime,
    model_id: str,
    data: BfclData,
    store: EvalStore,
    modes: str | Iterable[str] = ("constrained",),
    *,
    rerun: bool = False,
    concurrency: int | None = None,
    temperature: float = 0.0,
    max_new_tokens: int = BFCL_MAX_NEW_TOKENS,
) -> AsyncIterator[BfclEvent]:
    """Every task of ``data`` in each mode; results go into ``store`` as they finish. ``concurrency``: requests
    at once (default: the server's slots, else 1). Cancelling the consumer cancels the requests in flight."""
    chosen = parse_eval_modes(modes)
    entry = runtime.entry(model_id)  # an unknown model fails before anything starts
    async with runtime.crashes_explained(model_id), runtime.in_use(model_id):
        await runtime.client_for(model_id)  # started and warm before the first task's clock runs
        props = await runtime.engine_props(model_id)
    engine = engine_label(entry.backend, props.build if props else None)
    width = concurrency or (props.total_slots if props and props.total_slots else 1)
    settings = {"max_tokens": max_new_tokens, "temperature": temperature}
    for mode in chosen:
        key = RunKey(SUITE, model_id, entry.adapter_dir or "", mode, engine, data.version)
        run_id = store.open_run(key, settings)
        if rerun:
            store.clear(run_id)
        done_ids = store.done_task_ids(run_id)
        todo = [t for t in data.tasks if t.id not in done_ids]
        total = len(data.tasks)
        yield BfclModeStarted(mode, run_id, total, total - len(todo))
        done, errors, in_a_row = total - len(todo), 0, 0
        async with aclosing(_concurrently(todo, width, lambda task, alone: run_bfcl_task(
                runtime, model_id, task, mode, temperature=temperature, max_new_tokens=max_new_tokens,
                alone=alone))) as results:
            async for task, outcome in results:
                if isinstance(outcome, LLMError):
                    errors, in_a_row = errors + 1, in_a_row + 1
                    yield BfclTaskError(mode, task.id, f"{type(outcome).__name__}: {outcome}")
                    if in_a_row >= MAX_ERRORS_IN_A_ROW:
                        raise outcome
                    continue
                in_a_row = 0
                store.add_result(run_id, outcome)
                done += 1
                yield BfclTaskDone(mode, done, total, outcome)
        yield BfclModeDone(store.run(run_id, only=[t.id for t in data.tasks]), errors)


async def arun_bfcl(runtime: Runtime, model_id: str, data: BfclData, store: EvalStore,
                    modes: str | Iterable[str] = ("constrained",), *,
                    on_event: Callable[[BfclEvent], None] | None = None, **options: Any) -> list[RunSummary]:
    """``run_bfcl`` to the end: the summary of each mode's run."""
    summaries = []
    async with aclosing(run_bfcl(runtime, model_id, data, store, modes, **options)) as events:
        async for event in events:
            if on_event is not None:
                on_event(event)
            if isinstance(event, BfclModeDone):
                summaries.append(event.summary)
    return summaries


def engine_label(backend: str, build: str | None) -> str:
    """What produced the answers: llama-server's build, the built-in server's transformers, else the backend."""
    if build:
        return f"llama.cpp {build}"
    if backend == "hf":
        try:
            return f"transformers {metadata.version('transformers')}"
        except metadata.PackageNotFoundError:
            return "hf"
    return backend


async def _concurrently(tasks: list[BfclTask], width: int, work: Callable[[BfclTask, bool], Any]
                        ) -> AsyncIterator[tuple[BfclTask, Any]]:
    """(task, its result or its LLMError) as each finishes, at most ``width`` at once; closing the iterator
    cancels the rest. ``work(task, alone)``: a task whose request ran out of context beside others (the slots of
    llama-server share one KV cache) is run again alone, holding every slot."""
    gate = asyncio.Semaphore(max(1, width))
    exclusive = asyncio.Lock()

    async def one(task: BfclTask) -> tuple[BfclTask, Any]:
        async with gate:
            try:
                return task, await work(task, width <= 1)
            except GenerationCancelled:
                raise
            except LLMError as exc:
                if width <= 1 or not context_ran_out(exc):
                    return task, exc
        async with exclusive:
            for _ in range(width):
                await gate.acquire()
            try:
                return task, await work(task, True)
            except GenerationCancelled:
                raise
            except LLMError as exc:
                return task, exc
            finally:
                for _ in range(width):
                    gate.release()

    running = [asyncio.ensure_future(one(task)) for task in tasks]
    try:
        for next_done in asyncio.as_completed(running):
            yield await next_done
    finally:
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def context_ran_out(exc: LLMError) -> bool:
    """llama-server's answer when a generation fills the context: its slots share one KV cache, so a request
    that fits alone can run out beside others (HTTP 500, or an error event in the stream)."""
    return isinstance(exc, BackendStatusError) and "context size has been exceeded" in str(exc).lower()


def loop_settings(mode: str, category: str) -> tuple[str, str]:
    """(tool_mode, tool_choice) of a BFCL task in an eval mode."""
    if mode == "native":
        return "native", "auto"
    if mode == "constrained" and not scored_by_relevance(category):
        return "fallback", "required"
    return "fallback", "auto"


async def run_bfcl_task(runtime: Runtime, model_id: str, task: BfclTask, mode: str, *, temperature: float = 0.0,
                        max_new_tokens: int = BFCL_MAX_NEW_TOKENS, alone: bool = True) -> TaskResult:
    """One task's request through the tool loop, scored. A request that fails raises its LLMError, except a
    prompt too long for the model's context, which is the model's result (it cannot answer), as is a
    generation that fills the context when the request had the server to itself (``alone``)."""
    openai_tools, names = to_openai_tools(list(task.functions))
    tools = [Tool(t["function"]["name"], t["function"].get("description", ""), t["function"]["parameters"],
                  _never_run) for t in openai_tools]
    tool_mode, choice = loop_settings(mode, task.category)
    entry = runtime.entry(model_id)
    params = request_params(InferenceConfig(prompt="", model_id=model_id, temperature=temperature,
                                            max_new_tokens=max_new_tokens), entry)
    params["parallel_tool_calls"] = "parallel" in task.category
    loop = ToolLoop(runtime, model_id, tools, params, tool_mode, max_iterations=1,  # type: ignore[arg-type]
                    tool_choice=choice)
    started = time.perf_counter()
    step: ToolStep | None = None
    try:
        async with runtime.crashes_explained(model_id), aclosing(loop.run([dict(m) for m in task.messages])) as events:
            async for event in events:
                if isinstance(event, StepFinished) and event.iteration == 1:
                    step = event.step
                    break  # the scored request is in; what follows would run the calls
    except LLMError as exc:
        if not (isinstance(exc, ContextOverflowError) or (alone and context_ran_out(exc))):
            raise
        verdict = Verdict(False, "context_overflow", (f"the task does not fit the model's context: {exc}",))
        return _result(task, verdict, [], "", step.request_body if step else {}, started)
    if step is None:
        raise LLMError(f"{task.id}: the tool loop ended without a step")
    calls, verdict = score_step(task, step, names, native_only=mode == "native")
    return _result(task, verdict, calls, _raw_output(step), step.request_body, started)


def score_step(task: BfclTask, step: ToolStep, names: NameMap, *, native_only: bool
               ) -> tuple[list[dict[str, Any]], Verdict]:
    """The step's calls in BFCL's decoded shape (BFCL names) and the checker's verdict on them."""
    made = [call for call, source in step.calls if source == "native" or not native_only]
    broken = next((c for c in made if c.invalid_arguments is not None), None)
    calls = [{names.original(c.name) or c.name: dict(c.arguments)} for c in made]
    if broken is not None and scored_by_relevance(task.category):
        return calls, check_relevance(task.category, [])  # BFCL: output that does not decode is no call
    if broken is not None:
        return calls, decoder_failure(f"arguments of {broken.name} are not a JSON object: "
                                      f"{(broken.invalid_arguments or '')[:200]}")
    if scored_by_relevance(task.category):
        return calls, check_relevance(task.category, calls)
    if not calls:
        return calls, no_call_verdict()
    return calls, check_ast(task.category, list(task.functions), calls, list(task.ground_truth or ()))


def _raw_output(step: ToolStep) -> str:
    text = step.raw_text or step.text
    if step.native_calls:
        text += ("\n" if text else "") + json.dumps(step.native_calls, ensure_ascii=False)
    return text


def _result(task: BfclTask, verdict: Verdict, calls: list[dict[str, Any]], raw: str, request: dict[str, Any],
            started: float) -> TaskResult:
    return TaskResult(task.id, task.category, verdict.valid, verdict.error_type, verdict.reason, calls, raw,
                      request, (time.perf_counter() - started) * 1000, time.time())


async def _never_run(**_arguments: Any) -> str:
    return ""  # the loop is left before it runs a call: BFCL scores the calls, not their results
