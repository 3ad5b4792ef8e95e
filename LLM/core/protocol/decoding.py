"""Decoding OpenAI-compatible response payloads into stream events (pure; no I/O).

``ChatStreamDecoder`` takes the ``data:`` payloads of a /v1/chat/completions stream,
``TextCompletionDecoder`` those of /v1/completions (base models), ``CompletionStreamDecoder``
those of llama.cpp's native /completion stream, and ``decode_chat_response`` a non-streamed
chat response body.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import BackendStatusError, InferenceError
from ..events import Done, ReasoningDelta, StreamEvent, TextDelta, ToolCall, ToolCallDelta, Usage
from .reasoning import ThinkSplitter


def _load(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InferenceError(f"server sent a stream chunk that is not JSON: {data[:200]!r}") from exc


def _raise_if_error(payload: Any) -> None:
    if isinstance(payload, dict) and payload.get("error") is not None:
        error = payload["error"]
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
        raise BackendStatusError(status, json.dumps(error) if not isinstance(error, str) else error)


class _ToolCallAccumulator:
    """Native tool_calls arrive as pieces keyed by index; put them back together."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, raw: dict[str, Any], position: int) -> ToolCallDelta:
        index = raw.get("index", position)
        index = index if isinstance(index, int) else position
        function = raw.get("function") or {}
        slot = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        call_id, name = raw.get("id"), function.get("name")
        args = function.get("arguments")
        if isinstance(args, (dict, list)):  # some servers send objects, not JSON text
            args = json.dumps(args)
        args = args or ""
        if call_id:
            slot["id"] = call_id
        if name:
            slot["name"] = name
        slot["arguments"] += args
        return ToolCallDelta(index=index, id=call_id, name=name, arguments_delta=args)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(_native_call(i, slot) for i, slot in sorted(self._calls.items()))


def _native_call(index: int, slot: dict[str, str]) -> ToolCall:
    """A finished native call; arguments that are not a JSON object are kept as text, so the model can be told."""
    text = slot["arguments"]
    try:
        arguments = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        arguments = None
    call_id = slot["id"] or f"call_{index}"
    if not isinstance(arguments, dict):
        return ToolCall(slot["name"], {}, call_id, invalid_arguments=text)
    return ToolCall(slot["name"], arguments, call_id)


class _StreamDecoder:
    """What both stream formats share: the [DONE] marker, JSON payloads, <think> splitting."""

    def __init__(self) -> None:
        self._think = ThinkSplitter()
        self.finish_reason: str | None = None
        self.saw_done = False
        self.saw_data = False

    def _payload(self, data: str) -> Any:
        """The decoded payload, or None for the [DONE] marker and for anything after the stream's end
        ([DONE], or llama.cpp's ``stop: true``): a server's trailing bytes are not part of the answer."""
        if self.saw_done:
            return None
        if data.strip() == "[DONE]":
            self.saw_done = True
            return None
        payload = _load(data)
        self.saw_data = True
        return payload


class ChatStreamDecoder(_StreamDecoder):
    def __init__(self) -> None:
        super().__init__()
        self._tool_calls = _ToolCallAccumulator()

    def decode(self, data: str) -> list[StreamEvent]:
        payload = self._payload(data)
        if payload is None:
            return []
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if choices and len(choices) == 1 and "error" not in payload and "usage" not in payload:
            choice = choices[0]
            delta = choice.get("delta")
            if delta is not None and not choice.get("finish_reason") and delta.keys() <= {"content", "role"}:
                # The hot path: a plain content delta.
                content = delta.get("content")
                return self._think.feed(content) if content else []
        _raise_if_error(payload)
        events: list[StreamEvent] = []
        for choice in choices or []:
            delta = choice.get("delta") or choice.get("message") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                events.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if content:
                events.extend(self._think.feed(content))
            for position, raw in enumerate(delta.get("tool_calls") or []):
                events.append(self._tool_calls.add(raw, position))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        usage = payload.get("usage")
        if isinstance(usage, dict):
            events.append(_usage(usage, payload.get("timings")))
        return events

    def finish(self) -> list[StreamEvent]:
        events: list[StreamEvent] = list(self._think.flush())
        calls = self._tool_calls.calls()
        reason = self.finish_reason or ("tool_calls" if calls else "stop")
        events.append(Done(reason, calls))
        return events


def _usage(usage: dict[str, Any], timings: Any) -> Usage:
    speed = timings.get("predicted_per_second") if isinstance(timings, dict) else None
    return Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                 float(speed) if isinstance(speed, (int, float)) and speed > 0 else None)


def decode_chat_response(body: Any) -> list[StreamEvent]:
    """A non-streamed chat completion, as the same events a stream would give."""
    _raise_if_error(body)
    if not isinstance(body, dict) or not body.get("choices"):
        raise InferenceError(f"server reply has no choices: {json.dumps(body)[:300]}")
    decoder = ChatStreamDecoder()
    events = decoder.decode(json.dumps(body))
    return events + decoder.finish()


class TextCompletionDecoder(_StreamDecoder):
    """OpenAI /v1/completions (base models): ``choices[0].text`` pieces; no chat template, no <think> split."""

    def decode(self, data: str) -> list[StreamEvent]:
        payload = self._payload(data)
        if payload is None:
            return []
        _raise_if_error(payload)
        events: list[StreamEvent] = []
        for choice in payload.get("choices") or []:
            text = choice.get("text")
            if text:
                events.append(TextDelta(text))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        usage = payload.get("usage")
        if isinstance(usage, dict):
            events.append(_usage(usage, payload.get("timings")))
        return events

    def finish(self) -> list[StreamEvent]:
        return [Done(self.finish_reason or "stop")]


_COMPLETION_STOP_REASONS = {"eos": "stop", "word": "stop", "limit": "length"}


class CompletionStreamDecoder(_StreamDecoder):
    """llama.cpp's native /completion stream: {"content": ..., "stop": bool, "stop_type": ...}."""

    def decode(self, data: str) -> list[StreamEvent]:
        payload = self._payload(data)
        if payload is None:
            return []
        _raise_if_error(payload)
        events: list[StreamEvent] = []
        if payload.get("content"):
            events.extend(self._think.feed(payload["content"]))
        if payload.get("stop"):
            self.saw_done = True
            stop_type = payload.get("stop_type") or ("limit" if payload.get("stopped_limit") else "eos")
            self.finish_reason = _COMPLETION_STOP_REASONS.get(stop_type, "stop")
            prompt_n = payload.get("tokens_evaluated") or (payload.get("timings") or {}).get("prompt_n")
            predicted = payload.get("tokens_predicted") or (payload.get("timings") or {}).get("predicted_n")
            if prompt_n is not None or predicted is not None:
                events.append(Usage(prompt_n, predicted))
        return events

    def finish(self) -> list[StreamEvent]:
        return [*self._think.flush(), Done(self.finish_reason or "stop")]
