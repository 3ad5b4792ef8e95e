"""Splitting ``<think>...</think>`` out of streamed content (pure, incremental)."""

from __future__ import annotations

from ..events import ReasoningDelta, TextDelta
from .textscan import partial_suffix

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Feed content text; get TextDelta / ReasoningDelta back, tags removed.

    A possible partial tag at the end of a chunk is held back until the next chunk
    decides it, so a tag split across chunks never leaks into the visible text.
    """

    def __init__(self, start_in_reasoning: bool = False) -> None:
        self._in_think = start_in_reasoning
        self._held = ""

    def feed(self, text: str) -> list[TextDelta | ReasoningDelta]:
        if not self._held and not self._in_think and "<" not in text:
            return [TextDelta(text)] if text else []  # the hot path: plain visible text
        out: list[TextDelta | ReasoningDelta] = []
        buf = self._held + text
        self._held = ""
        while buf:
            tag = CLOSE if self._in_think else OPEN
            pos = buf.find(tag)
            if pos >= 0:
                self._emit(buf[:pos], out)
                buf = buf[pos + len(tag) :]
                self._in_think = not self._in_think
                continue
            keep = partial_suffix(buf, tag)
            self._emit(buf[: len(buf) - keep], out)
            self._held = buf[len(buf) - keep :]
            break
        return out

    def flush(self) -> list[TextDelta | ReasoningDelta]:
        out: list[TextDelta | ReasoningDelta] = []
        self._emit(self._held, out)
        self._held = ""
        return out

    def _emit(self, text: str, out: list[TextDelta | ReasoningDelta]) -> None:
        if text:
            out.append(ReasoningDelta(text) if self._in_think else TextDelta(text))
