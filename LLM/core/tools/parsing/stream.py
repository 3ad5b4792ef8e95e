"""The stream engine: :class:`ToolCallStreamParser`, its states and the step that handles each (pure).

Every step decides only what the text seen so far settles (``final`` means no more text will come), which is why
streaming gives the whole-text result for any chunking; the package docstring gives the policy.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from .blocks import block_body, fence_body
from .markup import (
    CONTENT_PREFIXES,
    FENCE,
    FUNC_OPEN,
    REASONING_PREFIXES,
    THINK_CLOSE,
    THINK_OPEN,
    TOOL_CLOSE,
    TOOL_OPEN,
    WS_RE,
    MarkFinder,
    held_suffix,
    match_token,
)
from .output import Output, ParsedOutput, ParserEvent
from .window import BlockWindow
from .xml_calls import type_table

__all__ = ["ToolCallStreamParser", "parse_tool_calls"]


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


class _State(IntEnum):  # an int, so it indexes the tuple of step methods cheaply
    CONTENT = 0  # visible text; scanning for markup
    REASONING = 1  # inside <think>; only </think> matters
    BLOCK = 2  # inside a <tool_call> block whose body starts with { [ or <function=
    BARE = 3  # at a bare <function=...> outside any block
    AFTER_BARE = 4  # a bare call parsed; an orphan </tool_call> right after it is swallowed
    GROUP_GAP = 5  # between blocks inside a ``` fence that may hold only valid blocks


_CONTENT, _REASONING, _BLOCK, _BARE, _AFTER_BARE, _GROUP_GAP = _State


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

    ``stream_content`` (with ``start_in_reasoning`` None): content is sent at once and stays content; only calls
    and block errors wait for a think tag or the end, so a call before a lone ``</think>`` is still never a call
    (its block's text becomes reasoning). For a prompt known not to open reasoning, where a lone ``</think>`` is
    unlikely but a call drafted before one must still not run.
    """

    def __init__(
        self, tools: list[dict[str, Any]] | None = None, start_in_reasoning: bool | None = None, *,
        stream_content: bool = False,
    ) -> None:
        self._types = type_table(tools)
        self._buf = ""  # unresolved text; everything before _pos is done with
        self._pos = 0
        self._base = 0  # absolute offset of _buf[0]; only kept up to date while _raw is
        self._state = _REASONING if start_in_reasoning else _CONTENT
        self._window = BlockWindow()  # BLOCK / BARE: the chunks since the last look, and when to look again
        self._blocks = 0  # <tool_call> blocks opened so far, for error messages
        self._marks = MarkFinder()  # CONTENT: finds the next tag or fence in _buf
        # Auto mode, before any think tag: the output stages its results, in case a lone </think> turns all of it
        # into reasoning; _lone_close is True exactly while it stages. The raw text is kept (_raw) while content is
        # staged too, since it then all becomes reasoning.
        auto = start_in_reasoning is None
        self._lone_close = auto
        self._raw: list[str] | None = [] if auto and not stream_content else None
        self._out = Output(staging=auto, stage_content=not stream_content)
        # The output's channels, at hand for the per-chunk fast paths in feed() (saves an attribute hop); not their
        # bound methods, which CPython 3.11 calls through an unspecialised, slower path.
        self._content = self._out.content
        self._reasoning = self._out.reasoning
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

    # ----------------------------------------------------------------------------------------- public

    def feed(self, chunk: str) -> list[ParserEvent]:
        """Take the next piece of model output; return the events it settles."""
        if self._result is not None:
            raise RuntimeError("ToolCallStreamParser.feed() after finish()")
        if not chunk:
            return []
        raw = self._raw
        if raw is not None:
            raw.append(chunk)
        state = self._state
        if state is _CONTENT and raw is None and self._pos == len(self._buf) and "<" not in chunk and "`" not in chunk:
            # The common case, kept short: nothing held back, nothing here can start markup, nothing staged.
            events: list[ParserEvent] = []
            self._content.emit(chunk, events)
            return events
        if state is _BLOCK or state is _BARE:
            if not self._window.add(chunk):
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
            if state is _REASONING:  # like the common case above: a fresh list, as nothing else is pending
                events = []
                self._reasoning.emit(chunk, events)
                return events
            self._out.put_content(chunk)
            return self._out.drain()
        else:
            self._append(chunk)
        self._advance(final=False)
        return self._out.drain()

    def finish(self) -> ParsedOutput:
        """End of output: resolve what is left; return the result and leave the flushed events in final_events."""
        if self._result is not None:
            return self._result
        if self._window.pending:
            self._absorb_pending()
        self._advance(final=True)
        self._commit_staged()
        self.final_events = self._out.drain()
        self._result = self._out.result()
        return self._result

    # ----------------------------------------------------------------------------------------- buffer

    def _append(self, chunk: str) -> None:
        pos = self._pos
        if pos:
            self._buf = self._buf[pos:] + chunk
            self._base += pos
            self._pos = 0
        else:
            self._buf += chunk

    def _absorb_pending(self) -> None:
        self._buf = self._buf[self._pos :] + self._window.take()
        self._base += self._pos
        self._pos = 0

    def _open(self, state: _State, body_offset: int = 0) -> None:
        self._state = state
        self._window.open(state is _BARE, body_offset)

    def _commit_staged(self) -> None:
        self._raw = None
        self._lone_close = False
        self._out.commit_staged()

    # ----------------------------------------------------------------------------------------- steps

    def _advance(self, final: bool) -> None:
        steps = self._steps
        while steps[self._state](final):
            pass

    def _step_content(self, final: bool) -> bool:
        buf, pos = self._buf, self._pos
        mark = self._marks.find(buf, pos)
        if mark is None:
            end = len(buf) if final else len(buf) - held_suffix(buf, pos, CONTENT_PREFIXES)
            if end > pos:
                self._out.put_content(buf[pos:end])
                self._pos = end
            return False
        i = mark.start()
        if i > pos:
            self._out.put_content(buf[pos:i])
            self._pos = i
        if mark.lastgroup == "block":
            self._start_block(i, mark.end())
            return True
        tag = mark.group()
        if tag == TOOL_OPEN:
            return self._open_block(i, final)
        if tag == FUNC_OPEN:
            self._open(_BARE)
            return True
        if tag == THINK_OPEN:
            self._commit_staged()
            self._state = _REASONING
            self._pos = i + len(THINK_OPEN)
            return True
        if tag == THINK_CLOSE:
            if self._lone_close:
                # A lone leading </think>: the prompt ended inside reasoning, so all text so far was reasoning.
                before = None if self._raw is None else "".join(self._raw)[: self._base + i]
                self._raw = None
                self._lone_close = False
                self._out.staged_was_reasoning(before)
            self._pos = i + len(THINK_CLOSE)  # a stray close tag is markup, not content
            return True
        return self._open_fence(i, final)

    def _step_reasoning(self, final: bool) -> bool:
        buf, pos = self._buf, self._pos
        i = buf.find(THINK_CLOSE, pos)
        if i < 0:
            end = len(buf) if final else len(buf) - held_suffix(buf, pos, REASONING_PREFIXES)
            if end > pos:
                self._out.put_reasoning(buf[pos:end])
                self._pos = end
            return False
        if i > pos:
            self._out.put_reasoning(buf[pos:i])
        self._pos = i + len(THINK_CLOSE)
        self._state = _CONTENT
        return True

    def _open_block(self, i: int, final: bool) -> bool:
        body = block_body(self._buf, i, final)
        if body is None:
            return False
        if body < 0:  # a mention of the tag, not a block (policy 2): keep scanning after it
            self._out.put_content(TOOL_OPEN)
            self._pos = i + len(TOOL_OPEN)
            return True
        self._start_block(i, body)
        return True

    def _start_block(self, i: int, body: int) -> None:
        self._blocks += 1
        self._open(_BLOCK, body - i)
        self._pos = i

    def _open_fence(self, i: int, final: bool) -> bool:
        """A ``` line that may wrap only valid blocks; then the fence goes with them (policy 6)."""
        body = fence_body(self._buf, i, final)
        if body is None:
            return False
        if body < 0:
            self._out.put_content(FENCE)
            self._pos = i + len(FENCE)
            return True
        self._out.hold(self._buf[i:body])
        self._pos = body
        return self._open_block(body, final)

    def _step_block(self, final: bool) -> bool:
        buf, start = self._buf, self._pos
        outcome = self._window.look(buf, start, self._types, final)
        if outcome is None:
            return False
        end, calls, why = outcome
        end += start
        if calls is not None:
            self._out.put_calls(calls, buf[start:end])
            self._state = _GROUP_GAP if self._out.held is not None else _CONTENT
        else:
            self._out.put_content(buf[start:end])
            self._out.put_error(f"tool_call block {self._blocks}: {why}")
            self._state = _CONTENT
        self._pos = end
        return True

    def _step_bare(self, final: bool) -> bool:
        """A complete bare ``<function=…>…</function>`` is a call (vLLM fallback); anything else is text."""
        outcome = self._window.look(self._buf, self._pos, self._types, final)
        if outcome is None:
            return False
        end, calls, _why = outcome
        if calls is None:
            self._out.put_content(FUNC_OPEN)
            self._pos += len(FUNC_OPEN)
            self._state = _CONTENT
            return True
        self._out.put_calls(calls[:1], self._buf[self._pos : self._pos + end])
        self._pos += end
        self._state = _AFTER_BARE
        return True

    def _step_after_bare(self, final: bool) -> bool:
        after = WS_RE.match(self._buf, self._pos).end()
        tok = match_token(self._buf, after, (TOOL_CLOSE,), final)
        if tok is None:
            return False
        if tok:
            self._pos = after + len(TOOL_CLOSE)
        self._state = _CONTENT
        return True

    def _step_group_gap(self, final: bool) -> bool:
        buf, pos = self._buf, self._pos
        after = WS_RE.match(buf, pos).end()
        tok = match_token(buf, after, (FENCE, TOOL_OPEN), final)
        if tok is None:
            return False
        if tok == FENCE:  # the fence held only valid blocks: it goes with them
            self._out.drop_held()
            self._pos = after + len(FENCE)
        elif tok == TOOL_OPEN:
            self._out.hold(buf[pos:after])
            self._pos = after
        else:  # something else follows: the fence was just text
            self._out.release_held()
        self._state = _CONTENT
        return True
