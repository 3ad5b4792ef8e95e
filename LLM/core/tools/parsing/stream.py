"""Recover Qwen/Hermes `<tool_call>` tool calls and `<think>` reasoning from raw model text, whole or streamed.

A pure leaf module (stdlib only, no I/O). Policy: section 6 of the shared TOOLCALL_PARSERS.md, in short:

* Reasoning first: ``<think>…</think>`` is reasoning, calls inside it are never calls; an unclosed ``<think>``
  makes the rest reasoning; text before a lone leading ``</think>`` is reasoning.
* ``<tool_call>`` opens a block only when (after whitespace and an optional ```` ```lang ```` line) ``{``, ``[`` or
  ``<function=`` follows; otherwise the tag is plain text. JSON bodies (Hermes / Qwen2.5 / Qwen3) and
  Qwen3-Coder XML bodies (``<function=NAME><parameter=KEY>…``) are both understood.
* A block that does not give a non-empty name and an object of arguments is no call: its text stays in the
  content verbatim and the reason goes to ``errors``. Truncated calls are never returned. No tag, no call.

There is one engine, :class:`ToolCallStreamParser`; :func:`parse_tool_calls` feeds it the whole text at once.
Streaming therefore gives the whole-text result for any chunking, provided every decision waits until the text
seen so far settles it; that is the rule each step below follows (``final`` means "no more text will come").
Work stays linear: resolved text is never scanned again, and an open block is looked at again only when a
plausible end of it arrives or it has grown geometrically (see ``_worth_a_look``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Union

from ...events import ReasoningDelta, TextDelta, ToolCall
from .syntax import (  # the grammar; this module is the stream engine
    _BARE_TRIGGER,
    _BLOCK_TRIGGER,
    _CONTENT_PREFIXES,
    _Call,
    _FENCE,
    _FENCE_OPEN_PREFIX_RE,
    _FENCE_OPEN_RE,
    _FENCE_RE,
    _FUNC_OPEN,
    _JSON_LOOKAHEAD,
    _MARK_RE,
    _Outcome,
    _REASONING_PREFIXES,
    _Resolver,
    _THINK_CLOSE,
    _THINK_OPEN,
    _TOOL_CLOSE,
    _TOOL_OPEN,
    _WS_RE,
    _block_body,
    _held_suffix,
    _match_token,
    _may_end_here,
    _resolve_bare,
    _resolve_json_block,
    _resolve_xml_block,
    _type_table,
)

__all__ = [
    "ParsedOutput",
    "ParserEvent",
    "ToolCallStreamParser",
    "parse_tool_calls",
]


# --------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """What a model turn said: visible text, reasoning, calls, and why rejected blocks were rejected."""

    content: str
    reasoning: str
    calls: list[ToolCall]
    errors: list[str]


ParserEvent = Union[TextDelta, ReasoningDelta, ToolCall]
"""What the parser emits: visible text, reasoning, and each call once its block closes."""


def parse_tool_calls(
    text: str, tools: list[dict[str, Any]] | None = None, *, start_in_reasoning: bool | None = None
) -> ParsedOutput:
    """Parse a complete model response. ``tools`` (OpenAI tool list) types XML parameter values.

    ``start_in_reasoning``: see :class:`ToolCallStreamParser`; the default (None) detects a lone leading
    ``</think>`` from the text itself.
    """
    parser = ToolCallStreamParser(tools, start_in_reasoning=start_in_reasoning)
    parser.feed(text)
    return parser.finish()


# --------------------------------------------------------------------------------------------------- streaming


class _State(IntEnum):  # an int, so it indexes the tuple of step methods cheaply
    CONTENT = 0  # visible text; scanning for markup
    REASONING = 1  # inside <think>; only </think> matters
    BLOCK = 2  # inside a <tool_call> block whose body starts with { [ or <function=
    BARE = 3  # at a bare <function=...> outside any block
    AFTER_BARE = 4  # a bare call parsed; an orphan </tool_call> right after it is swallowed
    GROUP_GAP = 5  # between blocks inside a ``` fence that may hold only valid blocks


_CONTENT, _REASONING, _BLOCK, _BARE, _AFTER_BARE, _GROUP_GAP = _State


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


class ToolCallStreamParser:
    """Incremental parser: ``feed()`` chunks, get events; ``finish()`` gives the :class:`ParsedOutput`.

    * ``feed(chunk)`` returns the events the new text settles: :class:`TextDelta` once text cannot be the
      start of markup (a partial ``<tool_ca`` is held back and released if it is not a tag), :class:`ReasoningDelta`
      likewise, :class:`ToolCall` when a block closes (an open block is hidden until then; if it turns out
      invalid its raw text is sent as content, in text order).
    * ``finish()`` returns the ParsedOutput, equal to ``parse_tool_calls`` on the joined text for any chunking
      (call ids aside), and leaves the events it flushed in ``final_events``. The content and reasoning deltas of
      all calls join to exactly ``result.content`` and ``result.reasoning``.

    ``start_in_reasoning``: True when the prompt ended with ``<think>`` (output starts inside reasoning); False
    when it did not (a stray ``</think>`` is then dropped and the text before it stays content). None (default)
    follows the policy literally: text before a lone leading ``</think>`` is reasoning. Since that can only be
    known once a ``<think>``/``</think>`` or the end arrives, content and calls are held back until then: pass
    True or False when the prompt is known, to stream content without delay.
    """

    def __init__(self, tools: list[dict[str, Any]] | None = None, start_in_reasoning: bool | None = None) -> None:
        self._types = _type_table(tools)
        self._buf = ""  # unresolved text; everything before _pos is done with
        self._pos = 0
        self._base = 0  # absolute offset of _buf[0]; only kept up to date while _raw is
        self._pending: list[str] = []  # chunks received inside an open block, joined only when worth a look
        self._pending_len = 0
        self._retry_at = 0  # an open block is looked at again once it is this long, even without a closing tag
        self._tag_floor = 0  # ... or once it is this long and a plausible closing tag arrives
        self._seen_tag = False
        self._state = _REASONING if start_in_reasoning else _CONTENT
        self._body_offset = 0  # BLOCK / BARE: where the body starts, from _pos
        self._blocks = 0  # <tool_call> blocks opened so far, for error messages
        self._group: str | None = None  # held ```lang fence text while it may wrap only valid blocks
        self._fence_buf: str | None = None  # _find_mark's memo: the next ``` in this buffer (-1: none)
        self._fence_at = -1
        # Auto mode, before any think tag: results are staged, and the raw text kept, in case a lone </think>
        # turns all of it into reasoning.
        self._staged: list[Any] | None = [] if start_in_reasoning is None else None
        self._raw: list[str] | None = [] if start_in_reasoning is None else None
        self._events: list[ParserEvent] = []
        self._content = _Channel(TextDelta)
        self._reasoning = _Channel(ReasoningDelta)
        self._calls: list[ToolCall] = []
        self._errors: list[str] = []
        self._result: ParsedOutput | None = None
        self.final_events: list[ParserEvent] = []
        self._steps = (  # indexed by _State
            self._step_content,
            self._step_reasoning,
            self._step_block,
            self._step_bare,
            self._step_after_bare,
            self._step_group_gap,
        )
        # Ids: one random prefix per parser and a counter (os.urandom per call costs more than parsing the call).
        self._id_prefix = "call_" + secrets.token_hex(8)
        self._id_count = 0

    # ----------------------------------------------------------------------------------------- public

    def feed(self, chunk: str) -> list[ParserEvent]:
        """Take the next piece of model output; return the events it settles."""
        if self._result is not None:
            raise RuntimeError("ToolCallStreamParser.feed() after finish()")
        if not chunk:
            return []
        if self._raw is not None:
            self._raw.append(chunk)
        state = self._state
        if (
            state is _CONTENT
            and self._pos == len(self._buf)
            and self._staged is None
            and "<" not in chunk
            and "`" not in chunk
        ):
            # The common case, kept short: nothing held back, nothing here can start markup, nothing staged.
            events: list[ParserEvent] = []
            self._content.emit(chunk, events)
            return events
        if state is _BLOCK or state is _BARE:
            self._pending.append(chunk)
            self._pending_len += len(chunk)
            if not self._worth_a_look(chunk):
                return []
            self._absorb_pending()
        elif (
            (state is _CONTENT or state is _REASONING)
            and self._pos == len(self._buf)
            and "<" not in chunk
            and (state is _REASONING or "`" not in chunk)
        ):
            # Nothing held back and nothing here can start markup: send it straight on (past the buffer).
            self._base += len(self._buf) + len(chunk)
            self._buf, self._pos = "", 0
            if state is _CONTENT:
                self._put_content(chunk)
            else:
                self._reasoning.emit(chunk, self._events)
            return self._drain()
        else:
            self._append(chunk)
        self._advance(final=False)
        return self._drain()

    def finish(self) -> ParsedOutput:
        """End of output: resolve what is left; return the result and leave the flushed events in final_events."""
        if self._result is not None:
            return self._result
        if self._pending:
            self._absorb_pending()
        self._advance(final=True)
        self._commit_staged()
        self.final_events = self._drain()
        self._result = ParsedOutput(
            content=self._content.text(),
            reasoning=self._reasoning.text(),
            calls=list(self._calls),
            errors=list(self._errors),
        )
        return self._result

    # ----------------------------------------------------------------------------------------- buffer

    def _drain(self) -> list[ParserEvent]:
        events, self._events = self._events, []
        return events

    def _append(self, chunk: str) -> None:
        pos = self._pos
        if pos:
            self._buf = self._buf[pos:] + chunk
            self._base += pos
            self._pos = 0
        else:
            self._buf += chunk

    def _absorb_pending(self) -> None:
        self._buf = self._buf[self._pos :] + "".join(self._pending)
        self._base += self._pos
        self._pos = 0
        self._pending.clear()
        self._pending_len = 0

    def _worth_a_look(self, chunk: str) -> bool:
        """Whether an open block may have ended with this chunk.

        Char-by-char streaming stays linear because a failed look is followed by another only once the block has
        doubled, or, when a closing tag arrives, grown by a quarter; a closing tag counts only if it is the first,
        or if ``}`` ``]`` ``>`` or a fence precedes it, as at a real end, so tags quoted inside a long argument
        neither cost a look each nor delay the look at the real end.
        """
        size = self._pending_len + len(self._buf) - self._pos
        if size >= self._retry_at:
            return True
        if ">" not in chunk or size < self._tag_floor:
            return False
        trigger = _BARE_TRIGGER if self._state is _BARE else _BLOCK_TRIGGER
        recent = self._recent(len(chunk) + 2 * len(_TOOL_CLOSE) + _JSON_LOOKAHEAD)
        # Only tags inside the body count (the opener itself ends in "tool_call>").
        at = recent.find(trigger, max(0, len(recent) - (size - self._body_offset)))
        if at < 0:
            return False
        if not self._seen_tag:
            self._seen_tag = True
            return True
        while at >= 0:
            if _may_end_here(recent[:at]):
                return True
            at = recent.find(trigger, at + 1)
        return False

    def _looked_too_early(self) -> None:
        size = len(self._buf) - self._pos
        self._retry_at = 2 * size + 16
        self._tag_floor = size + size // 4

    def _open(self, state: _State, body_offset: int = 0) -> None:
        self._state = state
        self._body_offset = body_offset
        self._retry_at = 0
        self._tag_floor = 0
        self._seen_tag = False

    def _recent(self, size: int) -> str:
        pieces: list[str] = []
        have = 0
        for piece in reversed(self._pending):
            pieces.append(piece)
            have += len(piece)
            if have >= size:
                break
        else:
            pieces.append(self._buf[max(self._pos, len(self._buf) - (size - have)) :])
        return "".join(reversed(pieces))[-size:]

    # ----------------------------------------------------------------------------------------- sinks

    def _put_content(self, text: str) -> None:
        if self._group is not None:  # any content while a fence group is open means it does not hold only calls
            text, self._group = self._group + text, None
        if self._staged is not None:
            if self._staged and type(self._staged[-1]) is list:
                self._staged[-1].append(text)
            else:
                self._staged.append([text])
            return
        self._content.emit(text, self._events)

    def _put_call(self, found: _Call) -> None:
        if self._staged is not None:
            self._staged.append(found)
            return
        self._id_count += 1
        call = ToolCall(found[0], found[1], f"{self._id_prefix}{self._id_count:04x}")
        self._calls.append(call)
        self._events.append(call)

    def _put_error(self, message: str) -> None:
        if self._staged is not None:
            self._staged.append(_StagedError(message))
            return
        self._errors.append(message)

    def _commit_staged(self) -> None:
        """No lone </think> after all: what was staged is content and calls."""
        staged, self._staged, self._raw = self._staged, None, None
        for item in staged or ():
            if type(item) is list:
                self._content.emit("".join(item), self._events)
            elif type(item) is tuple:
                self._put_call(item)
            else:
                self._errors.append(item.message)

    # ----------------------------------------------------------------------------------------- steps

    def _advance(self, final: bool) -> None:
        steps = self._steps
        while steps[self._state](final):
            pass

    def _find_mark(self, buf: str, pos: int) -> re.Match[str] | None:
        """The first markup at or after ``pos``: a "<" tag or a ``` fence.

        Two searches rather than one regex with both: a regex that may start with either character tests every
        character in turn, three times slower, and prose is most of the text. The next fence is remembered per
        buffer so that a text without any is not searched to its end at every tag.
        """
        if self._fence_buf is not buf or 0 <= self._fence_at < pos:
            self._fence_buf, self._fence_at = buf, buf.find(_FENCE, pos)
        fence = self._fence_at
        # Stopping the tag search at the fence is safe: a <tool_call> whose body starts after a fence line is still
        # found by the plain "tool_call>" branch and checked in full by _block_body.
        mark = _MARK_RE.search(buf, pos, fence if fence >= 0 else len(buf))
        if mark is not None or fence < 0:
            return mark
        return _FENCE_RE.match(buf, fence)

    def _step_content(self, final: bool) -> bool:
        buf, pos = self._buf, self._pos
        mark = self._find_mark(buf, pos)
        if mark is None:
            end = len(buf) if final else len(buf) - _held_suffix(buf, pos, _CONTENT_PREFIXES)
            if end > pos:
                self._put_content(buf[pos:end])
                self._pos = end
            return False
        i = mark.start()
        if i > pos:
            self._put_content(buf[pos:i])
            self._pos = i
        if mark.lastgroup == "block":
            self._start_block(i, mark.end())
            return True
        tag = mark.group()
        if tag == _TOOL_OPEN:
            return self._open_block(i, final)
        if tag == _FUNC_OPEN:
            self._open(_BARE)
            return True
        if tag == _THINK_OPEN:
            self._commit_staged()
            self._state = _REASONING
            self._pos = i + len(_THINK_OPEN)
            return True
        if tag == _THINK_CLOSE:
            if self._staged is not None and self._raw is not None:
                # A lone leading </think>: the prompt ended inside reasoning, so all text so far was reasoning.
                before = "".join(self._raw)[: self._base + i]
                self._staged = self._raw = None
                self._reasoning.emit(before, self._events)
            self._pos = i + len(_THINK_CLOSE)  # a stray close tag is markup, not content
            return True
        return self._open_fence(i, final)

    def _step_reasoning(self, final: bool) -> bool:
        buf, pos = self._buf, self._pos
        i = buf.find(_THINK_CLOSE, pos)
        if i < 0:
            end = len(buf) if final else len(buf) - _held_suffix(buf, pos, _REASONING_PREFIXES)
            if end > pos:
                self._reasoning.emit(buf[pos:end], self._events)
                self._pos = end
            return False
        if i > pos:
            self._reasoning.emit(buf[pos:i], self._events)
        self._pos = i + len(_THINK_CLOSE)
        self._state = _CONTENT
        return True

    def _open_block(self, i: int, final: bool) -> bool:
        body = _block_body(self._buf, i, final)
        if body is None:
            return False
        if body < 0:  # a mention of the tag, not a block (policy 2): keep scanning after it
            self._put_content(_TOOL_OPEN)
            self._pos = i + len(_TOOL_OPEN)
            return True
        self._start_block(i, body)
        return True

    def _start_block(self, i: int, body: int) -> None:
        self._blocks += 1
        self._open(_BLOCK, body - i)
        self._pos = i

    def _open_fence(self, i: int, final: bool) -> bool:
        """A ``` line that may wrap only valid blocks; then the fence goes with them (policy 6)."""
        buf = self._buf
        fence = _FENCE_OPEN_RE.match(buf, i)
        if fence is None:
            if not final and _FENCE_OPEN_PREFIX_RE.fullmatch(buf, i):
                return False
            tok = ""
        else:
            tok = _match_token(buf, fence.end(), (_TOOL_OPEN,), final)
            if tok is None:
                return False
        if not tok:
            self._put_content(_FENCE)
            self._pos = i + len(_FENCE)
            return True
        self._group = buf[i : fence.end()]
        self._pos = fence.end()
        return self._open_block(self._pos, final)

    def _windowed(self, resolve: _Resolver, skip: int, by_tags: bool, final: bool) -> _Outcome | None:
        """``resolve`` on the open block's text cut short, on longer and longer prefixes as far as needed.

        A resolver's answer on a prefix is final once it gives one (the rule streaming relies on), so trying short
        prefixes first is safe, and it keeps whole-text parsing linear: json's errors count the lines before their
        position, and searches for closing tags look ahead, both over whatever text they are given. Blocks are cut
        after successive ``...tool_call>`` tags (they can only end at one); bare calls, which a mention in prose
        settles within a few characters, at doubling lengths.
        """
        buf, start, types = self._buf, self._pos, self._types
        n = len(buf)
        hit = buf.find(_BLOCK_TRIGGER, start + skip) if by_tags else -1  # skip: the opener ends in "tool_call>"
        end = start + 64
        while True:
            if by_tags:
                end = n if hit < 0 else max(hit + len(_BLOCK_TRIGGER) + 2 * _JSON_LOOKAHEAD, 2 * end - start)
            if end >= n:
                return resolve(buf[start:] if start else buf, skip, final, types)
            outcome = resolve(buf[start:end], skip, False, types)
            if outcome is not None:
                return outcome
            if by_tags:
                hit = buf.find(_BLOCK_TRIGGER, max(hit + len(_BLOCK_TRIGGER), 2 * end - start))
            else:
                end = 2 * end - start

    def _step_block(self, final: bool) -> bool:
        buf, start, body = self._buf, self._pos, self._body_offset
        resolve = _resolve_xml_block if buf[start + body] == "<" else _resolve_json_block
        outcome = self._windowed(resolve, body, True, final)
        if outcome is None:
            self._looked_too_early()
            return False
        end, calls, why = outcome
        end += start
        if calls is not None:
            for call in calls:
                self._put_call(call)
            self._state = _GROUP_GAP if self._group is not None else _CONTENT
        else:
            self._put_content(buf[start:end])
            self._put_error(f"tool_call block {self._blocks}: {why}")
            self._state = _CONTENT
        self._pos = end
        return True

    def _step_bare(self, final: bool) -> bool:
        """A complete bare ``<function=…>…</function>`` is a call (vLLM fallback); anything else is text."""
        outcome = self._windowed(_resolve_bare, 0, False, final)
        if outcome is None:
            self._looked_too_early()
            return False
        end, calls, _why = outcome
        if calls is None:
            self._put_content(_FUNC_OPEN)
            self._pos += len(_FUNC_OPEN)
            self._state = _CONTENT
            return True
        self._put_call(calls[0])
        self._pos += end
        self._state = _AFTER_BARE
        return True

    def _step_after_bare(self, final: bool) -> bool:
        after = _WS_RE.match(self._buf, self._pos).end()
        tok = _match_token(self._buf, after, (_TOOL_CLOSE,), final)
        if tok is None:
            return False
        if tok:
            self._pos = after + len(_TOOL_CLOSE)
        self._state = _CONTENT
        return True

    def _step_group_gap(self, final: bool) -> bool:
        buf, pos = self._buf, self._pos
        after = _WS_RE.match(buf, pos).end()
        tok = _match_token(buf, after, (_FENCE, _TOOL_OPEN), final)
        if tok is None:
            return False
        if tok == _FENCE:  # the fence held only valid blocks: it goes with them
            self._group = None
            self._pos = after + len(_FENCE)
        elif tok == _TOOL_OPEN:
            self._group = (self._group or "") + buf[pos:after]
            self._pos = after
        else:  # something else follows: the fence was just text
            held, self._group = self._group or "", None
            self._put_content(held)
        self._state = _CONTENT
        return True


@dataclass(frozen=True, slots=True)
class _StagedError:
    message: str
