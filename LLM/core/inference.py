"""The inference API existing code calls: InferenceConfig in, text (or a typed response) out.

Async core: ``stream_inference`` (events, from ``session.streams``) and ``ainfer`` (InferenceResponse,
the events folded by the session's AnswerRecorder) on a Runtime.
Blocking wrappers for plain scripts: ``infer`` and ``run_inference``, which run on the
process's BlockingPortal so a started server is reused by every later call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Literal

from pydantic import BaseModel

from .cancellation import absorb_user_stop
from .chat.conversation import Message
from .chat.params import InferenceConfig, ToolEnabledInferenceConfig, request_params
from .errors import GenerationCancelled, LLMError, MaxTokensExhaustedError
from .events import TextDelta
from .runtime import Runtime, default_portal
from .session.recorder import AnswerRecorder
from .session.streams import DEFAULT_TOOLS, stream_inference, stream_tool_inference
from .tools.loop import ApprovalHook, LoopFinished, ToolRunResult

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
    recorder = AnswerRecorder(Message("assistant", status="pending"))
    try:
        async with aclosing(stream_inference(cfg, runtime)) as events:
            async for event in events:
                recorder.apply(event)
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        recorder.finish_reason = "cancelled"
        raise GenerationCancelled("generation stopped by the user", recorder.text) from None
    finally:
        fill_response(response, recorder)
    _require_answer(response.generated_text, response.reasoning_text, response.finish_reason, cfg, runtime)


def fill_response(response: InferenceResponse, recorder: AnswerRecorder) -> InferenceResponse:
    """What the recorder holds of an answer, as the response's fields (the error, if any, is the caller's)."""
    response.finish_reason = _finish_reason(recorder.finish_reason or "stop")
    metrics = recorder.meter.snapshot(response.finish_reason)
    response.generated_text = recorder.text
    response.reasoning_text = recorder.message.reasoning
    response.prompt_tokens = metrics.prompt_tokens
    response.generated_tokens = metrics.completion_tokens
    response.inference_time_ms = metrics.duration_ms or 0.0
    response.time_to_first_token_ms = metrics.time_to_first_token_ms
    response.tokens_per_second = metrics.tokens_per_second
    return response


def response_for(cfg: InferenceConfig, runtime: Runtime, recorder: AnswerRecorder, request_id: str) -> InferenceResponse:
    """A finished answer recorded by a session, as the InferenceResponse ``ainfer`` gives for ``cfg``."""
    response = fill_response(InferenceResponse(request_id=request_id, model_id=str(cfg.model_id)), recorder)
    error: LLMError | None = recorder.error
    if recorder.message.status == "stopped":
        error = GenerationCancelled("generation stopped by the user", recorder.text)
        response.finish_reason = "cancelled"
    elif error is not None:
        response.finish_reason = "error"
    else:
        try:
            _require_answer(response.generated_text, response.reasoning_text, response.finish_reason, cfg, runtime)
        except MaxTokensExhaustedError as exc:
            error = exc
    if error is not None:
        response.error_message, response.error_type = str(error), type(error).__name__
    return response


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
