"""What the endpoint did: its clients and its recent requests, each kept whole enough to inspect.

The endpoint owns one :class:`Activity`; listeners (the window's endpoint page, ``llmctl serve``'s log lines)
are told of each request as it starts and as it ends, on the endpoint's event loop.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol.sse import SSEDecoder

KEEP_REQUESTS = 200
# A routed request keeps at most this much of each body for the inspector (a long answer is cut, and says so).
KEEP_BODY_BYTES = 256 * 1024


@dataclass
class RoutedRequest:
    """One request the endpoint answered (or is answering)."""

    id: int
    client: str  # the peer's address
    user_agent: str
    method: str
    path: str
    started: float  # wall-clock time
    model: str | None = None
    stream: bool = False
    status: int | None = None  # None while in flight; 499 when the client went away first
    phase: str = "received"  # received, starting (the model's server), queued (all its slots busy), answering, done
    error: str | None = None
    cold_start: bool = False  # the model's server had to start first
    first_byte_ms: float | None = None
    duration_ms: float | None = None
    request_body: bytes = b""
    response_body: bytearray = field(default_factory=bytearray)
    response_cut: bool = False
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def finished(self) -> bool:
        return self.status is not None

    def keep_response(self, chunk: bytes) -> None:
        if self.first_byte_ms is None:
            self.first_byte_ms = (time.perf_counter() - self._t0) * 1000
        room = KEEP_BODY_BYTES - len(self.response_body)
        if room <= 0:
            self.response_cut = self.response_cut or bool(chunk)
            return
        self.response_body += chunk[:room]
        self.response_cut = len(chunk) > room


    def answer_text(self) -> str | None:
        """What a streamed answer said, folded from its events: reasoning, text, tool calls, an error event;
        None when the response was no event stream."""
        if not self.stream or not self.response_body.lstrip().startswith((b"data:", b":")):
            return None
        return fold_stream(bytes(self.response_body))


def fold_stream(raw: bytes) -> str:
    """OpenAI stream events as the text a person reads (pure)."""
    reasoning, text, errors = [], [], []
    calls: dict[int, list[str]] = {}
    decoder = SSEDecoder()
    for event in [*decoder.feed(raw), *decoder.flush()]:
        try:
            chunk = json.loads(event.data)
        except ValueError:
            continue
        if not isinstance(chunk, dict):
            continue
        if isinstance(chunk.get("error"), dict):
            errors.append(str(chunk["error"].get("message")))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or choice.get("text") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                parts = calls.setdefault(call.get("index", 0), ["", ""])
                parts[0] += function.get("name") or ""
                parts[1] += function.get("arguments") or ""
    lines = []
    if "".join(reasoning):
        lines.append(f"[reasoning] {''.join(reasoning)}")
    lines.append("".join(text))
    lines += [f"[tool call] {name}({arguments})" for name, arguments in calls.values()]
    lines += [f"[error] {message}" for message in errors]
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class ClientSummary:
    """One client as the window lists it: where it calls from and what it says it is."""

    address: str  # the peer's IP (its port changes with every connection)
    user_agent: str
    requests: int
    in_flight: int
    last_seen: float
    last_model: str | None


class Activity:
    def __init__(self, keep: int = KEEP_REQUESTS) -> None:
        self._recent: deque[RoutedRequest] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[RoutedRequest], None]] = []

    def add_listener(self, listener: Callable[[RoutedRequest], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[RoutedRequest], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def begin(self, client: str, user_agent: str, method: str, path: str) -> RoutedRequest:
        record = RoutedRequest(next(self._ids), client, user_agent, method, path, time.time())
        self._recent.append(record)
        self._tell(record)
        return record

    def moved(self, record: RoutedRequest, phase: str) -> None:
        record.phase = phase
        self._tell(record)

    def finish(self, record: RoutedRequest, status: int, error: str | None = None) -> None:
        record.status = status
        record.phase = "done"
        record.error = error
        record.duration_ms = (time.perf_counter() - record._t0) * 1000
        self._tell(record)

    def recent(self) -> list[RoutedRequest]:
        """Oldest first."""
        return list(self._recent)

    def clients(self) -> list[ClientSummary]:
        """Each (address, user agent) seen among the recent requests, the most recently seen first."""
        grouped: dict[tuple[str, str], list[RoutedRequest]] = {}
        for record in self._recent:
            grouped.setdefault((record.client.rsplit(":", 1)[0], record.user_agent), []).append(record)
        summaries = [
            ClientSummary(address, agent, len(records), sum(not r.finished for r in records),
                          records[-1].started, next((r.model for r in reversed(records) if r.model), None))
            for (address, agent), records in grouped.items()
        ]
        return sorted(summaries, key=lambda c: c.last_seen, reverse=True)

    def _tell(self, record: RoutedRequest) -> None:
        for listener in list(self._listeners):
            listener(record)
