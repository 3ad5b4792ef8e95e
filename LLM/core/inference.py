"""The inference API existing code calls: InferenceConfig in, text (or a typed response) out.

Async core: ``stream_inference`` (events) and ``ainfer`` (InferenceResponse) on a Runtime.
Blocking wrappers for plain scripts: ``infer`` and ``run_inference``, which run on the
process's BlockingPortal so a started server is reused by every later call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Literal

from pydantic import BaseModel, Field

from .cancellation import absorb_user_stop
from .chat.messages import build_messages, completion_prompt, fit_to_context
from .chat.metrics import MetricsMeter
from .chat.params import InferenceConfig, merged_stop, request_params
from .errors import ConfigError, GenerationCancelled, LLMError, MaxTokensExhaustedError
from .events import Done, ReasoningDelta, StreamEvent, TextDelta, Usage
from .protocol.stop_sequences import StopSequenceFilter
from .runtime import Runtime, default_portal
from .tools.loop import ApprovalHook, LoopEvent, LoopFinished, ToolLoop, ToolRunResult
from .tools.prompts import text_tool_turns

FinishReason = Literal["stop", "length", "stop_sequence", "tool_calls", "cancelled", "error"]

__all__ = [
    "InferenceConfig",
    "InferenceResponse",
    "ToolEnabledInferenceConfig",
    "ToolRunResult",
    "ainfer",
    "arun_tool_inference",
    "infer",
    "run_inference",
    "run_tool_inference",
    "stream_inference",
    "stream_tool_inference",
]

DEFAULT_TOOLS = ("calculator", "get_current_time")


class ToolEnabledInferenceConfig(InferenceConfig):
    """A request that may call tools. ``tools``: names of enabled tools (default: the safe built-ins)."""

    enable_tools: bool = False
    tools: list[str] | None = None
    max_iterations: int = Field(8, ge=1, le=100)
    tool_mode: Literal["auto", "native", "fallback", "off"] | None = None
    # auto: the model decides; required: the first step must call a tool; none: no calls; a tool's name: that
    # tool must be called. In fallback mode on llama-server a forced call is held to a grammar of the schemas.
    tool_choice: str = Field("auto", min_length=1, max_length=64)


class InferenceResponse(BaseModel):
    request_id: str
    model_id: str
    generated_text: str = ""
    reasoning_text: str = ""
    error_message: str | None = None
    error_type: str | None = None
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    inference_time_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None


async def stream_inference(cfg: InferenceConfig, runtime: Runtime | None = None) -> AsyncIterator[StreamEvent]:
    """Stream the model's answer as events; the last one is Done.

    Client-side stop sequences: text from a stop sequence on is never yielded, the HTTP
    stream is closed at once (so the server stops), and Done says ``stop_sequence``.
    Pass a long-lived ``runtime``; without one a temporary Runtime is built and closed.
    A reasoning model cut off by max_tokens before it answered ends with ReasoningDelta events and
    ``Done("length")``: the events show it; ``ainfer`` and ``run_inference`` name it as an error.
    """
    if runtime is None:
        async with _runtime_or_owned(None) as owned:
            async with aclosing(stream_inference(cfg, owned)) as events:
                async for event in events:
                    yield event
        return
    model_id = str(cfg.model_id)
    runtime.entry(model_id)  # an unknown model is a typed error before anything starts
    async with runtime.crashes_explained(model_id):
        # in_use before client_for: an idle TTL cannot stop the server between "ready" and the request.
        async with runtime.in_use(model_id):
            client = await runtime.client_for(model_id)
            # Read once the server is ready: a config reload may have replaced the entry while this waited.
            entry = runtime.entry(model_id)
            stop = StopSequenceFilter(merged_stop(cfg, entry))
            if entry.model_type == "base":  # no chat template: the text is continued as written
                source = client.complete(completion_prompt(cfg), request_params(cfg, entry))
            else:
                budget = entry.effective_usable_context
                # A history from the tool chat may hold native tool turns; sent without tools, they go as text.
                messages = text_tool_turns(build_messages(cfg, entry))
                messages = await fit_to_context(messages, budget, client.count_prompt_tokens)
                source = client.chat(messages, request_params(cfg, entry))
            async with aclosing(source) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        text = stop.feed(event.text)
                        if text:
                            yield event if text is event.text else TextDelta(text)
                        if stop.stopped:
                            yield Done("stop_sequence")
                            return
                    elif isinstance(event, Done):
                        tail = stop.flush()
                        if tail:
                            yield TextDelta(tail)
                        yield event
                    else:
                        yield event


async def ainfer(cfg: InferenceConfig, runtime: Runtime | None = None) -> InferenceResponse:
    """Run one request to completion; errors are reported in the response, not raised.

    A user's stop (``stop_generation`` on the awaiting task) gives the partial answer with
    ``finish_reason="cancelled"``; any other cancellation raises CancelledError (asyncio's contract).
    max_tokens spent before any answer (reasoning) is reported as MaxTokensExhaustedError with
    ``finish_reason="length"`` and the reasoning in ``reasoning_text``.
    """
    response = InferenceResponse(request_id=cfg.request_id, model_id=str(cfg.model_id))
    try:
        async with _runtime_or_owned(runtime) as runtime:
            await _collect(response, cfg, runtime)
    except LLMError as exc:
        response.error_message = str(exc)
        response.error_type = type(exc).__name__
        if not isinstance(exc, MaxTokensExhaustedError):  # that one came after a stream that ended normally
            response.finish_reason = "cancelled" if isinstance(exc, GenerationCancelled) else "error"
    return response


@asynccontextmanager
async def _runtime_or_owned(runtime: Runtime | None) -> AsyncIterator[Runtime]:
    """The caller's runtime, or a temporary one built from the config file and closed after."""
    if runtime is not None:
        yield runtime
        return
    owned = Runtime.from_config_path()
    try:
        yield owned
    finally:
        await owned.aclose()


def _require_answer(text: str, reasoning: str, finish_reason: str, cfg: InferenceConfig, runtime: Runtime) -> None:
    """Raise MaxTokensExhaustedError where max_tokens ran out before the model wrote any answer."""
    if finish_reason == "length" and not text.strip():
        max_tokens = request_params(cfg, runtime.entry(str(cfg.model_id))).get("max_tokens")
        raise MaxTokensExhaustedError(max_tokens, reasoning)


async def _collect(response: InferenceResponse, cfg: InferenceConfig, runtime: Runtime) -> None:
    """Fill ``response`` from the stream as it arrives, so a failure keeps the partial answer; an answer
    cut off by max_tokens before it began raises MaxTokensExhaustedError (the response filled)."""
    text: list[str] = []
    reasoning: list[str] = []
    meter = MetricsMeter()
    try:
        async for event in stream_inference(cfg, runtime):
            if isinstance(event, (TextDelta, ReasoningDelta)):
                meter.delta()
                (text if isinstance(event, TextDelta) else reasoning).append(event.text)
            elif isinstance(event, Usage):
                meter.usage(event.prompt_tokens, event.completion_tokens, tokens_per_second=event.tokens_per_second)
            elif isinstance(event, Done):
                response.finish_reason = _finish_reason(event.finish_reason)
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        response.finish_reason = "cancelled"
        raise GenerationCancelled("generation stopped by the user", "".join(text)) from None
    finally:
        metrics = meter.snapshot(response.finish_reason)
        response.generated_text = "".join(text)
        response.reasoning_text = "".join(reasoning)
        response.prompt_tokens = metrics.prompt_tokens
        response.generated_tokens = metrics.completion_tokens
        response.inference_time_ms = metrics.duration_ms or 0.0
        response.time_to_first_token_ms = metrics.time_to_first_token_ms
        response.tokens_per_second = metrics.tokens_per_second
    _require_answer(response.generated_text, response.reasoning_text, response.finish_reason, cfg, runtime)


def _finish_reason(reason: str) -> FinishReason:
    known = ("stop", "length", "stop_sequence", "tool_calls", "cancelled", "error")
    return reason if reason in known else "stop"  # type: ignore[return-value]


def infer(cfg: InferenceConfig) -> InferenceResponse:
    """Blocking ``ainfer`` for plain scripts (reuses servers across calls)."""
    return default_portal.get().call(lambda runtime: ainfer(cfg, runtime))


def run_inference(cfg: InferenceConfig) -> str:
    """Blocking: the generated text (the final answer, with tools). Raises typed errors, never returns ''
    for a failure: max_tokens spent reasoning before any answer raises MaxTokensExhaustedError."""
    return default_portal.get().call(lambda runtime: _answer_text(cfg, runtime))


async def _answer_text(cfg: InferenceConfig, runtime: Runtime) -> str:
    if isinstance(cfg, ToolEnabledInferenceConfig) and cfg.enable_tools:
        result = await arun_tool_inference(cfg, runtime)
        reasoning = result.steps[-1].reasoning if result.steps else ""
        _require_answer(result.final_text, reasoning, result.finish_reason, cfg, runtime)
        return result.final_text
    response = InferenceResponse(request_id=cfg.request_id, model_id=str(cfg.model_id))
    await _collect(response, cfg, runtime)
    return response.generated_text


def tool_loop_for(cfg: ToolEnabledInferenceConfig, runtime: Runtime, before_call: ApprovalHook | None) -> ToolLoop:
    model_id = str(cfg.model_id)
    entry = runtime.entry(model_id)
    names = list(cfg.tools) if cfg.tools is not None else [n for n in DEFAULT_TOOLS if n in runtime.tools]
    tools = runtime.tools.select(names)
    if not cfg.enable_tools:
        mode = "off"
    else:
        mode = cfg.tool_mode or runtime.learned_tool_modes.get(model_id) or entry.tools
    if cfg.tool_choice not in ("auto", "required", "none") and cfg.tool_choice not in names:
        raise ConfigError(f"tool_choice: '{cfg.tool_choice}' is not one of the enabled tools "
                          f"({', '.join(names) or 'none'}); use auto, required, none or an enabled tool's name")
    return ToolLoop(runtime, model_id, tools, request_params(cfg, entry), mode, cfg.max_iterations, before_call,
                    cfg.tool_choice)


async def stream_tool_inference(
    cfg: ToolEnabledInferenceConfig, runtime: Runtime, before_call: ApprovalHook | None = None
) -> AsyncIterator[LoopEvent]:
    """The tool loop's events (steps, text, calls, results, notices), ending with LoopFinished."""
    if cfg.enable_tools:
        await runtime.ensure_tools(cfg.tools)  # MCP tools: their servers start on first use
    loop = tool_loop_for(cfg, runtime, before_call)
    messages = build_messages(cfg, runtime.entry(str(cfg.model_id)))
    async with runtime.crashes_explained(str(cfg.model_id)), aclosing(loop.run(messages)) as events:
        async for event in events:
            yield event


async def arun_tool_inference(
    cfg: ToolEnabledInferenceConfig, runtime: Runtime, before_call: ApprovalHook | None = None
) -> ToolRunResult:
    """The whole tool run; a user's stop raises GenerationCancelled with the text shown so far."""
    text: list[str] = []
    try:
        async with aclosing(stream_tool_inference(cfg, runtime, before_call)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, LoopFinished):
                    return event.result
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        raise GenerationCancelled("tool run stopped by the user", "".join(text)) from None
    raise LLMError("tool loop ended without a result")  # unreachable: run() always finishes


def run_tool_inference(cfg: ToolEnabledInferenceConfig, before_call: ApprovalHook | None = None) -> ToolRunResult:
    """Blocking: the final answer plus every step (requests, calls, results, timings)."""
    return default_portal.get().call(lambda runtime: arun_tool_inference(cfg, runtime, before_call))
