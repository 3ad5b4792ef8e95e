"""The one vocabulary of a model's output: stream events and tool calls (a leaf: stdlib only).

Everything that reads model output speaks it: the wire decoders (``protocol``), the
``<tool_call>`` text parser (``tools.parsing``), the inference API, the tool loop and the UI.

* ``TextDelta`` / ``ReasoningDelta``: visible answer text and reasoning text, as they stream.
* ``ToolCallDelta``: one streamed piece of a *native* ``tool_calls`` entry (wire level).
* ``ToolCall``: one complete call, whether the server sent it natively or the text parser
  recovered it; ``arguments`` is always a decoded object.
* ``Usage`` and ``Done`` close a response.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning text: ``reasoning_content`` from the server or ``<think>`` text in the content."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a native ``tool_calls`` entry; pieces with the same index belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete call. ``arguments`` is decoded (never a JSON string).

    ``invalid_arguments`` holds the raw text when a native call's arguments were not a JSON
    object; the call is kept (arguments empty) so the model can be told what was wrong.
    """

    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=new_call_id)
    invalid_arguments: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The call as an OpenAI ``tool_calls`` entry (arguments re-encoded as a JSON string)."""
        arguments = self.invalid_arguments
        if arguments is None:
            arguments = json.dumps(self.arguments, ensure_ascii=False)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response, as the engine reports them; ``tokens_per_second`` is the engine's own
    decode speed (llama-server's ``timings``), when it reports one."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """End of one response. ``finish_reason``: stop, length, tool_calls, stop_sequence, cancelled, ..."""

    finish_reason: str
    tool_calls: tuple[ToolCall, ...] = field(default=())


StreamEvent = Union[TextDelta, ReasoningDelta, ToolCallDelta, Usage, Done]
"""What a chat stream yields: the client, ``stream_inference`` and the loop's text events."""
