"""Native ``tool_calls`` for every model: a chat answer that writes ``<tool_call>`` text is rewritten, streamed
or whole, so a client of the endpoint never parses tags (the built-in server and engines whose template lacks
tool support answer so). The project's own streaming parser decides what is a call
(``tools.parsing.NativeToolCalls``); an answer that already carries ``tool_calls`` passes through as it is.
"""

from __future__ import annotations

import json
from typing import Any

from ..protocol.sse import SSEDecoder, SSEEvent
from ..tools.parsing import NativeToolCalls, native_message


def wants_tool_calls(payload: dict[str, Any]) -> bool:
    """A chat request that offers tools and does not forbid calling them."""
    return bool(payload.get("tools")) and payload.get("tool_choice") != "none"


def _event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class StreamShaper:
    """An upstream event stream in, the same stream with ``<tool_call>`` text turned into tool-call deltas out."""

    def __init__(self, tools: list[dict[str, Any]] | None) -> None:
        # The prompt is the engine's business: text is content until it says <think> (waiting for a lone
        # </think> to decide would hold every piece back to the end).
        self._calls = NativeToolCalls(tools, start_in_reasoning=False)
        self._sse = SSEDecoder()
        self._envelope: dict[str, Any] | None = None  # id, model, created... of the stream's chunks

    def feed(self, raw: bytes) -> bytes:
        return b"".join(self._shape(event) for event in self._sse.feed(raw))

    def finish(self) -> bytes:
        return b"".join(self._shape(event) for event in self._sse.flush())

    def _shape(self, event: SSEEvent) -> bytes:
        if event.data.strip() == "[DONE]":
            return b"data: [DONE]\n\n"
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return b"data: " + event.data.encode() + b"\n\n"
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not choices or not isinstance(choices[0], dict):
            return _event(chunk)  # the usage chunk, an error: as they are
        self._envelope = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        content = delta.get("content")
        out = []
        if isinstance(content, str) and content and not delta.get("tool_calls"):
            rest = {k: v for k, v in delta.items() if k != "content"}
            pieces = self._calls.feed(content)
            if rest and not pieces:
                pieces = [{}]
            for i, piece in enumerate(pieces):
                out.append(self._chunk({**(rest if i == 0 else {}), **piece}, None))
        elif delta or not choice.get("finish_reason"):
            out.append(_event(chunk))
        finish = choice.get("finish_reason")
        if finish:
            out += [self._chunk(piece, None) for piece in self._calls.finish()]
            if finish == "stop" and self._calls.calls:
                finish = "tool_calls"
            closing = {**chunk, "choices": [{**choice, "delta": {}, "finish_reason": finish}]}
            out.append(_event(closing))
        return b"".join(out)

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        return _event({**(self._envelope or {}), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def shape_whole(body: bytes, tools: list[dict[str, Any]] | None) -> bytes:
    """A non-streamed chat answer with its ``<tool_call>`` text made native; anything else unchanged."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    changed = False
    for choice in (answer.get("choices") or []) if isinstance(answer, dict) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or message.get("tool_calls") or not isinstance(message.get("content"), str):
            continue
        native = native_message(message["content"], tools, start_in_reasoning=False)
        if native.get("tool_calls") or native.get("reasoning_content"):  # as the streamed form splits them
            message.update(native)
            if native.get("tool_calls") and choice.get("finish_reason") == "stop":
                choice["finish_reason"] = "tool_calls"
            changed = True
    return json.dumps(answer).encode() if changed else body
