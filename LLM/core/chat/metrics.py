"""Timing one answer: time to first token, tokens per second, token counts (pure; the clock is injectable)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def tokens_per_second(tokens: int, first: float, last: float) -> float | None:
    """Decode speed: tokens after the first over the time from the first to the last (seconds)."""
    if last > first and tokens > 1:
        return (tokens - 1) / (last - first)
    return None


@dataclass
class Metrics:
    """What the line under an answer shows."""

    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float | None = None
    finish_reason: str | None = None
    chunks: int = 0  # streamed text pieces: the count shown when the server reports no usage

    def summary(self) -> str:
        parts = []
        if self.time_to_first_token_ms is not None:
            parts.append(f"{self.time_to_first_token_ms / 1000:.2f} s to first token")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            prompt = "?" if self.prompt_tokens is None else str(self.prompt_tokens)
            completion = "?" if self.completion_tokens is None else str(self.completion_tokens)
            parts.append(f"{prompt} prompt + {completion} completion tokens")
        elif self.chunks and self.finish_reason == "cancelled":
            parts.append(f"{self.chunks} chunks (stopped before the engine reported token usage)")
        elif self.chunks:
            parts.append(f"{self.chunks} chunks (no token usage reported)")
        if self.finish_reason:
            parts.append(f"finish: {self.finish_reason}")
        return "  ·  ".join(parts)


class MetricsMeter:
    """Times one streamed answer; ``snapshot()`` is valid mid-stream (a stopped answer keeps its numbers).

    Time spent :meth:`paused` (the user deciding on an approval question) is not the model's: every
    instant is read on a clock that stands still while paused, so time to first token, the duration and
    the speed all leave it out.
    """

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self._clock = clock
        self._paused_s = 0.0  # paused time already over
        self._pause_started: float | None = None
        self._pauses = 0  # open pauses (nested or overlapping questions count once)
        self.started = self._now()
        self.first: float | None = None
        self.last: float | None = None
        self.deltas = 0
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.request_ms = 0.0  # tool loop: time spent in requests, tool runs excluded
        self.engine_speeds: list[float] = []  # the engine's own decode speed per request, when it reports one

    def _now(self) -> float:
        """The clock less the time spent paused (frozen at the pause's start while one is open)."""
        now = self._clock() if self._pause_started is None else self._pause_started
        return now - self._paused_s

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time inside out of every figure."""
        if self._pauses == 0:
            self._pause_started = self._clock()
        self._pauses += 1
        try:
            yield
        finally:
            self._pauses -= 1
            if self._pauses == 0 and self._pause_started is not None:
                self._paused_s += self._clock() - self._pause_started
                self._pause_started = None

    def delta(self) -> None:
        now = self._now()
        if self.first is None:
            self.first = now
        self.last = now
        self.deltas += 1

    def usage(self, prompt_tokens: int | None, completion_tokens: int | None, request_ms: float = 0.0,
              tokens_per_second: float | None = None) -> None:
        # The tool loop reports one usage per step: a run's cost is their sum.
        self.request_ms += request_ms
        if tokens_per_second:
            self.engine_speeds.append(tokens_per_second)
        if prompt_tokens is not None:
            self.prompt_tokens = (self.prompt_tokens or 0) + prompt_tokens
        if completion_tokens is not None:
            self.completion_tokens = (self.completion_tokens or 0) + completion_tokens

    def snapshot(self, finish_reason: str | None) -> Metrics:
        ended = self._now()
        metrics = Metrics(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            duration_ms=(ended - self.started) * 1000,
            finish_reason=finish_reason,
            chunks=self.deltas,
        )
        if self.first is not None:
            metrics.time_to_first_token_ms = (self.first - self.started) * 1000
            tokens = self.completion_tokens or self.deltas
            last = self.last or ended
            if len(self.engine_speeds) == 1:
                # One request whose engine timed its own decoding: no HTTP or UI time in the figure.
                metrics.tokens_per_second = self.engine_speeds[0]
            elif self.request_ms > 0 and self.completion_tokens:
                # Several requests (tool calls make tokens but no text): tokens over request time.
                metrics.tokens_per_second = self.completion_tokens / (self.request_ms / 1000)
            else:
                metrics.tokens_per_second = tokens_per_second(tokens, self.first, last)
        return metrics
