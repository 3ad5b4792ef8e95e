"""Where the parser's results go: the events, the content and reasoning text, calls with ids, errors (pure)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Union

from ...events import ReasoningDelta, TextDelta, ToolCall
from .calls import Call

ParserEvent = Union[TextDelta, ReasoningDelta, ToolCall]
"""What the parser emits: visible text, reasoning, and each call once its block closes."""


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """What a model turn said: visible text, reasoning, calls, and why rejected blocks were rejected."""

    content: str
    reasoning: str
    calls: list[ToolCall]
    errors: list[str]


class _Channel:
    """One output channel (content or reasoning): strips its text as a whole while streaming it.

    Leading whitespace is never sent and trailing whitespace is held until more text follows, so the deltas join
    to exactly the final, stripped text.
    """

    __slots__ = ("parts", "_pending_ws", "_started", "_event", "_interned")

    def __init__(self, event: type) -> None:
        self.parts: list[str] = []
        self._pending_ws = ""
        self._started = False
        self._event = event
        # Deltas are immutable, so streaming char by char can reuse one object per short text instead of
        # allocating one per character (it halves the per-character cost); bounded by the texts' alphabet.
        self._interned: dict[str, ParserEvent] = {}

    def emit(self, text: str, events: list[ParserEvent]) -> None:
        if not text:
            return
        if self._started and not self._pending_ws and not text[-1].isspace():  # the per-character fast path
            self.parts.append(text)
            event = self._interned.get(text)
            if event is None:
                event = self._delta(text)
            events.append(event)
            return
        joined = self._pending_ws + text
        kept = joined.rstrip()
        self._pending_ws = joined[len(kept) :]
        if not self._started:
            kept = kept.lstrip()
            if not kept:
                self._pending_ws = ""
                return
            self._started = True
        if kept:
            self.parts.append(kept)
            events.append(self._delta(kept))

    def _delta(self, text: str) -> ParserEvent:
        if len(text) > 2:
            return self._event(text)
        event = self._interned.get(text)
        if event is None:
            event = self._interned[text] = self._event(text)
        return event

    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True, slots=True)
class _StagedError:
    message: str


@dataclass(frozen=True, slots=True)
class _StagedCalls:
    calls: list[Call]
    raw: str  # the block's text, which becomes reasoning if a lone </think> follows


class Output:
    """Takes results in text order: events to hand out, and the content, reasoning, calls and errors so far.

    Two kinds of content wait for a decision. ``held`` is fence text that goes with the calls it wraps, unless
    any other content follows (which then takes it along). With ``staging`` (auto mode, before any think tag)
    content, calls and errors are staged, in case a lone ``</think>`` turns all the text before it into
    reasoning; :meth:`commit_staged` or :meth:`staged_was_reasoning` ends staging. With ``stage_content`` False
    only calls and errors wait: content goes out at once, and stays content whatever follows.
    """

    __slots__ = ("content", "reasoning", "events", "calls", "errors", "held", "_staged", "_stage_content",
                 "_id_prefix", "_id_count")

    def __init__(self, staging: bool, stage_content: bool = True) -> None:
        self.content = _Channel(TextDelta)
        self.reasoning = _Channel(ReasoningDelta)
        self.events: list[ParserEvent] = []  # settled but not yet handed out; see drain()
        self.calls: list[ToolCall] = []
        self.errors: list[str] = []
        self.held: str | None = None  # a ```lang fence line (and the gaps after it) while it may wrap only calls
        # Runs of content (a list of texts), _StagedCalls and _StagedErrors, in text order.
        self._staged: list[Any] | None = [] if staging else None
        self._stage_content = stage_content
        # Ids: one random prefix per parser and a counter (os.urandom per call costs more than parsing the call).
        self._id_prefix = "call_" + secrets.token_hex(8)
        self._id_count = 0

    def drain(self) -> list[ParserEvent]:
        events, self.events = self.events, []
        return events

    def result(self) -> ParsedOutput:
        return ParsedOutput(self.content.text(), self.reasoning.text(), list(self.calls), list(self.errors))

    def hold(self, text: str) -> None:
        self.held = text if self.held is None else self.held + text

    def put_content(self, text: str) -> None:
        if self.held is not None:  # content after held fence text: the fence does not wrap only calls
            text, self.held = self.held + text, None
        staged = self._staged
        if staged is not None and self._stage_content:
            if staged and type(staged[-1]) is list:
                staged[-1].append(text)
            else:
                staged.append([text])
            return
        self.content.emit(text, self.events)

    def release_held(self) -> None:
        """The held fence text turns out to be just text."""
        self.put_content("")

    def drop_held(self) -> None:
        """The held fence text wrapped only calls: it goes with them."""
        self.held = None

    def put_reasoning(self, text: str) -> None:
        self.reasoning.emit(text, self.events)

    def put_calls(self, found: list[Call], raw: str) -> None:
        """The calls of one block (``raw``: its text)."""
        if self._staged is not None:
            self._staged.append(_StagedCalls(found, raw))
            return
        for call in found:
            self._put_call(call)

    def _put_call(self, found: Call) -> None:
        self._id_count += 1
        call = ToolCall(found[0], found[1], f"{self._id_prefix}{self._id_count:04x}")
        self.calls.append(call)
        self.events.append(call)

    def put_error(self, message: str) -> None:
        if self._staged is not None:
            self._staged.append(_StagedError(message))
            return
        self.errors.append(message)

    def commit_staged(self) -> None:
        """No lone </think> after all: what was staged is content and calls."""
        staged, self._staged = self._staged, None
        for item in staged or ():
            if type(item) is list:
                self.content.emit("".join(item), self.events)
            elif type(item) is _StagedCalls:
                for call in item.calls:
                    self._put_call(call)
            else:
                self.errors.append(item.message)

    def staged_was_reasoning(self, text: str | None) -> None:
        """A lone leading </think>: what was staged is void, and ``text``, all the output before it, is reasoning.

        Without staged content (``text`` None) content already went out; the staged blocks' text is the reasoning.
        """
        staged, self._staged = self._staged, None
        if text is None:
            text = "".join(item.raw for item in staged or () if type(item) is _StagedCalls)
        self.reasoning.emit(text, self.events)
