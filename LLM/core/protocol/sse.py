"""Pure, incremental Server-Sent Events decoder (bytes in, events out; no I/O)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed raw byte chunks as they arrive; get complete events back.

    Handles LF, CRLF and CR line endings (also split across chunks), comments, ``event:``
    and ``id:`` fields, multi-line ``data:``, UTF-8 characters split across chunks and a
    byte-order mark opening the stream (stripped once, as the event-stream spec says).
    """

    def __init__(self) -> None:
        # utf-8-sig drops one leading BOM, holding back its first bytes until the next chunk decides.
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._pending = ""  # text not yet ending in a line break
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._has_field = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._feed_text(self._utf8.decode(chunk))

    def flush(self) -> list[SSEEvent]:
        """End of stream: decode what is left and dispatch an event not followed by a blank line."""
        events = self._feed_text(self._utf8.decode(b"", final=True))
        if self._pending:
            self._line(self._pending, events)
            self._pending = ""
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if (
            not self._pending
            and not self._has_field
            and text.startswith("data: ")
            and text.endswith("\n\n")
            and text.count("\n") == 2
        ):
            # The hot path: one whole "data: ...\n\n" event per network chunk.
            return [SSEEvent(text[6:-2], "message", self._id)]
        events: list[SSEEvent] = []
        if not text:
            return events
        buf = self._pending + text
        # A trailing CR may be the first half of CRLF: wait for the next chunk.
        hold_cr = buf.endswith("\r")
        if hold_cr:
            buf = buf[:-1]
        if "\r" in buf:
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._pending = lines.pop() + ("\r" if hold_cr else "")
        for line in lines:
            self._line(line, events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if line.startswith("data: "):  # the hot path
            self._data.append(line[6:])
            self._has_field = True
            return
        line = line.rstrip("\r")
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            return  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_field = True
        elif name == "event":
            self._event = value
            self._has_field = True
        elif name == "id":
            self._id = value
        # "retry" and unknown fields are ignored, as the spec says.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._has_field and self._data:
            events.append(SSEEvent(data="\n".join(self._data), event=self._event or "message", id=self._id))
        self._data = []
        self._event = ""
        self._has_field = False
