"""Client-side stop sequences: text after a stop sequence is never returned (pure, incremental)."""

from __future__ import annotations

from .textscan import partial_suffix


class StopSequenceFilter:
    """Feed visible text; returns the part that is safe to show.

    Holds back a tail that could still grow into a stop sequence, so a sequence split
    across chunks is caught; ``stopped`` turns true once one is seen.
    """

    def __init__(self, stops: list[str] | None) -> None:
        self._stops = [s for s in (stops or []) if s]
        self._held = ""
        self.stopped = False
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buf = self._held + text
        cut = -1
        for stop in self._stops:
            pos = buf.find(stop)
            if pos >= 0 and (cut < 0 or pos < cut):
                cut, self.matched = pos, stop
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buf[:cut]
        keep = max((partial_suffix(buf, stop) for stop in self._stops), default=0)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held

