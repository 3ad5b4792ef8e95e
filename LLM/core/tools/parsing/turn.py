"""One model turn parsed with what is known of its prompt and of the server's reasoning channel (pure).

Where the answer starts depends on two things the text alone cannot tell:

* whether the rendered prompt opened reasoning (QwQ and Qwen3-Thinking templates end the generation prompt with
  ``<think>\\n``): then raw text starts inside reasoning;
* whether the server already took the reasoning out (llama-server does by default: ``reasoning_content``): then
  the content is the answer, even when the prompt opened ``<think>``.

So reasoning that arrives on its own channel before any content settles it: the content is the answer. Otherwise
a prompt that opened ``<think>`` starts the parse inside reasoning, except that a turn which then ends normally
without any ``</think>`` must have had its tag taken away by the server (reasoning it left empty), and is the
answer after all. Whatever is known, a call before a lone ``</think>`` is never a call.
"""

from __future__ import annotations

from typing import Any

from ...events import TextDelta
from .markup import THINK_CLOSE
from .output import ParsedOutput, ParserEvent
from .stream import ToolCallStreamParser, parse_tool_calls


class TurnParser:
    """Feed a turn's content text; ``finish(truncated)`` gives the ParsedOutput and leaves ``final_events``.

    ``prompt_opens_reasoning``: True / False when the rendered prompt was seen, None when it could not be.
    Call :meth:`reasoning_arrived` for reasoning the server sent apart (before the content it precedes).
    """

    def __init__(self, tools: list[dict[str, Any]] | None, prompt_opens_reasoning: bool | None) -> None:
        self._tools = tools
        self._opens = prompt_opens_reasoning
        self._reasoning_first = False
        self._parser: ToolCallStreamParser | None = None
        self._raw: list[str] | None = None  # kept only while parsing from inside reasoning, for finish()
        self.final_events: list[ParserEvent] = []

    def reasoning_arrived(self) -> None:
        if self._parser is None:
            self._reasoning_first = True

    def feed(self, chunk: str) -> list[ParserEvent]:
        parser = self._parser or self._start()
        if self._raw is not None:
            self._raw.append(chunk)
        return parser.feed(chunk)

    def finish(self, truncated: bool = False) -> ParsedOutput:
        """End of the turn; ``truncated``: it stopped at the token limit (finish_reason length)."""
        parser = self._parser or self._start()
        result = parser.finish()
        self.final_events = parser.final_events
        raw = "".join(self._raw) if self._raw is not None else None
        if raw is not None and not truncated and THINK_CLOSE not in raw:
            # Ended normally, never left the reasoning the prompt opened: the server took the (empty) reasoning's
            # close tag away, so this was the answer. What already went out as reasoning cannot be taken back.
            answer = parse_tool_calls(raw, self._tools)
            self.final_events = [*parser.final_events, *([TextDelta(answer.content)] if answer.content else []),
                                 *answer.calls]
            return ParsedOutput(answer.content, result.reasoning, answer.calls, answer.errors)
        return result

    def _start(self) -> ToolCallStreamParser:
        if self._reasoning_first or self._opens is False:
            # The content is the answer; content streams at once, calls still wait for a lone </think>.
            parser = ToolCallStreamParser(self._tools, None, stream_content=True)
        elif self._opens:
            parser = ToolCallStreamParser(self._tools, True)
            self._raw = []
        else:  # nothing known: the policy as written, content held until a think tag or the end settles it
            parser = ToolCallStreamParser(self._tools, None)
        self._parser = parser
        return parser
