"""Typed events a chat stream yields, shared by the client, the inference API and the UI."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """Reasoning text: ``reasoning_content`` from the server or ``<think>`` text in the content."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a native ``tool_calls`` entry; pieces with the same index belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


@dataclass(frozen=True)
class NativeToolCall:
    """A native tool call accumulated from its deltas; ``arguments`` is the raw JSON text."""

    index: int
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Done:
    """End of one response. ``finish_reason``: stop, length, tool_calls, stop_sequence, ..."""

    finish_reason: str
    tool_calls: tuple[NativeToolCall, ...] = field(default=())


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Done
